"""`hf-finetune advise` end to end: real MiniLM on real fortunes text, then the recipe it writes."""

import json

from conftest import run_cli

from hf_finetune.recipes import parse_config


def test_advise_measures_prints_the_advice_and_writes_a_runnable_recipe(tmp_path, fortunes_csv, minilm_dir, capsys):
    out = tmp_path / "advice" / "recipe.yaml"
    argv = ["advise", "--model", minilm_dir, "--data", str(fortunes_csv["train"]), "--text_column", "review",
            "--label_column", "topic", "--sample", "240", "--reference-data", str(fortunes_csv["test"]),
            "--out", str(out)]  # fmt: skip
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    report = json.loads(out.with_suffix(".json").read_text())
    m, advice = report["measurements"], report["recommendation"]
    # 480 training entries, 10% held out for validation, 4 topics: ~108 per class, so "much data".
    assert sum(m["examples_per_class"].values()) == 432 and m["sample_size"] == 240
    # MiniLM's frozen features separate the topics far above chance; the two fortune files are one domain.
    assert m["probe_accuracy"] > m["chance_accuracy"] + 0.2 and m["logme"] > m["logme_shuffled"]
    assert m["pad"] < 0.5 and m["num_blocks"] == 6
    assert f"quadrant: {advice['quadrant']}" in stdout and f"recommended strategy: {advice['strategy']}" in stdout
    assert f"linear probe {m['probe_accuracy']:.3f}" in stdout
    cfg = parse_config(["--config", str(out)])
    assert cfg.strategy.strategy_names == [advice["strategy"]]
    assert cfg.data.train_file == str(fortunes_csv["train"]) and cfg.data.text_column == "review"
