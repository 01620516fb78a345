"""Does `hf-finetune rank` pick the checkpoint that fine-tunes best? Offline scenarios, Kendall's tau, regret.

For each scenario: rank the candidates on the training data (`hf_finetune.ranking`), then fine-tune every
candidate with the strategy recommended for the top-ranked one, and compare. Reported per scenario: each
measure's Kendall tau against the fine-tuned test accuracy, and the regret (points lost by taking the
top-ranked candidate instead of the best fine-tuned one). `docs/which_checkpoint.md` holds the table.

Candidates, all built honestly offline:
- text: the packaged all-MiniLM-L6-v2; its bottom 3 layers (config `num_hidden_layers=3`, weights loaded
  from the packaged checkpoint, layers 4-6 dropped); the same architecture with random weights;
- vision: the self-pretrained ViT (`hf-finetune pretrain`), the same pretraining stopped after its first
  epoch, and the same ViT with random weights (`outputs/pretrained/vit-random-init`).

    python -m bench.which_checkpoint --out outputs/which_checkpoint [--scenarios fortunes,email,fashion,digits]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

MINILM = "packaged:all-MiniLM-L6-v2"
VIT = Path("outputs/pretrained/vit-fashion-source")
VIT_RANDOM = Path("outputs/pretrained/vit-random-init")
MEASURES = ("probe", "knn", "logme", "leep")
# (recipe, recipe overrides, candidates kind); sizes chosen so every fine-tune takes 30+ optimizer steps.
SCENARIOS = {
    "fortunes": ("fortunes_topics", {"max_train_samples": 200, "num_train_epochs": 5}, "text"),
    # The e-mail case rebuilt from packaged data: 2 classes, 69/31, 72 training rows (`email_files`).
    "email": ("fortunes_topics", {"max_train_samples": 72, "num_train_epochs": 10}, "text"),
    "fashion": ("fashion_mnist_target", {"max_train_samples": 250, "num_train_epochs": 10}, "vision"),
    "digits": (
        "fashion_mnist_target",
        {"dataset_name": "packaged:digits", "max_train_samples": 144, "num_train_epochs": 10},
        "vision",
    ),  # fmt: skip
}
# Validation and test are seeded subsets of this size: CPU time is scarce (2 shared cores).
MAX_EVAL_SAMPLES = 500


def text_candidates(root: Path) -> list[str]:
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from hf_finetune.assets.models import resolve_packaged_model

    source = resolve_packaged_model(MINILM)
    tokenizer = AutoTokenizer.from_pretrained(source)
    bottom3, random = root / "minilm-bottom3", root / "minilm-random"
    if not (bottom3 / "model.safetensors").is_file():
        config = AutoConfig.from_pretrained(source, num_hidden_layers=3)
        AutoModel.from_pretrained(source, config=config).save_pretrained(bottom3)  # layers 0-2 load, 3-5 are dropped
        tokenizer.save_pretrained(bottom3)
    if not (random / "model.safetensors").is_file():
        torch.manual_seed(0)
        AutoModel.from_config(AutoConfig.from_pretrained(source)).save_pretrained(random)
        tokenizer.save_pretrained(random)
    return [MINILM, str(bottom3), str(random)]


def vision_candidates(root: Path) -> list[str]:
    """The pretrained ViT, its first-epoch checkpoint as a plain model folder, and the random init."""
    epochs = sorted(VIT.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    if not (VIT / "model.safetensors").is_file() or not epochs:
        raise SystemExit(f"run `hf-finetune pretrain` first ({VIT} with its checkpoints)")
    early = root / "vit-fashion-source-epoch1"
    early.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "preprocessor_config.json"):
        shutil.copy(epochs[0] / name, early / name)
    return [str(VIT.resolve()), str(early), str(VIT_RANDOM.resolve())]


def email_files(root: Path) -> dict:
    """computers vs science from the packaged fortunes (500 + 220 train rows, every test row of the two)."""
    from hf_finetune.assets.fortunes import fortunes_topics

    data = fortunes_topics()
    names = data["train"].features["label"].names
    keep = {names.index("computers"): "computers", names.index("science"): "science"}
    root.mkdir(parents=True, exist_ok=True)
    for split, quota in (("train", {"computers": 500, "science": 220}), ("test", None)):
        rows, counts = [], dict.fromkeys(keep.values(), 0)
        for text, label in zip(data[split]["text"], data[split]["label"], strict=True):
            name = keep.get(label)
            if name and (quota is None or counts[name] < quota[name]):
                counts[name] += 1
                rows.append(json.dumps({"text": text, "label": name}) + "\n")
        (root / f"{split}.jsonl").write_text("".join(rows), encoding="utf-8")
    return {"dataset_name": None, "train_file": str(root / "train.jsonl"), "test_file": str(root / "test.jsonl")}


def kendall(xs: list, ys: list) -> float | None:
    from scipy.stats import kendalltau

    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None]
    if len(pairs) < 2:
        return None
    tau = kendalltau(*zip(*pairs, strict=True)).statistic
    return None if tau != tau else float(tau)  # NaN when a side is constant


def run_scenario(name: str, out: Path, candidates: list[str], seed: int) -> dict:
    import hf_finetune
    from hf_finetune.analysis.ranking import rank_checkpoints
    from hf_finetune.recipes import load_recipe, resolve_recipe_path

    recipe, overrides, _ = SCENARIOS[name]
    values = {**load_recipe(resolve_recipe_path(recipe)), **overrides, "seed": seed,
              "max_eval_samples": MAX_EVAL_SAMPLES}  # fmt: skip
    if name == "email":
        values.update(email_files(out / "email-data"))
    ranking = rank_checkpoints(values, candidates, cache=out / "features", base_name=recipe, sample=1000, seed=0)
    strategy = ranking.recommendation.strategy
    rows = []
    for c in ranking.candidates:
        run_values = {**ranking.recipe, "model_name_or_path": c.model, "output_dir": str(out / name / Path(c.model).name),
                      "overwrite_output_dir": True, "save_strategy": "no", "load_best_model_at_end": False,
                      "disable_tqdm": True}  # fmt: skip
        result = hf_finetune.train(run_values)
        n_train = json.loads((result.output_dir / "metrics.json").read_text())["data_sizes"]["train"]
        rows.append({**c.as_dict(), "finetuned": result.metrics["test"]["accuracy"]})
    finetuned = [r["finetuned"] for r in rows]
    return {"scenario": name, "strategy": strategy, "n_train": n_train, "candidates": rows,
            "tau": {m: kendall([r[m] for r in rows], finetuned) for m in MEASURES},
            "regret_points": 100 * (max(finetuned) - rows[0]["finetuned"])}  # fmt: skip


def markdown(results: list[dict]) -> str:
    lines = ["| scenario | strategy | candidate | rank | probe | kNN | LogME | LEEP | fine-tuned test acc |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in results:
        for c in r["candidates"]:
            leep = "n/a" if c["leep"] is None else f"{c['leep']:.3f}"
            lines.append(f"| {r['scenario']} ({r['n_train']} train) | {r['strategy']} | {Path(c['model']).name} | {c['rank']} | "
                         f"{c['probe']:.3f} | {c['knn']:.3f} | {c['logme']:.3f} | {leep} | {c['finetuned']:.3f} |")  # fmt: skip
    lines += [
        "",
        "| scenario | tau probe | tau kNN | tau LogME | tau LEEP | regret (points) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        taus = " | ".join("n/a" if r["tau"][m] is None else f"{r['tau'][m]:+.2f}" for m in MEASURES)
        lines.append(f"| {r['scenario']} | {taus} | {r['regret_points']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/which_checkpoint")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--seed", type=int, default=42, help="Fine-tuning seed (one per scenario: CPU time is scarce).")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else []
    done = {r["scenario"] for r in results}
    for name in args.scenarios.split(","):
        if name in done:
            continue
        kind = SCENARIOS[name][2]
        candidates = text_candidates(out / "candidates") if kind == "text" else vision_candidates(out / "candidates")
        results.append(run_scenario(name, out, candidates, args.seed))
        results_path.write_text(json.dumps(results, indent=1) + "\n")
        (out / "results.md").write_text(markdown(results) + "\n")
        print(markdown(results))


if __name__ == "__main__":
    main()
