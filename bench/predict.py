"""`make bench-predict`: prediction speed, memory and accuracy of four ways to run one fine-tuned model.

    python -m bench.predict              # 551 fortunes test texts, 2,000 Fashion-MNIST test images
    python -m bench.predict --quick      # a smoke run (64 texts, 64 images, tiny training)

Configurations, each in its own fresh process (so peak RSS is its own), all on the same thread count:
  pipeline      plain `transformers.pipeline(task, model=DIR)` with its defaults (one example per forward)
  pytorch       our predict path: length-sorted batches of 32, `torch.inference_mode`
  onnx_fp32     the same path on ONNX Runtime, the exported fp32 graph
  onnx_int8     the same, dynamic int8 (`hf-finetune export --quantize int8`)
A third model, a classical head (logistic regression on frozen mean-pooled MiniLM features of the fortunes
train split), runs the last three (`pipeline()` cannot load it): PyTorch + scikit-learn, then its export.

The models are made once and reused (outputs/bench-predict/): MiniLM fine-tuned for 1 epoch on the
fortunes train split, and the small offline ViT trained for 1 epoch on 3,000 Fashion-MNIST train images,
each exported with `hf-finetune export --quantize int8`. Samples/s counts the prediction call only (model
loading is reported apart), after a warm-up of 8 examples that every configuration gets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
MODELS = Path("outputs/bench-predict")
CONFIGS = ("pipeline", "pytorch", "onnx_fp32", "onnx_int8")
MODALITIES = ("text", "image", "classical")
FULL = {"texts": 551, "images": 2000, "text_train": None, "text_epochs": 1, "image_train": 3000, "image_epochs": 1}
QUICK = {"texts": 64, "images": 64, "text_train": 64, "text_epochs": 1, "image_train": 256, "image_epochs": 1}
WARM_UP = 8


def cli(argv: list[str]) -> None:
    from hf_finetune.cli import main

    code = main(argv)
    if code != 0:
        raise SystemExit(f"bench: `hf-finetune {' '.join(argv[:3])} ...` failed with exit code {code}")


def train_text(folder: Path, sizes: dict) -> None:
    argv = ["train", "--config", "fortunes_topics", "--num_train_epochs", str(sizes["text_epochs"]),
            "--output_dir", str(folder), "--overwrite_output_dir"]  # fmt: skip
    if sizes["text_train"]:
        argv += ["--max_train_samples", str(sizes["text_train"])]
    cli(argv)


def train_image(folder: Path, sizes: dict) -> None:
    """The offline ViT (as `hf-finetune pretrain` builds it) trained on all ten Fashion-MNIST classes."""
    from hf_finetune.assets.fashion_mnist import FASHION_MNIST_CLASSES
    from hf_finetune.assets.models import write_init_checkpoint

    init = write_init_checkpoint(folder.parent / "vit-init", list(FASHION_MNIST_CLASSES))
    cli(["train", "--config", "vit_fashion_source", "--dataset_name", "packaged:fashion-mnist",
         "--model_name_or_path", str(init), "--max_train_samples", str(sizes["image_train"]),
         "--max_eval_samples", "500", "--num_train_epochs", str(sizes["image_epochs"]), "--output_dir", str(folder),
         "--overwrite_output_dir"])  # fmt: skip


def train_classical(folder: Path, sizes: dict) -> None:
    """Mean-pooled MiniLM features of the fortunes splits, and a logistic regression on the train split."""
    from hf_finetune.analysis.classical import run_classical
    from hf_finetune.analysis.features import features_for_config
    from hf_finetune.recipes import parse_config

    argv = ["--config", "fortunes_topics"] + (
        ["--max_train_samples", str(sizes["text_train"])] if sizes["text_train"] else []
    )
    cfg = parse_config(argv)
    features = folder.parent / "classical-features"
    features_for_config(cfg, [cfg.model.model_name_or_path], features, pooling="mean", overwrite=True)
    run_classical(features, "logreg", folder, cv=0, overwrite=True)


def ensure_models(root: Path, sizes: dict, modalities=MODALITIES) -> dict[str, Path]:
    """Train and export each model unless a finished one is there (delete the folder to redo it)."""
    from hf_finetune.outputs import is_finished

    models = {}
    trainers = {"text": train_text, "image": train_image, "classical": train_classical}
    for modality, train in ((m, trainers[m]) for m in modalities):
        folder, export = root / f"{modality}-model", root / f"{modality}-onnx"
        if not is_finished(folder):
            train(folder, sizes)
        if not (export / "export_report.json").is_file():
            cli(["export", "--model", str(folder), "--out", str(export), "--quantize", "int8", "--samples", "200"])
        models[modality], models[f"{modality}_export"] = folder, export
    return models


def load_rows(modality: str, n: int) -> tuple[list, list[str]]:
    """The first n test rows (inputs, gold label names) of the shared loaders."""
    from hf_finetune.assets.fashion_mnist import fashion_mnist
    from hf_finetune.assets.fortunes import fortunes_topics

    if modality in ("text", "classical"):
        test = fortunes_topics()["test"]
        names = test.features["label"].names
        rows = test.select(range(min(n, len(test))))
        return list(rows["text"]), [names[i] for i in rows["label"]]
    test = fashion_mnist()["test"]
    names = test.features["label"].names
    rows = test.select(range(min(n, len(test))))
    return [image.convert("RGB") for image in rows["image"]], [names[i] for i in rows["label"]]


def predict_function(config: str, modality: str, models: dict):
    """A function inputs -> predicted label names for the configuration, with its model loaded."""
    if config == "pipeline":
        from transformers import pipeline

        task = "text-classification" if modality == "text" else "image-classification"
        classify = pipeline(task, model=str(models[modality]))  # its defaults: batch size 1, no truncation flag
        return lambda inputs: [(out[0] if isinstance(out, list) else out)["label"] for out in classify(inputs)]
    from hf_finetune.analysis.classical_export import load_classical
    from hf_finetune.inference.backends import load_for_inference
    from hf_finetune.inference.predictor import Predictor

    folder = models[modality] if config == "pytorch" else models[f"{modality}_export"]
    if modality == "classical":
        predictor = load_classical(folder, batch_size=32, int8=config == "onnx_int8")
        return lambda inputs: [row["label"] for row in predictor.predict(inputs)]
    predictor = Predictor(load_for_inference(str(folder), int8=config == "onnx_int8"), batch_size=32, quiet=True)
    run = predictor.predict_texts if modality == "text" else predictor.predict_images
    return lambda inputs: [row["label"] for row in run(inputs)]


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM): unlike getrusage's ru_maxrss, it is not inherited from the parent
    across fork + exec (the parent here has trained and exported the models, ~2 GB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(config: str, modality: str, models: dict, n: int) -> dict:
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    inputs, gold = load_rows(modality, n)
    started = time.perf_counter()
    predict = predict_function(config, modality, models)
    load_s = time.perf_counter() - started
    predict(inputs[:WARM_UP])
    started, cpu_started = time.perf_counter(), time.process_time()
    predicted = predict(inputs)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    accuracy = sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold)
    return {"config": config, "modality": modality, "samples": len(inputs), "seconds": seconds,
            "samples_per_s": len(inputs) / seconds, "cpu_seconds": cpu_seconds,
            "samples_per_cpu_s": len(inputs) / cpu_seconds, "load_s": load_s, "accuracy": accuracy,
            "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def run_in_fresh_process(config: str, modality: str, models: dict, n: int, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    spec = json.dumps({"config": config, "modality": modality, "models": {k: str(v) for k, v in models.items()},
                       "n": n})  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "bench.predict", "--worker", spec], env=env,
                            capture_output=True, text=True, cwd=BENCH_DIR.parent)  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"bench worker {config}/{modality} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def median_row(runs: list[dict]) -> dict:
    """The run with the median samples/s (the upper median for an even count), with every run's speed kept."""
    ordered = sorted(runs, key=lambda r: r["samples_per_s"])
    return {**ordered[len(ordered) // 2], "all_samples_per_s": [round(r["samples_per_s"], 2) for r in runs]}


def cpu_description() -> str:
    """Model name and the flags that decide CPU inference speed (avx2, avx512 VNNI/bf16, AMX)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
    return f"{name} ({', '.join(f for f in wanted if f in flags)})"


def markdown(results: dict) -> str:
    load = ", ".join(f"{x:.1f}" for x in results["load_average"])
    lines = [f"CPU: {results['cpu']}; {results['threads']} threads per configuration; median of {results['repeats']} "
             f"interleaved runs; load average at the end {load}", ""]  # fmt: skip
    for modality, what in (
        ("text", "fortunes test texts, MiniLM"),
        ("image", "Fashion-MNIST test images, ViT"),
        ("classical", "fortunes test texts, logistic regression on frozen MiniLM features"),
    ):
        rows = [r for r in results["rows"] if r["modality"] == modality]
        if not rows:
            continue
        base = next((r for r in rows if r["config"] == "pipeline"), rows[0])
        lines += [f"{rows[0]['samples']} {what}", "",
                  f"| configuration | samples/s | vs {base['config']} | samples per CPU-second | vs {base['config']} "
                  "| accuracy | peak RSS (MiB) | load (s) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for r in rows:
            lines.append(f"| {r['config']} | {r['samples_per_s']:.1f} | {r['samples_per_s'] / base['samples_per_s']:.2f}x "
                         f"| {r['samples_per_cpu_s']:.1f} | {r['samples_per_cpu_s'] / base['samples_per_cpu_s']:.2f}x "
                         f"| {r['accuracy']:.4f} | {r['peak_rss_mb']:.0f} | {r['load_s']:.1f} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.predict", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Smoke run: tiny training and 64 examples each.")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    parser.add_argument("--repeats", type=int, default=2, help="Interleaved runs per configuration (median).")
    parser.add_argument("--models", default=None, help="Folder for the trained and exported models.")
    parser.add_argument("--only", nargs="*", choices=CONFIGS, help="Run only these configurations.")
    parser.add_argument("--texts", type=int, help="Measure on the first N test texts (default 551, all).")
    parser.add_argument("--images", type=int, help="Measure on the first N test images (default 2000).")
    parser.add_argument("--modality", choices=MODALITIES, help="Measure one model only.")
    parser.add_argument("--out", help="Results: OUT.json and OUT.md (default bench/predict_results, with --modality "
                        "M bench/predict_results_M: one model's rows do not replace the full table).")  # fmt: skip
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        models = {k: Path(v) for k, v in spec["models"].items()}
        print(json.dumps(worker(spec["config"], spec["modality"], models, spec["n"])))
        return 0
    sizes = dict(QUICK if args.quick else FULL)
    sizes.update({k: getattr(args, k) for k in ("texts", "images") if getattr(args, k)})
    root = Path(args.models) if args.models else MODELS / ("quick" if args.quick else "full")
    models = ensure_models(root, sizes, [args.modality] if args.modality else MODALITIES)
    rows = []
    for modality, n in (("text", sizes["texts"]), ("image", sizes["images"]), ("classical", sizes["texts"])):
        if args.modality and modality != args.modality:
            continue
        configs = [c for c in args.only or CONFIGS if not (modality == "classical" and c == "pipeline")]
        runs: dict[str, list[dict]] = {c: [] for c in configs}
        for repeat in range(args.repeats):  # interleaved A, B, C, D, A, B, ...: load changes hit all alike
            for config in runs:
                runs[config].append(run_in_fresh_process(config, modality, models, n, args.threads))
                r = runs[config][-1]
                print(f"{modality:<6} {config:<10} run {repeat + 1}: {r['samples_per_s']:8.1f}/s  "
                      f"{r['samples_per_cpu_s']:8.1f}/CPU-s  accuracy "
                      f"{r['accuracy']:.4f}  peak RSS {r['peak_rss_mb']:.0f} MiB", flush=True)  # fmt: skip
        rows += [median_row(config_runs) for config_runs in runs.values()]
    results = {"cpu": cpu_description(), "threads": args.threads, "sizes": sizes, "repeats": args.repeats,
               "load_average": os.getloadavg(), "rows": rows,
               "reports": {m: json.loads((models[f"{m}_export"] / "export_report.json").read_text())
                           for m in MODALITIES if not args.modality or m == args.modality}}  # fmt: skip
    table = markdown(results)
    print("\n" + table)
    if not args.quick:
        out = args.out or str(BENCH_DIR / ("predict_results" + (f"_{args.modality}" if args.modality else "")))
        Path(out + ".json").write_text(json.dumps(results, indent=2) + "\n")
        Path(out + ".md").write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
