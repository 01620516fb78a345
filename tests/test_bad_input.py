"""Bad input: one line on stderr, exit code 2, no traceback, nothing already written lost.

Each case runs in-process through `hf_finetune.cli`, as the `hf-finetune` command does,
and fails before training: on the packaged MiniLM, the random-init ViT and real digit images.
A case either starts with files in the output folder (a finished run, the user's own files),
which must come out byte-identical, or starts without one, which must not be created.
"""

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import corrupt_image_csv, csv_recipe_args, run_cli

from hf_finetune.engine.checkpoints import CHECKPOINT_COMPLETE
from hf_finetune.outputs import COMPLETE_MARKER

GOOD_ROWS = pd.DataFrame({"review": ["good", "bad", "fine", "awful"] * 5, "topic": ["a", "b"] * 10})
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
FINISHED_RUN = {COMPLETE_MARKER: json.dumps({"metrics": {}}).encode(), "model.safetensors": b"precious"}
USER_FILES = {"notes.txt": b"mine", "data/keep.csv": b"a,b\n1,2\n"}
SHA = "0123456789abcdef0123456789abcdef01234567"
WEIGHTS = "model.safetensors"
CUSTOM_CODE = {"AutoModelForSequenceClassification": "modeling_x.XModel"}  # config.json's auto_map
IMAGE_CSV_COLUMNS = ("--image_column", "file", "--label_column", "category")
NUMBERS_AS_IMAGES = pd.DataFrame({"file": [3, 4] * 5, "category": ["a", "b"] * 5})


class Inputs:
    """What a case builds its command line from; the image fixtures load only for the cases that use them."""

    def __init__(self, request, tmp_path: Path):
        self.request, self.tmp, self.out = request, tmp_path, tmp_path / "out"

    csv = property(lambda self: self.request.getfixturevalue("good_csv"))
    minilm = property(lambda self: Path(self.request.getfixturevalue("minilm_dir")))
    vit = property(lambda self: self.request.getfixturevalue("vit_init_dir"))
    digits = property(lambda self: self.request.getfixturevalue("digit_folder"))


@dataclass(frozen=True)
class Case:
    argv: Callable[[Inputs], list[str]]
    message: str  # regular expression the one `error:` line must match
    existing: dict[str, bytes] = field(default_factory=dict)  # files in the output folder before the run
    marks: tuple = ()


@pytest.fixture
def good_csv(tmp_path):
    path = tmp_path / "good.csv"
    GOOD_ROWS.to_csv(path, index=False)
    return path


def text(x: Inputs, *extra, train=None) -> list[str]:
    """`train` on the fortunes recipe pointed at a user's CSV (the good one unless `train` is given)."""
    return ["train", *csv_recipe_args(train or x.csv), "--output_dir", str(x.out), *extra]


def images(x: Inputs, *extra) -> list[str]:
    return ["train", "--config", "fashion_mnist_target", "--model_name_or_path", str(x.vit),
            "--output_dir", str(x.out), *extra]  # fmt: skip


def write_bytes(x: Inputs, name: str, data: bytes) -> Path:
    path = x.tmp / name
    path.write_bytes(data)
    return path


def write_csv(x: Inputs, df: pd.DataFrame, name: str = "data.csv") -> Path:
    path = x.tmp / name
    df.to_csv(path, index=False)
    return path


def checkpoint_folder(x: Inputs, *, weights: str | None, tokenizer: bool = True, **config) -> Path:
    """The real checkpoint's config (updated with `config`) and tokenizer, with a stand-in weights file (or none):
    every check here runs before the weights are read."""
    folder = x.tmp / "ckpt"
    folder.mkdir()
    values = json.loads((x.minilm / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**values, **config}))
    for name in TOKENIZER_FILES if tokenizer else ():
        if (x.minilm / name).exists():
            shutil.copy(x.minilm / name, folder / name)
    if weights:
        (folder / weights).write_bytes(b"\0" * 16)
    return folder


