"""Multi-task learning: one shared encoder, one head per task (`hf_finetune.tasks.multi_task`, task `multi_task`).

Unit tests run on the real packaged MiniLM encoder and real fortunes; the end-to-end test trains
both Fashion-MNIST heads of the `fashion_mnist_multitask` recipe from the ViT checkpoint the
suite builds (random init), through the CLI, and predicts with the saved folder.
"""

from collections import Counter

import pytest
import torch
from conftest import read_json, run_cli

TASKS = {"topic": ["computers", "politics", "science", "songs-poems"], "length": ["short", "long"]}
TEXTS = [
    "The compiler crashed again while linking the kernel module.",
    "The senate passed the budget after a long night of debate.",
    "Photons travel at the speed of light in a vacuum.",
    "Oh the moon is bright and the river sings along tonight.",
]


@pytest.fixture(scope="module")
def encoder_and_tokenizer(minilm_dir):
    from hf_finetune.modeling.backbone import load_backbone

    backbone = load_backbone(minilm_dir)
    return backbone.model, backbone.tokenizer


def make_model(encoder_and_tokenizer, weights=None):
    """A fresh multi-task model on a copy of the real MiniLM encoder (eval mode: no dropout noise)."""
    import copy

    from hf_finetune.tasks.multi_task.model import MultiTaskModel

    torch.manual_seed(0)
    encoder = copy.deepcopy(encoder_and_tokenizer[0]).requires_grad_(True)
    model = MultiTaskModel(encoder, TASKS, weights or {"topic": 1.0, "length": 1.0})
    return model.eval()


def batch(tokenizer, task_ids, labels):
    inputs = dict(tokenizer(TEXTS[: len(task_ids)], padding=True, return_tensors="pt"))
    return {**inputs, "task_ids": torch.tensor(task_ids), "labels": torch.tensor(labels)}


def head_grads(model, task):
    return [p.grad for p in model.heads[task].parameters()]


# --- Loss weighting and gradient routing ---


def test_each_head_gets_only_its_own_tasks_gradients(encoder_and_tokenizer):
    model = make_model(encoder_and_tokenizer)
    model(**batch(encoder_and_tokenizer[1], [0, 0, 0], [0, 1, 2]))["loss"].backward()
    assert all(g is None for g in head_grads(model, "length")), "a topic batch reached the length head"
    assert all(g is not None and g.abs().sum() > 0 for g in head_grads(model, "topic"))
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())

    model.zero_grad(set_to_none=True)
    model(**batch(encoder_and_tokenizer[1], [1, 1], [0, 1]))["loss"].backward()
    assert all(g is None for g in head_grads(model, "topic"))
    assert all(g.abs().sum() > 0 for g in head_grads(model, "length"))


def test_loss_is_the_task_weight_times_that_heads_cross_entropy(encoder_and_tokenizer):
    tokenizer = encoder_and_tokenizer[1]
    model = make_model(encoder_and_tokenizer)
    inputs = batch(tokenizer, [0, 0, 1, 1], [0, 3, 0, 1])
    out = model(**inputs)
    logits = out["logits"]
    expected = (
        torch.nn.functional.cross_entropy(logits[:2, :4], inputs["labels"][:2], reduction="sum")
        + torch.nn.functional.cross_entropy(logits[2:, :2], inputs["labels"][2:], reduction="sum")
    ) / 4
    assert torch.allclose(out["loss"], expected, atol=1e-6)
    assert (logits[2:, 2:] < -1e3).all(), "the length head's missing label slots must be padded out"

    model.weights["topic"] = 3.0
    weighted = model(**inputs)["loss"]
    topic_part = torch.nn.functional.cross_entropy(logits[:2, :4], inputs["labels"][:2], reduction="sum") / 4
    assert torch.allclose(weighted, expected + 2 * topic_part, atol=1e-5)


def test_a_task_of_weight_zero_gives_zero_loss_and_leaves_its_head(encoder_and_tokenizer):
    from hf_finetune.tasks.multi_task.sampler import TaskSampling

    model = make_model(encoder_and_tokenizer, weights={"topic": 1.0, "length": 0.0})
    loss = model(**batch(encoder_and_tokenizer[1], [1, 1], [0, 1]))["loss"]
    assert loss.item() == 0.0
    loss.backward()
    assert all(torch.count_nonzero(g) == 0 for g in head_grads(model, "length"))
    # ... and the sampler gives it no batches at all.
    assert TaskSampling.build([100, 900], [1.0, 0.0], "temperature", 2.0).probabilities == [1.0, 0.0]


