"""Every shipped strategy recipe on the real packaged MiniLM and real fortunes text.

Short runs (a real slice, one epoch) through the notebook API, checking against the real
checkpoint file: frozen blocks are bit-identical to it, scratch shares nothing with it,
adapter runs save adapters + head only, and the merged model predicts as the adapters do.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import run_cli
from safetensors.torch import load_file

import hf_finetune
from hf_finetune.recipes import list_recipes

pytestmark = pytest.mark.slow

SHORT = dict(max_train_samples=64, max_eval_samples=32, num_train_epochs=1, per_device_train_batch_size=16)
STRATEGY_RECIPES = sorted(name for name in list_recipes() if name.startswith("fortunes_topics_"))
TEXTS = ["My computer crashed again after the kernel update.", "The senator lost the vote in congress."]


def checkpoint_weights(minilm_dir) -> dict[str, torch.Tensor]:
    return {f"bert.{k}": v for k, v in load_file(Path(minilm_dir) / "model.safetensors").items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One short run per strategy recipe, shared by the checks below."""
    root = tmp_path_factory.mktemp("strategies")
    out = {}
    for recipe in STRATEGY_RECIPES:
        result = hf_finetune.train(recipe, output_dir=str(root / recipe), **SHORT)
        assert result.metrics["test"]["accuracy"] >= 0
        out[recipe.removeprefix("fortunes_topics_")] = result.output_dir
    return out


def test_every_strategy_has_a_text_recipe():
    from hf_finetune.strategies import STRATEGIES

    covered = {name.removeprefix("fortunes_topics_") for name in STRATEGY_RECIPES} | {"full"}
    assert set(STRATEGIES.all()) <= covered


def test_each_recipe_finishes_with_a_per_block_summary_in_the_card(runs):
    for name, out in runs.items():
        assert (out / "run_complete.json").is_file(), name
        card = (out / "README.md").read_text(encoding="utf-8")
        assert "| block.5 |" in card and "| head |" in card, name


@pytest.mark.parametrize(
    "strategy,frozen_prefixes",
    [
        ("linear_probe", ("bert.embeddings.", "bert.encoder.", "bert.pooler.")),
        ("freeze_bottom", ("bert.embeddings.", "bert.encoder.layer.0.", "bert.encoder.layer.2.")),
    ],
)
def test_frozen_blocks_are_bit_identical_to_the_checkpoint(runs, minilm_dir, strategy, frozen_prefixes):
    trained = load_file(runs[strategy] / "model.safetensors")
    original = checkpoint_weights(minilm_dir)
    frozen = [name for name in trained if name.startswith(frozen_prefixes)]
    assert frozen and all(trained[name].equal(original[name]) for name in frozen)
    moved = [name for name in trained if name.startswith("classifier.")]
    assert moved  # the head exists and is saved


def test_scratch_starts_from_random_weights(runs, minilm_dir):
    trained = load_file(runs["scratch"] / "model.safetensors")
    original = checkpoint_weights(minilm_dir)
    matrices = [name for name, value in trained.items() if value.dim() == 2 and name in original]
    assert matrices and not any(trained[name].equal(original[name]) for name in matrices)


@pytest.mark.parametrize("strategy,marker", [("lora", "lora_"), ("ia3", "ia3_")])
def test_adapter_runs_save_adapters_and_head_only(runs, strategy, marker):
    out = runs[strategy]
    assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()
    keys = load_file(out / "adapter_model.safetensors").keys()
    assert any(marker in key for key in keys)
    assert any("classifier" in key for key in keys)
    assert all(marker in key or "classifier" in key for key in keys)


def test_merged_model_predicts_as_the_adapters_do(runs, tmp_path, capsys):
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from hf_finetune.modeling.loading import resolve_checkpoint

    adapters = runs["lora"]
    merged_dir = tmp_path / "merged"
    code, out, err = run_cli(["merge", "--model", str(adapters), "--out", str(merged_dir)], capsys)
    assert code == 0, err
    assert (merged_dir / "model.safetensors").is_file() and not (merged_dir / "adapter_config.json").exists()

    tokenizer = AutoTokenizer.from_pretrained(adapters)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    base = AutoModelForSequenceClassification.from_pretrained(
        resolve_checkpoint("packaged:all-MiniLM-L6-v2"), config=AutoConfig.from_pretrained(adapters)
    )
    unmerged = PeftModel.from_pretrained(base, adapters).eval()
    merged = AutoModelForSequenceClassification.from_pretrained(merged_dir).eval()
    with torch.no_grad():
        torch.testing.assert_close(unmerged(**batch).logits, merged(**batch).logits, atol=1e-5, rtol=1e-4)

    plain = pipeline("text-classification", model=str(merged_dir))  # no peft, no hf_finetune
    with torch.no_grad():
        expected = [merged.config.id2label[i] for i in merged(**batch).logits.argmax(-1).tolist()]
    assert [p["label"] for p in plain(TEXTS)] == expected


def test_evaluate_and_predict_load_an_adapter_folder(runs, tmp_path, capsys, fortunes_csv):
    adapters = runs["lora"]
    code, out, err = run_cli(["predict", "--model", str(adapters), "--text", TEXTS[0], "--text", TEXTS[1]], capsys)
    assert code == 0, err
    assert out.count('"label"') == 2
    code, out, err = run_cli(
        ["evaluate", "--model", str(adapters), "--data", str(fortunes_csv["test"]), "--text_column", "review",
         "--label_column", "topic"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "accuracy" in out


def test_merge_refuses_a_plain_model_and_a_used_folder(runs, tmp_path, capsys):
    code, _, err = run_cli(["merge", "--model", str(runs["llrd"]), "--out", str(tmp_path / "m")], capsys)
    assert code == 2 and "already a plain model" in err
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    code, _, err = run_cli(["merge", "--model", str(runs["lora"]), "--out", str(used)], capsys)
    assert code == 2 and "not empty" in err
    assert (used / "keep.txt").read_text() == "mine"