def unfinished_run(model_type: str, labels: tuple[str, ...], run_config: bytes | None = None) -> dict[str, bytes]:
    """What a killed run leaves: its run_config.yaml (when given) and a complete checkpoint-4 whose
    config names `model_type` and `labels` (what `hf_finetune.engine.checkpoints.check_resumable` reads)."""
    config = json.dumps({"model_type": model_type, "id2label": dict(enumerate(labels))}).encode()
    files = {"checkpoint-4/config.json": config, "checkpoint-4/trainer_state.json": b"{}"}
    sizes = {name.split("/", 1)[1]: len(data) for name, data in files.items()}
    files["checkpoint-4/" + CHECKPOINT_COMPLETE] = json.dumps({"step": 4, "files": sizes}).encode()
    return {**files, **({"run_config.yaml": run_config} if run_config is not None else {})}


def image_csv(x: Inputs, bad_name: str, bad_bytes: bytes) -> list[str]:
    """The real digit images listed in a CSV, plus one bad file, as `train` options."""
    rows = [{"file": str(p), "category": p.parent.name} for p in sorted(x.digits.rglob("*.png"))]
    write_bytes(x, bad_name, bad_bytes)
    rows.append({"file": bad_name, "category": "0"})
    path = write_csv(x, pd.DataFrame(rows), "images.csv")
    return ["--train_file", str(path), *IMAGE_CSV_COLUMNS]


def a_png(x: Inputs) -> bytes:
    return sorted(x.digits.rglob("*.png"))[0].read_bytes()


def damaged_png(x: Inputs) -> bytes:
    """A PNG whose compressed pixel data has 20 bytes zeroed: header intact, decoding fails."""
    good = a_png(x)
    start = good.find(b"IDAT") + 8
    return good[:start] + bytes(20) + good[start + 20 :]


def without_processor(x: Inputs) -> Path:
    folder = x.tmp / "no_processor"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(x.vit / name, folder / name)
    return folder


def unreadable_csv(x: Inputs) -> Path:
    # Permissions do not stop root (who runs these tests in some containers); reading /proc/self/mem
    # at offset 0 fails with EIO for any user, as a file on a failing disk does.
    link = x.tmp / "unreadable.csv"
    link.symlink_to("/proc/self/mem")
    return link


