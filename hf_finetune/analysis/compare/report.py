"""Did transfer help? The report `hf-finetune compare` writes from its runs.

Torrey & Shavlik ("Transfer Learning", 2009) name three ways transfer can beat learning from
scratch, each read here off the validation curve every run's `trainer_state.json` keeps:
- **start**: the metric after the first evaluation (a better initial point);
- **slope**: the area under the learning curve, divided by its length, i.e. the average metric along
  training (a curve that rises sooner has a larger area; Sutton & Barto's "area under the curve");
- **asymptote**: the best metric reached.
Each is averaged over seeds (mean ± std) per strategy and data fraction, next to the final test metric,
training time and trainable parameters. **Negative transfer** is flagged wherever a transferred model's
final test metric is below the `scratch` baseline's at the same data fraction.

Outputs, in the compare folder's `report/`: `report.md` (images linked relatively), `report.html`
(self-contained: images embedded), `learning_curves.png` (validation metric vs step, one panel per
fraction), `fraction_curve.png` (test metric vs data fraction) and `report.json` (the table's numbers).
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from hf_finetune.evaluation.plots import load_pyplot

BASELINE = "scratch"
REPORT_DIR = "report"
COLUMNS = (
    ("method", "strategy"),
    ("fraction", "fraction"),
    ("seeds", "seeds"),
    ("test", "test {metric}"),
    ("delta", "vs scratch (points)"),
    ("start", "start"),
    ("slope", "slope (AULC)"),
    ("asymptote", "asymptote"),
    ("seconds", "train time (s)"),
    ("trainable", "trainable params"),
    ("negative_transfer", "negative transfer"),
)


def eval_curve(output_dir: Path, metric: str) -> list[tuple[int, float]]:
    """(step, validation metric) of every evaluation in a run's trainer_state.json, in step order."""
    path = Path(output_dir) / "trainer_state.json"
    if not path.is_file():
        return []
    history = json.loads(path.read_text(encoding="utf-8")).get("log_history", [])
    key = f"eval_{metric}"
    return sorted((int(e["step"]), float(e[key])) for e in history if key in e and "step" in e)


def curve_measures(curve: list[tuple[int, float]]) -> dict[str, float]:
    """Start, slope (normalised area under the curve) and asymptote of one validation curve."""
    if not curve:
        return {"start": math.nan, "slope": math.nan, "asymptote": math.nan}
    steps = np.array([s for s, _ in curve], dtype=float)
    values = np.array([v for _, v in curve])
    if len(curve) > 1 and steps[-1] > steps[0]:
        area = float(np.trapezoid(values, steps) / (steps[-1] - steps[0]))
    else:
        area = float(values[0])
    return {"start": float(values[0]), "slope": area, "asymptote": float(values.max())}


