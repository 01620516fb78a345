"""`make bench-precision`: does bf16 cost accuracy? The demo recipe (and the vision target recipe) trained in fp32
and in bf16, 3 seeds each, test accuracy mean +/- std and
training time. (Prediction in bf16 against fp32 on one model: tests/test_precision.py.)

    python -m bench.precision_parity                 # fortunes_topics, seeds 0 1 2 (~10 min on 2 AMX cores)
    python -m bench.precision_parity --recipes fortunes_topics fashion_mnist_target --seeds 0 1 2
    python -m bench.precision_parity --quick         # a smoke run: 64 training texts, 1 epoch, one seed

The rule it checks (settings/precision.py): if bf16 loses more than 1 point of test accuracy on a recipe, that
recipe must say `precision: fp32`, so `auto` does not choose bf16 for it. Runs are sequential, in this process's
machine; bf16 runs need a CPU with native bf16 (or a GPU) to be worth anything, and the results say which CPU ran.
Writes bench/precision_parity.json and .md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
MAX_LOSS_POINTS = 1.0
QUICK = ["--max_train_samples", "64", "--max_eval_samples", "64", "--num_train_epochs", "1"]


def train_once(recipe: str, precision: str, seed: int, extra: list[str], root: Path) -> dict:
    """One real run through the CLI; its test accuracy, train time and where it was written."""
    from hf_finetune.cli import main

    out = root / f"{recipe}-{precision}-{seed}"
    argv = ["train", "--config", recipe, "--precision", precision, "--seed", str(seed), "--output_dir", str(out),
            "--disable_tqdm", "true", *extra]  # fmt: skip
    if main(argv) != 0:
        raise SystemExit(f"{recipe} {precision} seed {seed} failed")
    summary = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    split = summary["report_split"]
    return {"recipe": recipe, "precision": summary["precision"], "seed": seed, "split": split,
            "accuracy": summary["metrics"][split]["accuracy"], "train_s": summary["train_runtime"], "folder": str(out)}  # fmt: skip


def summarise(runs: list[dict]) -> list[dict]:
    rows = []
    for recipe in dict.fromkeys(r["recipe"] for r in runs):
        by = {p: [r for r in runs if r["recipe"] == recipe and r["precision"] == p] for p in ("fp32", "bf16")}
        row = {"recipe": recipe, "split": runs[0]["split"], "seeds": len(by["fp32"])}
        for p, rs in by.items():
            accuracies = [r["accuracy"] for r in rs]
            row[f"{p}_mean"] = statistics.mean(accuracies)
            row[f"{p}_std"] = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
            row[f"{p}_train_s"] = statistics.mean(r["train_s"] for r in rs)
        row["bf16_minus_fp32_points"] = 100 * (row["bf16_mean"] - row["fp32_mean"])
        row["bf16_ok"] = row["bf16_minus_fp32_points"] >= -MAX_LOSS_POINTS
        row["speedup"] = row["fp32_train_s"] / row["bf16_train_s"]
        rows.append(row)
    return rows


def markdown(rows: list[dict], machine: str) -> str:
    lines = [f"Ran on: {machine}", "",
             "| recipe | split | seeds | fp32 accuracy | bf16 accuracy | bf16 - fp32 | train s fp32 / bf16 | bf16 kept |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['recipe']} | {r['split']} | {r['seeds']} | {r['fp32_mean']:.4f} +/- {r['fp32_std']:.4f} | "
            f"{r['bf16_mean']:.4f} +/- {r['bf16_std']:.4f} | {r['bf16_minus_fp32_points']:+.2f} pt | "
            f"{r['fp32_train_s']:.0f} / {r['bf16_train_s']:.0f} ({r['speedup']:.2f}x) | "
            f"{'yes' if r['bf16_ok'] else 'no: set precision: fp32'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from hf_finetune.settings.hardware import cpu_info

    parser = argparse.ArgumentParser(prog="python -m bench.precision_parity", description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", nargs="+", default=["fortunes_topics"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="A smoke run: tiny data, one epoch.")
    parser.add_argument("--out", default=str(BENCH_DIR / "precision_parity"), help="Results file stem.")
    args = parser.parse_args(argv)
    extra = QUICK if args.quick else []
    started, runs = time.time(), []
    with tempfile.TemporaryDirectory(prefix="bench-precision-") as scratch:
        for recipe in args.recipes:
            for seed in args.seeds:
                for precision in ("fp32", "bf16"):  # interleaved, so drift in machine load hits both alike
                    runs.append(train_once(recipe, precision, seed, extra, Path(scratch)))
                    print(json.dumps(runs[-1]), flush=True)
    rows, machine = summarise(runs), cpu_info().describe()
    result = {"machine": machine, "wall_s": time.time() - started, "quick": args.quick, "runs": runs, "rows": rows}
    Path(args.out + ".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    Path(args.out + ".md").write_text(markdown(rows, machine), encoding="utf-8")
    print(markdown(rows, machine))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
