"""Fuzzed bad input (hypothesis): data files, recipes and images nobody wrote by hand.

Every generated case runs in-process through `hf_finetune.cli.main(["train", ...])` and must end
in one of two ways: the checks pass (the run reaches the point where it would lock and write its
output folder; the test stops it there, since training is what the rest of the suite tests), or
exit code 2 with exactly one `error:` line and no traceback. In both cases no output folder exists
afterwards. Any other exception is a traceback a user would see: hypothesis reports and shrinks it.

Models are tiny and local (a 2-layer BERT with MiniLM's real tokenizer; the random-init ViT), so a
case costs a fraction of a second. CI runs FUZZ_EXAMPLES cases per family (default 50); set
HF_FINETUNE_FUZZ_EXAMPLES=1000 for a long local run. The counts are printed at the end.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import struct
import zlib
from collections import Counter
from pathlib import Path
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_finetune.cli import main

FUZZ_EXAMPLES = int(os.environ.get("HF_FINETUNE_FUZZ_EXAMPLES", "50"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,  # CI sees the same cases every run; a long local run explores more
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    database=None,
)
COUNTS: Counter = Counter()


class ChecksPassed(Exception):
    """Raised where the run would take its output folder's lock: every check before training passed."""


def run_case(argv: list[str], out: Path) -> str:
    """Run one case; returns "passed" or "refused" after asserting the contract; anything else raises."""
    stderr, stdout = io.StringIO(), io.StringIO()

    def stop(*args, **kwargs):
        raise ChecksPassed

    with (
        mock.patch("hf_finetune.training.run.lock_output_dir", stop),
        contextlib.redirect_stderr(stderr),
        contextlib.redirect_stdout(stdout),
    ):
        try:
            code = main(argv)
        except ChecksPassed:
            code = None
    err = stderr.getvalue()
    assert "Traceback" not in err, err
    assert not out.exists(), f"{out} was created"
    if code is None:
        return "passed"
    lines = [line for line in err.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert code == 2, f"exit {code}: {err[-2000:]}"
    assert len(errors) == 1 and lines[-1] == errors[0], err[-2000:]
    return "refused"


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, minilm_dir) -> Path:
    """A 2-layer BERT of width 32 with MiniLM's real tokenizer: loads in milliseconds."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    config = AutoConfig.for_model(
        "bert", vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=128,
    )  # fmt: skip
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", autouse=True)
def report_counts(request):
    """Print how many cases each family ran, past pytest's capture (also under -q)."""
    yield
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        for family in sorted({key[0] for key in COUNTS}):
            ran = {outcome: COUNTS[(family, outcome)] for outcome in ("passed", "refused")}
            print(
                f"\nfuzz {family}: {sum(ran.values())} cases, {ran['refused']} refused (exit 2, one error line), "
                f"{ran['passed']} passed the checks"
            )


@pytest.fixture
def case_dir(tmp_path_factory):
    """A fresh folder per hypothesis example (function-scoped fixtures are shared across examples)."""

    def make() -> Path:
        return tmp_path_factory.mktemp("case")

    return make


# --- data files ---

LABELS_OF_SIZE = {0: [], 1: ["only"], 2: ["a", "b"], "many": [f"class-{i}" for i in range(300)]}
TEXT = st.one_of(
    st.text(max_size=40),
    st.just(""),
    st.just(" \t "),
    st.text(alphabet="ab \u00e9\u4e2d\U0001f600\x00\ufeff", min_size=1, max_size=30),
    st.builds(lambda n: "x" * n, st.sampled_from([10_000, 200_000])),  # huge fields
)
CELL = st.one_of(
    TEXT,
    st.integers(min_value=-(2**70), max_value=2**70),
    # No subnormals: hf_finetune turns on flush-to-zero (CPU speed), and hypothesis checks for that.
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False),
    st.none(),
    st.booleans(),
)
COLUMN_NAMES = st.lists(st.sampled_from(["review", "topic", "text", "label", "extra", "", "review "]), max_size=5)