def _mean_std(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if not finite:
        return math.nan, math.nan
    return float(np.mean(finite)), float(np.std(finite))


def summarise_methods(rows: list[dict], metric: str = "accuracy") -> list[dict]:
    """One entry per (method, fraction): each measure's mean and std over seeds, delta and flag vs scratch."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["method"], float(row["fraction"]))].append(row)
    table = []
    for (method, fraction), runs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0] != BASELINE, kv[0][0])):
        curves = [curve_measures(eval_curve(Path(r["output_dir"]), metric)) for r in runs]
        entry = {"method": method, "fraction": fraction, "seeds": len(runs)}
        entry["test"] = _mean_std([r.get(metric) for r in runs])
        for key in ("start", "slope", "asymptote"):
            entry[key] = _mean_std([c[key] for c in curves])
        entry["seconds"] = _mean_std([r.get("train_time_s") for r in runs])
        entry["trainable"] = int(np.median([r.get("trainable_params") or 0 for r in runs]))
        table.append(entry)
    scratch = {e["fraction"]: e for e in table if e["method"] == BASELINE}
    for entry in table:
        base = scratch.get(entry["fraction"])
        if base is None or entry["method"] == BASELINE or math.isnan(base["test"][0]):
            entry["delta"], entry["negative_transfer"] = None, None
            continue
        entry["delta"] = 100 * (entry["test"][0] - base["test"][0])
        entry["negative_transfer"] = bool(entry["test"][0] < base["test"][0])
    return table


def best_per_fraction(table: list[dict]) -> dict[float, tuple[str, float]]:
    """The strategy with the highest mean test metric at each data fraction."""
    best: dict[float, tuple[str, float]] = {}
    for e in table:
        if not math.isnan(e["test"][0]) and (e["fraction"] not in best or e["test"][0] > best[e["fraction"]][1]):
            best[e["fraction"]] = (e["method"], e["test"][0])
    return best


# The advisor agrees with a comparison when its strategy lands within this many points of the best one.
AGREEMENT_POINTS = 1.0


def advisor_check(table: list[dict], strategy: str) -> dict | None:
    """The advised strategy against the best measured one at the largest data fraction (the advised data)."""
    fraction = max((e["fraction"] for e in table), default=None)
    best = best_per_fraction(table).get(fraction)
    advised = next((e for e in table if e["fraction"] == fraction and e["method"] == strategy), None)
    if best is None or advised is None:
        return None
    gap = 100 * (best[1] - advised["test"][0])
    return {"fraction": fraction, "advised": strategy, "advised_score": advised["test"][0], "best": best[0],
            "best_score": best[1], "gap_points": gap, "agrees": gap <= AGREEMENT_POINTS}  # fmt: skip


def _advisor_line(check: dict) -> str:
    verdict = "within" if check["agrees"] else "NOT within"
    return (
        f"`hf-finetune advise` recommended {check['advised']} ({check['advised_score']:.3f} at fraction "
        f"{check['fraction']:g}); the best measured is {check['best']} ({check['best_score']:.3f}): "
        f"{check['gap_points']:.1f} points behind, {verdict} {AGREEMENT_POINTS:g} point."
    )


def _cell(entry: dict, key: str) -> str:
    value = entry.get(key)
    if key in ("method", "seeds"):
        return str(value)
    if key == "fraction":
        return f"{value:g}"
    if key == "trainable":
        return f"{value:,}"
    if key == "delta":
        return "-" if value is None else f"{value:+.1f}"
    if key == "negative_transfer":
        return "-" if value is None else ("**yes**" if value else "no")
    mean, std = value
    if math.isnan(mean):
        return "-"
    digits = 0 if key == "seconds" else 3
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if entry["seeds"] > 1 else f"{mean:.{digits}f}"


def _curves_by_method(rows: list[dict], metric: str) -> dict[float, dict[str, list[list[tuple[int, float]]]]]:
    out: dict[float, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        curve = eval_curve(Path(row["output_dir"]), metric)
        if curve:
            out[float(row["fraction"])][row["method"]].append(curve)
    return out


def _style(method: str, methods: list[str]) -> dict:
    """One colour per strategy, the same in both plots; scratch dashed."""
    return {"color": f"C{sorted(methods).index(method) % 10}", "linestyle": "--" if method == BASELINE else "-"}


def save_learning_curves_png(rows: list[dict], metric: str, path: Path) -> None:
    """Validation metric vs step, one panel per data fraction, one line per strategy (mean over seeds)."""
    plt = load_pyplot()
    by_fraction = _curves_by_method(rows, metric)
    methods = sorted({r["method"] for r in rows})
    fractions = sorted(by_fraction) or [1.0]
    fig, axes = plt.subplots(1, len(fractions), figsize=(4 * len(fractions), 3.6), squeeze=False, sharey=True)
    for ax, fraction in zip(axes[0], fractions, strict=True):
        for method, curves in sorted(by_fraction.get(fraction, {}).items()):
            length = min(len(c) for c in curves)  # seeds evaluate at the same steps; cut to the shortest
            steps = [s for s, _ in curves[0][:length]]
            mean = np.mean([[v for _, v in c[:length]] for c in curves], axis=0)
            ax.plot(steps, mean, marker="o", markersize=3, label=method, **_style(method, methods))
        ax.set_title(f"fraction {fraction:g}")
        ax.set_xlabel("step")
    axes[0][0].set_ylabel(f"validation {metric}")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_fraction_curve_png(table: list[dict], metric: str, path: Path) -> None:
    """Test metric vs share of the training data, one line per strategy, with the std over seeds."""
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    methods = sorted({e["method"] for e in table})
    for method in methods:
        points = sorted((e["fraction"], *e["test"]) for e in table if e["method"] == method)
        x, mean, std = (np.array(v) for v in zip(*points, strict=True))
        ax.errorbar(
            x, mean, yerr=std, marker="o", capsize=3, label=method, linestyle="--" if method == BASELINE else "-"
        )
    ax.set_xscale("log")
    ax.set_xticks(
        sorted({e["fraction"] for e in table}), labels=[f"{f:g}" for f in sorted({e["fraction"] for e in table})]
    )
    ax.set_xlabel("fraction of the training data")
    ax.set_ylabel(f"test {metric}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _markdown(table: list[dict], metric: str, title: str, images: dict[str, str], check: dict | None) -> str:
    headers = [h.format(metric=metric) for _, h in COLUMNS]
    lines = [f"# {title}", "", _explanation(metric), "", "| " + " | ".join(headers) + " |"]
    lines.append("|" + "|".join("---" if k in ("method", "negative_transfer") else "---:" for k, _ in COLUMNS) + "|")
    lines += ["| " + " | ".join(_cell(e, k) for k, _ in COLUMNS) + " |" for e in table]
    flagged = [e for e in table if e.get("negative_transfer")]
    lines += ["", "## Negative transfer", ""]
    lines += [
        f"- **{e['method']}** at fraction {e['fraction']:g}: {e['test'][0]:.3f} against scratch's "
        f"{e['test'][0] - e['delta'] / 100:.3f} ({e['delta']:+.1f} points)"
        for e in flagged
    ] or ["None: every transferred model scored at least as well as scratch."]
    lines += ["", "## Best strategy per data fraction", ""]
    lines += [f"- fraction {f:g}: **{m}** ({v:.3f})" for f, (m, v) in sorted(best_per_fraction(table).items())]
    if check is not None:
        lines += ["", "## Advisor check", "", _advisor_line(check)]
    for caption, name in images.items():
        lines += ["", f"## {caption}", "", f"![{caption}]({name})"]
    return "\n".join(lines) + "\n"


def _explanation(metric: str) -> str:
    return (
        f"Test {metric} of each strategy per share of the training data (mean ± std over seeds), against "
        f"training from scratch at the same share. From the validation curve: *start* = {metric} after the first "
        f"evaluation, *slope* = area under the curve / its length (the average {metric} along training), "
        f"*asymptote* = best {metric}. *Negative transfer*: a transferred model below scratch."
    )


def _html(table: list[dict], metric: str, title: str, images: dict[str, Path], check: dict | None) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h.format(metric=metric))}</th>" for _, h in COLUMNS)
    body = "".join(
        "<tr{}>{}</tr>".format(
            ' class="neg"' if e.get("negative_transfer") else "",
            "".join(f"<td>{esc(_cell(e, k).replace('**', ''))}</td>" for k, _ in COLUMNS),
        )
        for e in table
    )
    best = "".join(
        f"<li>fraction {f:g}: <b>{esc(m)}</b> ({v:.3f})</li>" for f, (m, v) in sorted(best_per_fraction(table).items())
    )
    figures = "".join(
        f'<h2>{esc(caption)}</h2><img alt="{esc(caption)}" src="data:image/png;base64,'
        f'{base64.b64encode(path.read_bytes()).decode()}">'
        for caption, path in images.items()
    )
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}tr.neg td{background:#fdd}img{max-width:100%}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{style}</style></head>"
        f"<body><h1>{esc(title)}</h1><p>{esc(_explanation(metric))}</p><table><tr>{head}</tr>{body}</table>"
        f"<h2>Best strategy per data fraction</h2><ul>{best}</ul>"
        + (f"<h2>Advisor check</h2><p>{esc(_advisor_line(check))}</p>" if check else "")
        + f"{figures}</body></html>\n"
    )


def write_report(compare_dir: Path, rows: list[dict] | None = None, metric: str = "accuracy",
                 title: str | None = None, advice: Path | None = None) -> Path:  # fmt: skip
    """Write `<compare_dir>/report/` from the rows (default: `<compare_dir>/compare.json`); returns its path.

    `advice` is the JSON `hf-finetune advise` writes beside its recipe: the report then checks its strategy.
    """
    compare_dir = Path(compare_dir)
    if rows is None:
        rows = json.loads((compare_dir / "compare.json").read_text(encoding="utf-8"))
        rows = rows["rows"] if isinstance(rows, dict) else rows
    out = compare_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    table = summarise_methods(rows, metric)
    check = None
    if advice is not None:
        check = advisor_check(table, json.loads(Path(advice).read_text(encoding="utf-8"))["recommendation"]["strategy"])
    title = title or f"Transfer report: {compare_dir.name}"
    images = {"Learning curves (validation, mean over seeds)": "learning_curves.png",
              "Test metric vs data fraction": "fraction_curve.png"}  # fmt: skip
    save_learning_curves_png(rows, metric, out / "learning_curves.png")
    save_fraction_curve_png(table, metric, out / "fraction_curve.png")
    (out / "report.md").write_text(_markdown(table, metric, title, images, check), encoding="utf-8")
    (out / "report.html").write_text(
        _html(table, metric, title, {c: out / n for c, n in images.items()}, check), encoding="utf-8"
    )
    (out / "report.json").write_text(
        json.dumps({"metric": metric, "table": table, "advisor_check": check}, indent=2), encoding="utf-8"
    )
    return out