# --- Task sampling ---


@pytest.mark.parametrize(
    "sampling, expected_share_of_small",
    [("proportional", 0.1), ("uniform", 0.5), ("temperature", 0.25)],  # T=2: sqrt(100) / (sqrt(100) + sqrt(900))
)
def test_batches_per_task_follow_the_sampling_rule(sampling, expected_share_of_small):
    from hf_finetune.tasks.multi_task.sampler import TaskBatchSampler, TaskSampling

    plan = TaskSampling.build([100, 900], [1.0, 1.0], sampling, 2.0)
    sampler = TaskBatchSampler(plan, batch_size=10, seed=0)
    assert len(sampler) == 100  # one pass over both tasks: 10 + 90 batches
    counts, seen_small = Counter(), set()
    for epoch in range(20):
        sampler.set_epoch(epoch)
        for indices in sampler:
            assert len(indices) == 10
            tasks = {0 if i < 100 else 1 for i in indices}
            assert len(tasks) == 1, "a batch mixes tasks"
            counts[tasks.pop()] += 1
            seen_small.update(i for i in indices if i < 100)
    share = counts[0] / (counts[0] + counts[1])
    assert share == pytest.approx(expected_share_of_small, abs=0.03), (sampling, share)
    assert seen_small == set(range(100)), "the small task's rows are all used before any repeats"


def test_the_same_seed_and_epoch_give_the_same_batches():
    from hf_finetune.tasks.multi_task.sampler import TaskBatchSampler, TaskSampling

    plan = TaskSampling.build([30, 70], [1.0, 1.0], "uniform", 2.0)
    first, second = TaskBatchSampler(plan, 8, seed=3), TaskBatchSampler(plan, 8, seed=3)
    epoch_0 = list(first)
    assert epoch_0 == list(second)
    assert list(first) != epoch_0, "a new epoch draws new batches"
    assert list(TaskBatchSampler(plan, 8, seed=4)) not in (epoch_0, list(second))


# --- The folder: save, load, predict ---


def test_save_and_load_give_identical_predictions_for_every_head(encoder_and_tokenizer, tmp_path):
    from hf_finetune.modeling.backbone import pool
    from hf_finetune.tasks.multi_task.folder import load_multitask_weights, save_multitask
    from hf_finetune.tasks.multi_task.predictor import MultiTaskPredictor

    model = make_model(encoder_and_tokenizer)
    with torch.no_grad():  # trained-looking weights, not the init
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_multitask(model, tmp_path)
    encoder_and_tokenizer[1].save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors", "heads.safetensors", "multitask.json"} <= {
        p.name for p in tmp_path.iterdir()
    }
    predictor = MultiTaskPredictor(tmp_path)
    rows = predictor.predict(TEXTS)
    inputs = dict(encoder_and_tokenizer[1](TEXTS, padding=True, truncation=True, max_length=128, return_tensors="pt"))
    with torch.no_grad():
        features = pool(model.encoder(**inputs))
        for task, labels in TASKS.items():
            probabilities = model.heads[task](features).softmax(-1)
            assert [r[task] for r in rows] == [labels[i] for i in probabilities.argmax(-1).tolist()]
            assert [r[f"{task}_score"] for r in rows] == pytest.approx(probabilities.max(-1).values.tolist(), abs=1e-4)
    assert set(predictor.predict(TEXTS[:1], tasks=["length"])[0]) == {"length", "length_score"}

    fresh = make_model(encoder_and_tokenizer)  # the checkpoint reload the trainer uses (resume, best model)
    load_multitask_weights(tmp_path, fresh)
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


# --- Bad input: one line, exit 2 ---