CASES = {
    # --- data files ---
    "missing data file": Case(lambda x: text(x, train=x.tmp / "nope.csv"), "does not exist"),
    "empty data file": Case(lambda x: text(x, train=write_bytes(x, "e.csv", b"")), "is empty"),
    "unreadable data file": Case(lambda x: text(x, train=unreadable_csv(x)), "cannot read .*Input/output error"),
    "non-UTF-8 data file": Case(
        lambda x: text(x, train=write_bytes(x, "l.csv", "review,topic\ncaf\xe9,a\n".encode("latin-1") * 50)),
        "not UTF-8 .* re-save it as UTF-8",
    ),
    "unsupported file type": Case(
        lambda x: text(x, train=write_bytes(x, "d.xlsx", b"PK\x03\x04")), "unsupported file type '.xlsx'"
    ),
    "corrupt parquet": Case(
        lambda x: text(x, train=write_bytes(x, "d.parquet", b"not parquet at all")), "cannot parse .* as parquet"
    ),
    # --- columns and labels ---
    "missing text column": Case(
        lambda x: text(x, "--text_column", "body"), "column 'body' not found .* available columns: review, topic"
    ),
    "text column of numbers": Case(
        lambda x: text(x, train=write_csv(x, GOOD_ROWS.assign(review=range(20)))),
        "column 'review' of the train split holds int64 values, not text; set --text_column",
    ),
    "label column with one class": Case(
        lambda x: text(x, train=write_csv(x, GOOD_ROWS.assign(topic="a"))), "only one class"
    ),
    "labels in eval not seen in train": Case(
        lambda x: text(x, "--validation_file", str(write_csv(x, GOOD_ROWS.assign(topic="c"), "val.csv"))),
        "labels in validation not seen in train: c",
    ),
    "empty text rows": Case(
        lambda x: text(x, train=write_csv(x, GOOD_ROWS.assign(review=["x", None] * 10))),
        "empty text in column 'review'",
    ),
    "NaN text rows": Case(
        lambda x: text(
            x, train=write_bytes(x, "n.jsonl", b'{"review": NaN, "topic": "a"}\n{"review": "x", "topic": "b"}\n' * 5)
        ),
        r"5 row\(s\) .* empty text in column 'review' \(rows 0, 2, 4, 6, 8; blank, null or NaN\)",
    ),
    # --- images ---
    "zero-byte image": Case(
        lambda x: images(x, *image_csv(x, "empty.png", b"")),
        r"1 unreadable image\(s\).*empty\.png \(empty file, 0 bytes\).*--skip_bad_images",
        existing=USER_FILES,
    ),
    "truncated image": Case(
        lambda x: images(x, *image_csv(x, "cut.png", a_png(x)[:60])),
        r"1 unreadable image\(s\).*cut\.png \(image file is truncated\).*--skip_bad_images",
        existing=USER_FILES,
    ),
    "corrupt image": Case(
        lambda x: images(x, *image_csv(x, "broken.png", damaged_png(x))),
        r"1 unreadable image\(s\).*broken\.png \(broken data stream.*--skip_bad_images",
        existing=USER_FILES,
    ),
    "several unreadable images, all named": Case(  # moved here from test_images.py
        lambda x: images(x, "--train_file", str(corrupt_image_csv(x.digits, x.tmp)), *IMAGE_CSV_COLUMNS),
        r"3 unreadable image\(s\).*truncated\.png.*notes\.png \(not an image file\).*missing\.png.*--skip_bad_images",
        existing={"keep.txt": b"mine"},
    ),
    "image column not found": Case(
        lambda x: images(x, "--dataset_name", str(x.digits), "--image_column", "photo"), "column 'photo' not found"
    ),
    "image column of numbers": Case(
        lambda x: images(x, "--train_file", str(write_csv(x, NUMBERS_AS_IMAGES)), *IMAGE_CSV_COLUMNS),
        "not images or image paths",
    ),
    "unknown augmentation": Case(lambda x: images(x, "--augmentation", "mixup"), "augmentation must be one of"),
    # --- checkpoints ---
    "checkpoint path does not exist": Case(
        lambda x: text(x, "--model_name_or_path", str(x.tmp / "missing_ckpt")), "checkpoint folder .* does not exist"
    ),
    "checkpoint folder without weights": Case(
        lambda x: text(x, "--model_name_or_path", str(checkpoint_folder(x, weights=None))), "no model weights"
    ),
    "pickle-only weights": Case(
        lambda x: text(x, "--model_name_or_path", str(checkpoint_folder(x, weights="pytorch_model.bin"))),
        "pickle weights .* --allow_pickle",
    ),
    "tokenizer missing from the checkpoint folder": Case(
        lambda x: text(x, "--model_name_or_path", str(checkpoint_folder(x, weights=WEIGHTS, tokenizer=False))),
        "no tokenizer files in .*; pass --tokenizer_name",
    ),
    "image processor missing from the checkpoint folder": Case(
        lambda x: images(x, "--model_name_or_path", str(without_processor(x)), "--dataset_name", str(x.digits)),
        r"no image processor \(preprocessor_config.json\) in .*no_processor",
    ),
    "checkpoint head of another size": Case(
        lambda x: images(x, "--dataset_name", str(x.digits), "--ignore_mismatched_sizes", "false"),
        "already has a classification head of a different size than the 3 labels; pass --ignore_mismatched_sizes",
        existing=USER_FILES,
    ),
    "remote code without trust_remote_code": Case(
        lambda x: text(x, "--model_name_or_path", str(checkpoint_folder(x, weights=WEIGHTS, auto_map=CUSTOM_CODE))),
        r"ships its own model code \(auto_map in config.json\), which runs only with --trust_remote_code",
    ),
    "trust_remote_code with an unpinned Hub id": Case(
        lambda x: text(x, "--model_name_or_path", "someorg/custom-model", "--trust_remote_code", "true"),
        r"--trust_remote_code runs code from the Hub repo someorg/custom-model, .*--revision <commit sha>",
    ),
    "trust_remote_code with a branch as revision": Case(
        lambda x: text(
            x, "--model_name_or_path", "someorg/custom-model", "--trust_remote_code", "true", "--revision", "main"
        ),
        r"--revision <commit sha> \(40 hex digits\); 'main' is a branch or tag, which can move",
    ),
    # --- strategies and training settings ---
    "unknown strategy": Case(lambda x: text(x, "--strategy", "magic"), "unknown strategy 'magic'"),
    "refused strategy combination": Case(
        lambda x: text(x, "--strategy", "lora+l2sp"), "lora and l2sp cannot be combined: adapters keep"
    ),
    "more frozen layers than the model has": Case(
        lambda x: text(x, "--strategy", "freeze_bottom", "--freeze_num_layers", "9"),
        "freeze_num_layers must be between 0 and 6",
        existing=USER_FILES,
    ),
    "LoRA target that matches nothing": Case(
        lambda x: text(x, "--strategy", "lora", "--lora_target_modules", "query", "qury"),
        "lora_target_modules: nothing in BertForSequenceClassification outside the head matches qury; "
        "the blocks' linear layers end in dense, key, query, value",
        existing=USER_FILES,
    ),
    "batch size 0": Case(lambda x: text(x, "--per_device_train_batch_size", "0"), "at least 1"),
    "negative learning rate": Case(lambda x: text(x, "--learning_rate", "-1"), "must not be negative"),
    "fp16 without CUDA": Case(
        lambda x: text(x, "--fp16", "true"),
        "fp16 mixed precision needs a CUDA GPU and this machine has none; use --bf16",
        marks=(pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),),
    ),
    # --- output folder ---
    "output folder holding a finished run": Case(
        lambda x: text(x), "already holds a finished run.*--overwrite_output_dir", existing=FINISHED_RUN
    ),
    "resume from a checkpoint of another label set": Case(
        lambda x: text(x),
        "cannot resume from .*checkpoint-4: its labels \\(x, y\\) differ",
        existing=unfinished_run(model_type="bert", labels=("x", "y")),
    ),
    "resume from a checkpoint of another model": Case(
        lambda x: text(x),
        "cannot resume from .*checkpoint-4: it is a vit model and this run trains a bert",
        existing=unfinished_run(model_type="vit", labels=("a", "b")),
    ),
    "resume an unfinished run with other settings": Case(
        lambda x: text(x),
        "holds an unfinished run with other settings .*--resume false --overwrite_output_dir",
        existing=unfinished_run(model_type="bert", labels=("a", "b"), run_config=b"learning_rate: 0.5\n"),
    ),
    "start over on checkpoints without --overwrite_output_dir": Case(
        lambda x: text(x, "--resume", "false"),
        "holds checkpoints of an unfinished run; continue it with --resume auto",
        existing=unfinished_run(model_type="bert", labels=("a", "b")),
    ),
    "resume from a checkpoint that does not exist": Case(
        lambda x: text(x, "--resume", str(x.tmp / "checkpoint-9")), "resume: checkpoint folder .* does not exist"
    ),
    "resume from a half-written checkpoint": Case(
        lambda x: text(x, "--resume", str(x.out / "checkpoint-4")),
        "is not a complete checkpoint",
        existing={"checkpoint-4/config.json": b"{}"},
    ),
    "output folder under a file": Case(
        lambda x: ["train", *csv_recipe_args(x.csv), "--output_dir", str(write_bytes(x, "afile", b"") / "out")],
        "cannot write to output_dir",
    ),
    # --- recipes and command line ---
    "unknown recipe key": Case(
        lambda x: ["train", "--config", str(write_bytes(x, "r.yaml", b"model_name_or_path: x\nlerning_rate: 1\n"))],
        "unknown key.*lerning_rate",
    ),
    "malformed recipe": Case(
        lambda x: ["train", "--config", str(write_bytes(x, "r.yaml", b"a: [1\n"))], "not valid YAML at line 2"
    ),
    "unknown recipe name": Case(lambda x: ["train", "--config", "no_such_recipe"], "no recipe named"),
    "unknown option": Case(lambda x: text(x, "--lerning_rate", "1"), "unknown option"),
    "unknown command": Case(lambda x: ["trian"], "unknown command 'trian'"),
    "merge of a missing folder": Case(
        lambda x: ["merge", "--model", str(x.tmp / "nope"), "--out", str(x.out)], "model folder .* does not exist"
    ),
    # --- advise ---
    "advise on too small a sample": Case(
        lambda x: [
            "advise",
            "--model",
            str(x.minilm),
            "--data",
            str(x.csv),
            "--sample",
            "5",
            "--out",
            str(x.out / "r.yaml"),
        ],  # fmt: skip
        "--sample must be at least 20",
    ),
    "advise without data": Case(
        lambda x: ["advise", "--model", str(x.minilm), "--out", str(x.out / "r.yaml")],
        "advise needs a checkpoint and data",
    ),
    "advise into a non-YAML file": Case(
        lambda x: ["advise", "--model", str(x.minilm), "--data", str(x.csv), "--out", str(x.out / "r.txt")],
        "--out must be a .yaml file",
    ),
    "advise on a missing column": Case(
        lambda x: ["advise", "--model", str(x.minilm), "--data", str(x.csv), "--out", str(x.out / "r.yaml")],
        "column 'text' not found",
    ),
    "compare with a missing advice file": Case(
        lambda x: ["compare", "--config", "fortunes_topics", "--advice", str(x.tmp / "nope.json"), "--out", str(x.out)],
        "--advice .* does not exist",
    ),
    # --- features, classical heads, cross-validation, compare ---
    "features: unknown pooling": Case(
        lambda x: ["features", "--config", "fortunes_topics", "--pooling", "max", "--out", str(x.out)],
        "argument --pooling: invalid choice: 'max'",
    ),
    "features: backbone folder that does not exist": Case(
        lambda x: ["features", "--config", "fortunes_topics", "--model", str(x.tmp / "nope"), "--out", str(x.out)],
        "checkpoint folder .*nope does not exist",
    ),
    "classical: missing features": Case(
        lambda x: ["classical", "--features", str(x.tmp / "nope"), "--head", "logreg", "--out", str(x.out)],
        "features .*nope do not exist; create them with `hf-finetune features`",
    ),
    "classical: a folder that holds no features": Case(
        lambda x: ["classical", "--features", str(x.tmp), "--head", "logreg", "--out", str(x.out)],
        "holds no features.json",
    ),
    "classical: unknown head": Case(
        lambda x: ["classical", "--features", str(x.tmp), "--head", "forest", "--out", str(x.out)],
        "unknown head 'forest'; heads: logreg, linear_svm",
    ),
    "classical: grid of C for a head without C": Case(
        lambda x: ["classical", "--features", str(x.tmp), "--head", "naive_bayes", "--grid-C", "--out", str(x.out)],
        "--grid-C searches C, which only logreg, linear_svm, svm_rbf have",
    ),
    "cv_folds of 1": Case(lambda x: text(x, "--cv_folds", "1"), "cv_folds must be 0 \\(off\\) or at least 2"),
    "compare: unknown method": Case(
        lambda x: ["compare", "--config", "fortunes_topics", "--strategies", "full,features_x", "--out", str(x.out)],
        "unknown head 'x'",
    ),
    "compare: fraction above 1": Case(
        lambda x: ["compare", "--config", "fortunes_topics", "--fractions", "0.5,1.5", "--out", str(x.out)],
        "--fractions are shares of the train split, in \\(0, 1\\]; got 1.5",
    ),
    # --- Hub ---
    "malformed Hub repo id to push to": Case(
        lambda x: ["push", "--model", str(x.tmp / "run"), "--repo-id", "me/my model"],
        "--repo-id must be `namespace/name`.*got 'me/my model'",
    ),
    "malformed hub_model_id": Case(
        lambda x: text(x, "--push_to_hub", "true", "--hub_model_id", "my-model"),
        "hub_model_id must be `namespace/name`.*got 'my-model'",
    ),
}


