"""Bad input: one line on stderr, exit code 2, no traceback, no output folder left behind.

Each case runs in-process through `hf_finetune.cli.main`, as the `hf-finetune` command does.
"""

import json
import re

import pandas as pd
import pytest
from conftest import csv_recipe_args, run_cli

from hf_finetune.outputs import COMPLETE_MARKER

GOOD_ROWS = pd.DataFrame({"review": ["good", "bad", "fine", "awful"] * 5, "topic": ["a", "b"] * 10})


@pytest.fixture
def good_csv(tmp_path):
    path = tmp_path / "good.csv"
    GOOD_ROWS.to_csv(path, index=False)
    return path


def base_argv(train_file, out, *extra):
    return ["train", *csv_recipe_args(train_file), "--output_dir", str(out), *extra]


def write_bytes(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def checkpoint_folder(tmp_path, minilm_dir, *, weights: str | None):
    """A copy of the real checkpoint's config and tokenizer, with the given weights file (or none)."""
    import shutil
    from pathlib import Path

    folder = tmp_path / "ckpt"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (Path(minilm_dir) / name).exists():
            shutil.copy(Path(minilm_dir) / name, folder / name)
    if weights:
        (folder / weights).write_bytes(b"\0" * 16)
    return folder


CASES = {
    "missing data file": (lambda t, g, m: base_argv(t / "nope.csv", t / "out"), "does not exist"),
    "empty data file": (lambda t, g, m: base_argv(write_bytes(t, "e.csv", b""), t / "out"), "is empty"),
    "non-UTF-8 data file": (
        lambda t, g, m: base_argv(
            write_bytes(t, "l.csv", "review,topic\ncaf\xe9,a\n".encode("latin-1") * 50), t / "out"
        ),
        "not UTF-8",
    ),
    "unsupported file type": (
        lambda t, g, m: base_argv(write_bytes(t, "d.xlsx", b"PK\x03\x04"), t / "out"),
        "unsupported file type",
    ),
    "corrupt parquet": (
        lambda t, g, m: base_argv(write_bytes(t, "d.parquet", b"not parquet at all"), t / "out"),
        "cannot parse",
    ),
    "missing text column": (
        lambda t, g, m: base_argv(g, t / "out") + ["--text_column", "body"],
        "column 'body' not found .* available columns: review, topic",
    ),
    "label column with one class": (
        lambda t, g, m: base_argv(write_csv(t, GOOD_ROWS.assign(topic="a")), t / "out"),
        "only one class",
    ),
    "empty text rows": (
        lambda t, g, m: base_argv(write_csv(t, GOOD_ROWS.assign(review=["x", None] * 10)), t / "out"),
        "empty text in column 'review'",
    ),
    "unknown recipe key": (
        lambda t, g, m: [
            "train",
            "--config",
            str(write_bytes(t, "r.yaml", b"model_name_or_path: x\nlerning_rate: 1\n")),
        ],
        "unknown key.*lerning_rate",
    ),
    "malformed recipe": (
        lambda t, g, m: ["train", "--config", str(write_bytes(t, "r.yaml", b"a: [1\n"))],
        "not valid YAML",
    ),
    "unknown recipe name": (lambda t, g, m: ["train", "--config", "no_such_recipe"], "no recipe named"),
    "unknown option": (lambda t, g, m: base_argv(g, t / "out", "--lerning_rate", "1"), "unknown option"),
    "checkpoint path does not exist": (
        lambda t, g, m: base_argv(g, t / "out", "--model_name_or_path", str(t / "missing_ckpt")),
        "checkpoint folder .* does not exist",
    ),
    "checkpoint folder without weights": (
        lambda t, g, m: base_argv(g, t / "out", "--model_name_or_path", str(checkpoint_folder(t, m, weights=None))),
        "no model weights",
    ),
    "pickle-only weights": (
        lambda t, g, m: base_argv(
            g, t / "out", "--model_name_or_path", str(checkpoint_folder(t, m, weights="pytorch_model.bin"))
        ),
        "pickle weights .* --allow_pickle",
    ),
    "unknown strategy": (lambda t, g, m: base_argv(g, t / "out", "--strategy", "magic"), "unknown strategy 'magic'"),
    "refused strategy combination": (
        lambda t, g, m: base_argv(g, t / "out", "--strategy", "lora+l2sp"),
        "lora and l2sp cannot be combined: adapters keep",
    ),
    "more frozen layers than the model has": (
        lambda t, g, m: base_argv(g, t / "out", "--strategy", "freeze_bottom", "--freeze_num_layers", "9"),
        "freeze_num_layers must be between 0 and 6",
    ),
    "merge of a missing folder": (
        lambda t, g, m: ["merge", "--model", str(t / "nope"), "--out", str(t / "out")],
        "model folder .* does not exist",
    ),
    "batch size 0": (lambda t, g, m: base_argv(g, t / "out", "--per_device_train_batch_size", "0"), "at least 1"),
    "negative learning rate": (
        lambda t, g, m: base_argv(g, t / "out", "--learning_rate", "-1"),
        "must not be negative",
    ),
    "unknown command": (lambda t, g, m: ["trian"], "unknown command 'trian'"),
}


def assert_one_line_error(err: str, pattern: str) -> None:
    """Exactly one `error:` line, last on stderr (progress bars may precede it), and no traceback."""
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert "Traceback" not in err
    assert re.search(pattern, errors[0]), errors[0]


def write_csv(tmp_path, df):
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2(case, tmp_path, good_csv, minilm_dir, capsys):
    make_argv, pattern = CASES[case]
    code, out, err = run_cli(make_argv(tmp_path, good_csv, minilm_dir), capsys)
    assert code == 2, err
    assert_one_line_error(err, pattern)
    assert not (tmp_path / "out").exists()  # nothing half-written that could pass for a model


def test_finished_run_is_not_overwritten(tmp_path, good_csv, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / COMPLETE_MARKER).write_text(json.dumps({"metrics": {}}))
    (out / "model.safetensors").write_bytes(b"precious")
    code, _, err = run_cli(base_argv(good_csv, out), capsys)
    assert code == 2
    assert_one_line_error(err, "already holds a finished run.*--overwrite_output_dir")
    assert (out / "model.safetensors").read_bytes() == b"precious"


def test_predict_and_evaluate_reject_a_missing_model(tmp_path, capsys):
    for argv in (
        ["predict", "--model", str(tmp_path / "none"), "--text", "hi"],
        ["evaluate", "--model", str(tmp_path / "none"), "--data", str(tmp_path / "x.csv")],
    ):
        code, _, err = run_cli(argv, capsys)
        assert code == 2
        assert_one_line_error(err, "does not exist")