def test_unknown_task_in_predict_is_a_user_error(encoder_and_tokenizer, tmp_path, capsys):
    from hf_finetune.errors import UserError
    from hf_finetune.tasks.multi_task.folder import save_multitask
    from hf_finetune.tasks.multi_task.predictor import MultiTaskPredictor

    save_multitask(make_model(encoder_and_tokenizer), tmp_path)
    encoder_and_tokenizer[1].save_pretrained(tmp_path)
    with pytest.raises(UserError, match="unknown task 'sentiment'.*topic, length"):
        MultiTaskPredictor(tmp_path).predict(TEXTS, tasks=["sentiment"])
    code, _, err = run_cli(["predict", "--model", str(tmp_path), "--task", "sentiment", "--text", "hi"], capsys)
    assert code == 2 and "unknown task 'sentiment'" in err
    code, _, err = run_cli(["evaluate", "--model", str(tmp_path), "--data", "x.csv"], capsys)
    assert code == 2 and "multi-task model: pass --task NAME" in err


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["--multitask_label_columns", "label", "grade"], "column 'grade' not found in train split"),
        (["--multitask_label_columns", "label"], "multitask_label_columns has 1 entries but there are 2 tasks"),
        (["--multitask_weights", "1", "-1"], "must not be negative"),
        (["--multitask_sampling", "random"], "multitask_sampling must be one of proportional, uniform"),
        (["--multitask_names", "topic", "topic"], "names a task twice"),
        (["--strategy", "lora"], "strategy lora replaces or wraps the whole model"),
    ],
)
def test_bad_multitask_settings_are_one_line_errors(overrides, message, tmp_path, capsys):
    argv = ["train", "--config", "fortunes_multitask", "--output_dir", str(tmp_path / "out"), *overrides]
    code, _, err = run_cli(argv, capsys)
    assert code == 2, err
    errors = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in err, err
    assert not (tmp_path / "out").exists(), "bad input must not leave an output folder"


# --- End to end on real images ---


@pytest.mark.slow
def test_both_heads_beat_their_majority_baseline_and_predict_from_the_folder(pretrained_vit, tmp_path, capsys):
    """The vision recipe, small: 10-way garment (200 images) and 3-way category (600) on the session's
    pretrained ViT, then `predict --task all` on real image files from the saved folder."""
    out = tmp_path / "model"
    argv = ["train", "--config", "fashion_mnist_multitask", "--model_name_or_path", str(pretrained_vit),
            "--multitask_max_train_samples", "200", "600", "--max_eval_samples", "200", "--num_train_epochs", "3",
            "--output_dir", str(out), "--disable_tqdm", "true"]  # fmt: skip
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    metrics = read_json(out / "metrics.json")
    test, baseline = metrics["metrics"]["test"], metrics["baseline"]["scores"]
    for task in ("garment", "category"):
        assert test[f"{task}_accuracy"] > baseline[f"{task}_accuracy"] + 0.1, (task, test, baseline)
    garment, category = metrics["tasks"]["garment"], metrics["tasks"]["category"]
    assert garment["train_rows"] == 200 and category["train_rows"] == 600
    assert garment["batch_share"] == pytest.approx(0.366, abs=0.01)  # sqrt(200) / (sqrt(200) + sqrt(600))
    assert set(metrics["per_task"]["test"]) == {"garment", "category"}
    assert (out / "run_complete.json").is_file() and (out / "heads.safetensors").is_file()

    from hf_finetune.assets.fashion_mnist import FASHION_MNIST_ATTRIBUTES, fashion_mnist

    images = fashion_mnist()["test"].select(range(40))
    names = images.features["label"].names
    lines = ["path"]
    for i, row in enumerate(images):
        row["image"].save(tmp_path / f"{i}.png")
        lines.append(f"{i}.png")
    (tmp_path / "images.csv").write_text("\n".join(lines) + "\n")
    predictions = tmp_path / "predictions.jsonl"
    argv = ["predict", "--model", str(out), "--input", str(tmp_path / "images.csv"), "--text_column", "path",
            "--output", str(predictions)]  # fmt: skip
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    rows = [read_json_line(line) for line in predictions.read_text().splitlines()]
    assert len(rows) == 40 and {"garment", "garment_score", "category", "category_score"} <= set(rows[0])
    category_right = sum(
        r["category"] in FASHION_MNIST_ATTRIBUTES[names[y]] for r, y in zip(rows, images["label"], strict=True)
    )
    assert category_right / 40 >= 0.8  # always `clothing` would score ~0.7


def read_json_line(line: str) -> dict:
    import json

    return json.loads(line)