def assert_one_line_error(err: str, pattern: str) -> None:
    """Exactly one `error:` line, last on stderr (progress bars may precede it), and no traceback."""
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert "Traceback" not in err
    assert re.search(pattern, errors[0]), errors[0]


def folder_contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", [pytest.param(n, marks=CASES[n].marks) for n in sorted(CASES)])
def test_bad_input_is_one_line_exit_2(name, tmp_path, request, capsys, monkeypatch):
    case = CASES[name]
    x = Inputs(request, tmp_path)
    for relative, data in case.existing.items():
        (x.out / relative).parent.mkdir(parents=True, exist_ok=True)
        (x.out / relative).write_bytes(data)
    argv = case.argv(x)
    cwd = tmp_path / "cwd"  # where a default output folder (outputs/<recipe>-<strategy>) would appear
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    code, _, err = run_cli(argv, capsys)
    assert code == 2, err
    assert_one_line_error(err, case.message)
    if case.existing:
        assert folder_contents(x.out) == case.existing  # nothing already written lost, nothing added
    else:
        assert not x.out.exists()  # nothing half-written that could pass for a model
    assert not any(cwd.iterdir())


def test_the_battery_covers_the_issue():
    assert len(CASES) >= 32


def test_a_new_head_replaces_one_of_another_size_when_asked(vit_init_dir):
    """The other side of "checkpoint head of another size": with ignore_mismatched_sizes the 5-class head
    becomes a new 3-class head."""
    from transformers import AutoModelForImageClassification

    from hf_finetune.modeling.loading import load_classifier
    from hf_finetune.settings.arguments import ModelArguments

    args = ModelArguments(model_name_or_path=str(vit_init_dir), ignore_mismatched_sizes=True)
    model, new = load_classifier(AutoModelForImageClassification, args, ["0", "1", "7"])
    assert model.classifier.out_features == 3 and model.config.id2label == {0: "0", 1: "1", 2: "7"}
    assert {"classifier.weight", "classifier.bias"} <= set(new)


