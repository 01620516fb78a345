"""Frozen-feature extraction: cache shapes and reuse, pooling under padding, two backbones, images.

Real checkpoints only: the packaged MiniLM, the session's fine-tuned MiniLM, the session's pretrained ViT.
"""

import numpy as np
import pytest
from conftest import run_cli

from hf_finetune.analysis.classical import run_classical
from hf_finetune.analysis.features import FEATURES_JSON, extract_features, load_features
from hf_finetune.modeling.backbone import load_backbone

SHORT = "Computers are useless. They can only give you answers."
LONG = " ".join(["The trouble with programmers is that you can never tell what a programmer is doing"] * 6)
SLICE = ["--config", "fortunes_topics", "--max_train_samples", "60", "--max_eval_samples", "30"]


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return load_backbone(minilm_dir)


def test_features_command_caches_every_split_and_reuses_it(tmp_path, capsys):
    out = tmp_path / "feats"
    code, stdout, err = run_cli(["features", *SLICE, "--out", str(out)], capsys)
    assert code == 0, err
    assert "wrote features" in stdout
    sets = load_features(out)
    assert set(sets) == {"train", "validation", "test"}
    assert sets["train"].features.shape == (60, 384) and sets["test"].features.shape == (30, 384)
    assert sets["train"].features.dtype == np.float32 and sets["train"].labels.dtype == np.int64
    assert sets["train"].label_names == ["computers", "politics", "science", "songs-poems"]
    assert len(set(sets["train"].ids)) == 60
    meta = sets["train"].meta
    assert meta["pooling"] == "cls" and meta["backbones"][0]["dim"] == 384
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    code, stdout, err = run_cli(["features", *SLICE, "--out", str(out)], capsys)
    assert code == 0 and "reused features" in stdout, err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps  # nothing recomputed or rewritten

    # Another request for the same folder is refused rather than silently mixed up.
    code, _, err = run_cli(["features", *SLICE, "--pooling", "mean", "--out", str(out)], capsys)
    assert code == 2 and "differs in: pooling" in err
    assert (out / FEATURES_JSON).is_file()


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_padding_does_not_change_a_sentence_features(minilm, pooling):
    alone = extract_features("minilm", [SHORT], column="text", pooling=pooling, backbone=minilm, progress=False)
    batched = extract_features(
        "minilm", [SHORT, LONG], column="text", pooling=pooling, batch_size=2, backbone=minilm, progress=False
    )
    tokens = minilm.tokenizer([SHORT, LONG])["input_ids"]
    assert len(tokens[1]) > 2 * len(tokens[0])  # SHORT really is padded in the pair's batch
    np.testing.assert_allclose(batched[0], alone[0], atol=1e-5, rtol=1e-4)
    assert not np.allclose(batched[0], batched[1], atol=1e-2)


def test_mean_pooling_differs_from_cls(minilm):
    cls = extract_features("m", [SHORT, LONG], column="text", pooling="cls", backbone=minilm, progress=False)
    mean = extract_features("m", [SHORT, LONG], column="text", pooling="mean", backbone=minilm, progress=False)
    assert cls.shape == mean.shape == (2, 384)
    assert not np.allclose(cls, mean, atol=1e-3)


def test_two_backbones_concatenate_with_their_slices(tmp_path, capsys, minilm_dir, trained_run):
    """A checkpoint and its fine-tuned version side by side: 384 + 384 columns, each block as extracted alone."""
    out = tmp_path / "two"
    argv = [
        "features",
        *SLICE,
        "--max_train_samples",
        "20",
        "--model",
        f"{minilm_dir},{trained_run}",
        "--out",
        str(out),
    ]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    sets = load_features(out)
    blocks = sets["test"].meta["backbones"]
    assert sets["test"].features.shape == (30, 768)
    assert [(b["start"], b["end"]) for b in blocks] == [(0, 384), (384, 768)]
    single = tmp_path / "single"
    assert run_cli(["features", *SLICE, "--max_train_samples", "20", "--model", str(trained_run), "--out",
                    str(single)], capsys)[0] == 0  # fmt: skip
    np.testing.assert_allclose(sets["test"].features[:, 384:], load_features(single)["test"].features, atol=1e-5)
    assert not np.allclose(sets["test"].features[:, :384], sets["test"].features[:, 384:], atol=1e-2)

    report = run_classical(out, "logreg", tmp_path / "head", cv=0)  # each backbone's contribution is reported
    rows = report["contributions"]
    assert [r["model"] for r in rows] == [b["model"] for b in blocks]
    assert sum(r["weight_norm_share"] for r in rows) == pytest.approx(1.0)
    assert all(0 <= r["alone_accuracy"] <= 1 for r in rows) and "concatenated | 768" in report["markdown"]


def test_image_features_from_the_pretrained_vit(pretrained_vit):
    from hf_finetune.assets.fashion_mnist import fashion_mnist_target

    images = fashion_mnist_target()["test"].select(range(12))
    backbone = load_backbone(str(pretrained_vit))
    cls = extract_features("vit", images, column="image", pooling="cls", batch_size=5, backbone=backbone)
    mean = extract_features("vit", images, column="image", pooling="mean", batch_size=12, backbone=backbone)
    assert backbone.modality == "image" and cls.shape == mean.shape == (12, 128)
    assert np.isfinite(cls).all() and not np.allclose(cls, mean, atol=1e-3)
    again = extract_features("vit", images, column="image", pooling="cls", batch_size=12, backbone=backbone)
    np.testing.assert_allclose(again, cls, atol=1e-5)  # batching does not change an image's features
