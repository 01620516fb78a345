"""What a study leaves in its folder: trials.csv, the best trial's recipe, plots and tune_report.md.

Every worker rewrites these from the storage when it finishes a trial, so the files always describe the
whole study, whichever worker wrote them last.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers

import matplotlib.pyplot as plt  # noqa: E402 - after the backend choice
import optuna  # noqa: E402
import yaml  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

logger = logging.getLogger("hf_finetune")

TRIALS_CSV, BEST_RECIPE, REPORT = "trials.csv", "best_recipe.yaml", "tune_report.md"
PLOTS = {
    "optimization_history.png": "plot_optimization_history",
    "param_importances.png": "plot_param_importances",
    "parallel_coordinate.png": "plot_parallel_coordinate",
}
# Keys of a trial's run_config.yaml that belong to the trial, not to the recipe it suggests.
TRIAL_ONLY_KEYS = ("output_dir", "tune_space")


def write_trials_csv(study, out: Path) -> Path:
    frame = study.trials_dataframe(attrs=("number", "state", "value", "params", "duration", "user_attrs"))
    frame = frame.drop(columns=[c for c in frame.columns if c in ("user_attrs_pid", "user_attrs_heartbeat")])
    frame.to_csv(out / TRIALS_CSV, index=False)
    return out / TRIALS_CSV


def best_trial(study):
    """The best complete trial, or None while there is none."""
    return study.best_trial if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) else None


def write_best_recipe(study, out: Path, metric: str) -> Path | None:
    """The best trial's resolved recipe, runnable with `hf-finetune train --config`, to a fresh folder."""
    best = best_trial(study)
    if best is None:
        return None
    run_config = Path(best.user_attrs["folder"]) / "run_config.yaml"
    values = yaml.safe_load(run_config.read_text(encoding="utf-8"))
    values = {k: v for k, v in values.items() if k not in TRIAL_ONLY_KEYS}
    tuned = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
    header = (
        f"# Best trial {best.number} of study {study.study_name}: validation {metric} {best.value:.4f}\n"
        f"# tuned: {tuned}\n"
        f"# Train it: hf-finetune train --config {out / BEST_RECIPE}\n"
    )
    if values.get("max_train_samples"):
        header += (
            f"# The study trained on max_train_samples {values['max_train_samples']}; remove that line (or pass "
            "--max_train_samples with another number) to train on more.\n"
        )
    (out / BEST_RECIPE).write_text(header + yaml.safe_dump(values, sort_keys=False), encoding="utf-8")
    return out / BEST_RECIPE


def save_plots(study, out: Path) -> dict[str, str]:
    """Optuna's matplotlib plots; a plot the study cannot have yet (importances need 2 finished trials with
    varied parameters) is left out and said why."""
    notes = {}
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return {name: "no complete trial yet" for name in PLOTS}
    for name, function in PLOTS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the matplotlib plots are marked experimental in every release
                axes = getattr(optuna.visualization.matplotlib, function)(study)
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
            figure.set_size_inches(9, 5.5)
            figure.tight_layout()
            figure.savefig(out / name, dpi=110)
            plt.close(figure)
        except Exception as exc:  # a plot is a report's extra: whatever fails in it must not stop the study
            notes[name] = str(exc).split("\n")[0] or type(exc).__name__
    return notes


def trials_table(study, metric: str) -> list[str]:
    lines = [f"| trial | state | validation {metric} | parameters | seconds | folder |", "|---|---|---|---|---|---|"]
    for t in study.get_trials(deepcopy=False):
        value = "" if t.value is None else f"{t.value:.4f}"
        params = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in t.params.items())
        seconds = f"{t.duration.total_seconds():.0f}" if t.duration else ""
        folder = Path(t.user_attrs.get("folder", "")).name
        state = t.state.name.lower() + (" (advisor's)" if t.user_attrs.get("advised") else "")
        if "retry_of" in t.user_attrs:
            state += f" (retry of {t.user_attrs['retry_of']})"
        lines.append(f"| {t.number} | {state} | {value} | {params} | {seconds} | {folder} |")
    return lines


def write_report(study, out: Path, metric: str, storage_url: str, space_lines: list[str]) -> Path:
    """trials.csv, best_recipe.yaml, the plots and tune_report.md, from the storage's current state."""
    write_trials_csv(study, out)
    recipe = write_best_recipe(study, out, metric)
    notes = save_plots(study, out)
    states = [t.state.name.lower() for t in study.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
    best = best_trial(study)
    lines = [f"# Tuning report: {study.study_name}", "",
             f"- storage: `{storage_url}` (open it with `optuna-dashboard {storage_url}`)",
             f"- objective: validation {metric}, {study.direction.name.lower()}",
             f"- trials: {len(states)} ({counts or 'none yet'})"]  # fmt: skip
    if best is not None:
        lines += [f"- best: trial {best.number}, validation {metric} {best.value:.4f}, folder "
                  f"`{best.user_attrs.get('folder')}`", f"- best recipe: `{recipe}` (`hf-finetune train --config {recipe}`)"]  # fmt: skip
    lines += ["", "## Search space", "", *[f"- {line}" for line in space_lines], "", "## Trials", "",
              *trials_table(study, metric), "", "## Plots", ""]  # fmt: skip
    for name in PLOTS:
        lines.append(f"![{name}]({name})" if name not in notes else f"- {name}: not drawn ({notes[name]})")
    (out / REPORT).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out / REPORT