@st.composite
def tables(draw) -> tuple[list[str], list[list]]:
    """A header (maybe missing, extra or duplicate columns) and rows of mixed cells; labels from a set of 0/1/2/many."""
    header = draw(st.one_of(st.just(["review", "topic"]), COLUMN_NAMES.map(lambda c: c or ["review"])))
    labels = LABELS_OF_SIZE[draw(st.sampled_from(list(LABELS_OF_SIZE)))]
    n = len(labels) * 2 if len(labels) > 2 else draw(st.integers(0, 25))
    clean = draw(st.booleans())  # every label and text cell well-formed: the other columns stay wild
    rows = []
    for i in range(n):
        row = [draw(CELL) for _ in header]
        if "topic" in header and labels and (clean or draw(st.booleans())):
            row[header.index("topic")] = labels[i % len(labels)]
        if "review" in header and (clean or draw(st.integers(0, 3))):
            row[header.index("review")] = f"some text {i}"
        rows.append(row)
    return header, rows


def plain(value):
    """A cell as JSON can hold it (NaN and inf become the strings Python's json writes)."""
    return value if not isinstance(value, int) or abs(value) < 2**63 else str(value)


def write_table(path: Path, header: list[str], rows: list[list], encoding: str) -> None:
    suffix = path.suffix
    if suffix in (".csv", ".tsv"):
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="\t" if suffix == ".tsv" else ",")
        writer.writerow(header)
        writer.writerows(rows)
        path.write_bytes(buffer.getvalue().encode(encoding, errors="replace"))
    elif suffix == ".jsonl":
        text = "".join(json.dumps({k: plain(v) for k, v in zip(header, row, strict=True)}) + "\n" for row in rows)
        path.write_bytes(text.encode(encoding, errors="replace"))
    elif suffix == ".json":
        text = json.dumps([{k: plain(v) for k, v in zip(header, row, strict=True)} for row in rows])
        path.write_bytes(text.encode(encoding, errors="replace"))
    else:  # parquet: one type per column (as a real parquet file has), the column's first cell decides
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {}
        for j, name in enumerate(dict.fromkeys(header)):
            values = [plain(row[j]) for row in rows]
            kind = type(next((v for v in values if v is not None), ""))
            columns[name] = [v if v is None or isinstance(v, kind) else None for v in values]
        try:
            table = pa.table(columns)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            table = pa.table({k: [None if v is None else str(v) for v in vs] for k, vs in columns.items()})
        pq.write_table(table, path)


DATA_FILE = st.one_of(
    st.tuples(st.just("bytes"), st.binary(max_size=400)),
    st.tuples(st.sampled_from(["utf-8", "utf-16", "latin-1", "cp1252", "utf-8-sig"]), tables()),
)


@FUZZ
@given(suffix=st.sampled_from([".csv", ".tsv", ".json", ".jsonl", ".parquet"]), content=DATA_FILE)
def test_fuzzed_data_files_end_in_exit_0_or_one_error_line(tiny_bert, case_dir, suffix, content):
    folder = case_dir()
    path, out = folder / f"train{suffix}", folder / "out"
    kind, value = content
    if kind == "bytes":
        path.write_bytes(value)
    else:
        write_table(path, *value, encoding=kind)
    argv = ["train", "--config", "fortunes_topics", "--model_name_or_path", str(tiny_bert), "--train_file",
            str(path), "--text_column", "review", "--label_column", "topic", "--output_dir", str(out),
            "--max_steps", "1"]  # fmt: skip
    COUNTS[("data files", run_case(argv, out))] += 1
    shutil.rmtree(folder, ignore_errors=True)


# --- recipes ---

