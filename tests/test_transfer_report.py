"""The transfer report from compare rows: every column and plot, and the negative-transfer flag.

The rows and each run's `trainer_state.json` are constructed on disk here (the end-to-end run of
`hf-finetune compare` on real data is in `test_compare_report.py`), so the flag is tested on a case
whose answer is known: a transferred model below scratch at one fraction and above it at another.
"""

import json
import math

import pytest

from hf_finetune.analysis.compare.report import COLUMNS, curve_measures, summarise_methods, write_report


def fake_run(folder, method, fraction, seed, test_accuracy, curve):
    out = folder / method / f"frac-{fraction}" / f"seed-{seed}"
    out.mkdir(parents=True)
    history = [{"step": s, "eval_accuracy": v, "epoch": i + 1} for i, (s, v) in enumerate(curve)]
    history.insert(0, {"step": 1, "loss": 1.5})  # training-loss entries are ignored
    (out / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    return {"method": method, "fraction": fraction, "seed": seed, "accuracy": test_accuracy, "macro_f1": test_accuracy,
            "train_time_s": 10.0 + seed, "trainable_params": 1000 if method == "linear_probe" else 50000,
            "output_dir": str(out)}  # fmt: skip


@pytest.fixture
def constructed(tmp_path):
    rows = []
    for seed in (0, 1):
        rows.append(fake_run(tmp_path, "scratch", 0.1, seed, 0.50 + 0.02 * seed, [(10, 0.3), (20, 0.45), (30, 0.5)]))
        rows.append(fake_run(tmp_path, "full", 0.1, seed, 0.70, [(10, 0.6), (20, 0.68), (30, 0.7)]))
        # Negative transfer at 0.1: the probe stays below scratch.
        rows.append(fake_run(tmp_path, "linear_probe", 0.1, seed, 0.40, [(10, 0.35), (20, 0.38), (30, 0.4)]))
        rows.append(fake_run(tmp_path, "scratch", 1.0, seed, 0.60, [(50, 0.4), (100, 0.6)]))
        rows.append(fake_run(tmp_path, "linear_probe", 1.0, seed, 0.65, [(50, 0.6), (100, 0.65)]))
    return tmp_path, rows


def test_curve_measures_start_slope_asymptote():
    m = curve_measures([(0, 0.2), (10, 0.6), (20, 0.5)])
    assert m["start"] == 0.2 and m["asymptote"] == 0.6
    assert m["slope"] == pytest.approx((0.4 * 10 + 0.55 * 10) / 20)  # trapezoid area / length
    assert all(math.isnan(v) for v in curve_measures([]).values())


def test_negative_transfer_is_flagged_only_where_transfer_loses(constructed):
    _, rows = constructed
    table = {(e["method"], e["fraction"]): e for e in summarise_methods(rows)}
    assert table[("linear_probe", 0.1)]["negative_transfer"] is True
    assert table[("linear_probe", 0.1)]["delta"] == pytest.approx(-11.0)
    assert table[("full", 0.1)]["negative_transfer"] is False
    assert table[("linear_probe", 1.0)]["negative_transfer"] is False
    assert table[("scratch", 0.1)]["negative_transfer"] is None  # the baseline is not compared with itself
    scratch = table[("scratch", 0.1)]
    assert scratch["test"] == pytest.approx((0.51, 0.01)) and scratch["start"] == pytest.approx((0.3, 0.0))
    assert table[("full", 0.1)]["asymptote"][0] == pytest.approx(0.7)


def test_report_has_every_column_and_plot(constructed):
    folder, rows = constructed
    (folder / "compare.json").write_text(json.dumps({"rows": rows}))  # compare.json's layout
    advice = folder / "advice.json"  # as `hf-finetune advise` writes it
    advice.write_text(json.dumps({"recommendation": {"strategy": "scratch"}}))
    out = write_report(folder, advice=advice)
    for name in ("report.md", "report.html", "learning_curves.png", "fraction_curve.png", "report.json"):
        assert (out / name).stat().st_size > 0, name
    markdown = (out / "report.md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| strategy"))
    assert [c.strip() for c in header.strip("|").split("|")] == [h.format(metric="accuracy") for _, h in COLUMNS]
    assert "**linear_probe** at fraction 0.1: 0.400 against scratch's 0.510 (-11.0 points)" in markdown
    assert "0.510 ± 0.010" in markdown  # mean ± std over the two seeds
    # At fraction 1 the probe (0.650) beats the advised scratch (0.600) by 5 points: the check says so.
    assert (
        "recommended scratch (0.600 at fraction 1); the best measured is linear_probe (0.650): 5.0 points behind, NOT"
        in markdown
    )
    assert "![Learning curves" in markdown and "(learning_curves.png)" in markdown
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and 'class="neg"' in page  # self-contained, flag visible


@pytest.mark.slow
def test_compare_writes_the_report_end_to_end(tmp_path, pretrained_vit, capsys):
    """`hf-finetune compare` on real digit images with the pretrained ViT: runs, rows, then the report."""
    from conftest import run_cli

    out = tmp_path / "cmp"
    argv = ["compare", "--config", "fashion_mnist_target", "--model_name_or_path", str(pretrained_vit),
            "--dataset_name", "packaged:digits", "--strategies", "scratch,linear_probe,full", "--fractions", "0.5,1",
            "--seeds", "1", "--max_train_samples", "240", "--max_eval_samples", "200", "--num_train_epochs", "2",
            "--min_steps", "12", "--out", str(out)]  # fmt: skip
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    # --min_steps 12: 120 images are 4 batches of 32, so 3 epochs; 240 are 8 batches, so the 2 asked for
    epochs = {(r["method"], r["fraction"]): r["epochs"] for r in json.loads((out / "compare.json").read_text())["rows"]}
    assert epochs == {(m, f): 3 if f == 0.5 else 2 for m in ("scratch", "linear_probe", "full") for f in (0.5, 1.0)}
    report = out / "report"
    assert f"transfer report: {report / 'report.md'}" in stdout
    for name in ("report.md", "report.html", "learning_curves.png", "fraction_curve.png"):
        assert (report / name).stat().st_size > 0, name
    title = (report / "report.md").read_text().splitlines()[0]  # the data and checkpoint, not only the recipe
    assert "packaged:digits" in title and str(pretrained_vit) in title and "fashion_mnist_target" in title
    table = json.loads((report / "report.json").read_text())["table"]
    assert {(e["method"], e["fraction"]) for e in table} == {(m, f) for m in ("scratch", "linear_probe", "full")
                                                             for f in (0.5, 1.0)}  # fmt: skip
    for e in table:  # every measure came from the run's own trainer_state.json and metrics
        assert all(not math.isnan(e[k][0]) for k in ("test", "start", "slope", "asymptote", "seconds")), e
        assert e["trainable"] > 0
        assert (e["negative_transfer"] is None) == (e["method"] == "scratch")
    linear_probe = next(e for e in table if e["method"] == "linear_probe")
    full = next(e for e in table if e["method"] == "full")
    assert linear_probe["trainable"] < full["trainable"]