def test_trust_remote_code_with_a_pinned_revision_or_a_local_folder_passes_the_check(tmp_path):
    from hf_finetune.modeling.loading import check_remote_code
    from hf_finetune.settings.arguments import ModelArguments

    check_remote_code("someorg/custom-model", ModelArguments(trust_remote_code=True, revision=SHA))
    folder = tmp_path / "local"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"auto_map": {"AutoModel": "modeling_x.XModel"}}))
    check_remote_code(str(folder), ModelArguments(trust_remote_code=True))  # a local folder needs no revision


def test_predict_and_evaluate_reject_a_missing_model(tmp_path, capsys):
    for argv in (
        ["predict", "--model", str(tmp_path / "none"), "--text", "hi"],
        ["evaluate", "--model", str(tmp_path / "none"), "--data", str(tmp_path / "x.csv")],
    ):
        code, _, err = run_cli(argv, capsys)
        assert code == 2
        assert_one_line_error(err, "does not exist")


def test_not_enough_disk_space_is_refused_before_training(tmp_path, good_csv, capsys, monkeypatch):
    """A full disk cannot be made here without root mounts: `shutil.disk_usage` reports 1 MB free."""
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 10**12 - 10**6, 10**6))
    out = tmp_path / "out"
    code, _, err = run_cli(["train", *csv_recipe_args(good_csv), "--output_dir", str(out)], capsys)
    assert code == 2
    assert_one_line_error(err, r"not enough disk space for output_dir .* need about 0\.\d\d GB and 0\.00 GB is free")
    assert not out.exists()