YAML_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_subnormal=False), st.text(max_size=20)),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
RECIPE_KEYS = ["task", "model_name_or_path", "train_file", "text_column", "label_column", "strategy",
               "learning_rate", "num_train_epochs", "per_device_train_batch_size", "max_seq_length", "seed",
               "freeze_num_layers", "llrd_decay", "lora_r", "resume", "hub_strategy", "output_dir", "max_steps",
               "eval_strategy", "metric_for_best_model", "unknown_key", "data", "training"]  # fmt: skip


@st.composite
def recipes(draw) -> bytes:
    """A valid recipe with keys replaced by wrong types, dropped, added or nested; or any YAML; or bytes."""
    kind = draw(st.sampled_from(["mutated", "mutated", "any yaml", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "any yaml":
        return yaml.safe_dump(draw(YAML_VALUE)).encode()
    recipe = {"task": "text_classification", "text_column": "review", "label_column": "topic", "max_steps": 1}
    for key in draw(st.lists(st.sampled_from(RECIPE_KEYS), max_size=4)):
        action = draw(st.sampled_from(["replace", "drop", "nest"]))
        if action == "drop":
            recipe.pop(key, None)
        elif action == "nest":
            recipe[key] = {key: draw(YAML_VALUE)}
        else:
            recipe[key] = draw(YAML_VALUE)
    return yaml.safe_dump(recipe).encode()


@pytest.fixture(scope="module")
def good_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz_csv") / "train.csv"
    path.write_text("review,topic\n" + "".join(f"text number {i},{'ab'[i % 2]}\n" for i in range(20)))
    return path


@FUZZ
@given(recipe=recipes())
def test_fuzzed_recipes_end_in_exit_0_or_one_error_line(tiny_bert, good_csv, case_dir, recipe):
    folder = case_dir()
    path, out = folder / "recipe.yaml", folder / "out"
    path.write_bytes(recipe)
    # The command line fixes the model, data and output folder; everything else comes from the recipe.
    argv = ["train", "--config", str(path), "--model_name_or_path", str(tiny_bert), "--train_file", str(good_csv),
            "--output_dir", str(out)]  # fmt: skip
    COUNTS[("recipes", run_case(argv, out))] += 1
    shutil.rmtree(folder, ignore_errors=True)


# --- images ---


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a tiny (wrong) image body: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


@st.composite
def image_files(draw, good: bytes) -> bytes:
    kind = draw(st.sampled_from(["good", "good", "bytes", "truncated", "empty", "huge", "tiny"]))
    if kind == "good":
        return good
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "truncated":
        return good[: draw(st.integers(0, len(good) - 1))]
    if kind == "empty":
        return b""
    if kind == "tiny":
        return png_header_only(1, 1)
    side = draw(st.sampled_from([20_000, 70_000, 2**31 - 1]))
    return png_header_only(side, draw(st.sampled_from([1, side])))


@pytest.fixture(scope="module")
def good_png(digit_folder) -> bytes:
    return next(iter(sorted(digit_folder.rglob("*.png")))).read_bytes()


@FUZZ
@given(data=st.data(), n=st.integers(0, 8), suffix=st.sampled_from([".png", ".jpg", ".bmp", ""]))
def test_fuzzed_images_end_in_exit_0_or_one_error_line(vit_init_dir, good_png, case_dir, data, n, suffix):
    folder = case_dir()
    out, rows = folder / "out", []
    for i in range(n):
        name = f"img{i}{suffix}"
        (folder / name).write_bytes(data.draw(image_files(good_png)))
        rows.append((name, "ab"[i % 2]))
    table = folder / "images.csv"
    table.write_text("file,category\n" + "".join(f"{name},{label}\n" for name, label in rows))
    argv = ["train", "--config", "fashion_mnist_target", "--model_name_or_path", str(vit_init_dir), "--train_file",
            str(table), "--image_column", "file", "--label_column", "category", "--output_dir", str(out)]  # fmt: skip
    COUNTS[("images", run_case(argv, out))] += 1
    shutil.rmtree(folder, ignore_errors=True)
