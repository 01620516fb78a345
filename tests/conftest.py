"""Shared fixtures: real data slices and one real fine-tuned MiniLM per test session.

Tests never reach the Hub (HF_HUB_OFFLINE=1): they use the packaged all-MiniLM-L6-v2
checkpoint and real text from Debian's `fortunes`, through the same loader as the demo.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# `precision: auto` is bf16 on CPUs with native bf16 and fp32 elsewhere, and CI machines differ: pinned, every
# result below is the same on every machine. tests/test_precision.py lifts the pin to test auto itself.
os.environ.setdefault("HF_FINETUNE_PRECISION", "fp32")

import pytest  # noqa: E402

# isort: off
import hf_finetune  # noqa: E402, F401  (first, so its denormal flush precedes torch's worker threads)

# transformers binds its log handler to sys.stderr on first import; importing it here, outside any
# test, keeps that handler off a pytest capture stream that a later test would find closed.
import transformers  # noqa: E402, F401
# isort: on

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# A small slice keeps the session's one fine-tuning run under a minute on 2 cores.
N_TRAIN, N_TEST = 480, 200


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    from hf_finetune.assets.models import resolve_packaged_model

    return resolve_packaged_model("packaged:all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def fortunes():
    from hf_finetune.assets.fortunes import fortunes_topics

    return fortunes_topics()


@pytest.fixture(scope="session")
def fortunes_csv(tmp_path_factory, fortunes) -> dict:
    """Real fortunes as a user's CSV files with their own column names (`review`, `topic`)."""
    folder = tmp_path_factory.mktemp("fortunes_csv")
    names = fortunes["train"].features["label"].names
    paths = {}
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        rows = fortunes[split].select(range(n))
        frame = rows.to_pandas().rename(columns={"text": "review"})
        frame["topic"] = [names[i] for i in frame.pop("label")]
        paths[split] = folder / f"{split}.csv"
        frame.to_csv(paths[split], index=False)
    return paths


def csv_recipe_args(train_file) -> list[str]:
    """The demo recipe pointed at a user's CSV with its own column names, as the README shows."""
    return ["--config", "fortunes_topics", "--train_file", str(train_file), "--text_column", "review",
            "--label_column", "topic"]  # fmt: skip


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    from hf_finetune.cli import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, fortunes_csv) -> Path:
    """One real fine-tuning run through the CLI, shared by the end-to-end tests."""
    from hf_finetune.cli import main

    out = tmp_path_factory.mktemp("run") / "model"
    code = main(
        [
            "train",
            *csv_recipe_args(fortunes_csv["train"]),
            "--test_file",
            str(fortunes_csv["test"]),
            "--num_train_epochs",
            "3",
            "--learning_rate",
            "1e-4",
            "--per_device_train_batch_size",
            "16",
            "--logging_steps",
            "5",
            "--extra_metrics",
            str(FIXTURES / "error_rate.py"),
            "--output_dir",
            str(out),
        ]
    )
    assert code == 0
    return out


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


# --- Vision: real images (scikit-learn digits, Debian Fashion-MNIST) and one locally pretrained ViT ---


@pytest.fixture(scope="session")
def digits_data():
    from hf_finetune.assets.digits import digits

    return digits()


def save_images(dataset, folder: Path, n_per_class: int, mode: str = "L") -> list[tuple[str, str]]:
    """Write real images as PNG files under folder/<class>/; returns (path relative to folder, class)."""
    names = dataset.features["label"].names
    counts: dict[int, int] = {}
    rows = []
    for i, label in enumerate(dataset["label"]):
        if counts.get(label, 0) >= n_per_class:
            continue
        counts[label] = counts.get(label, 0) + 1
        relative = Path(names[label]) / f"{i}.png"
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        dataset[i]["image"].convert(mode).save(folder / relative)
        rows.append((str(relative), names[label]))
    return rows


def corrupt_image_csv(digit_folder: Path, folder: Path) -> Path:
    """A CSV (in folder) listing the digit images plus a truncated PNG, a text file named .png and a missing file."""
    import pandas as pd

    rows = [{"file": str(p), "category": p.parent.name} for p in sorted(digit_folder.rglob("*.png"))]
    good = Path(rows[0]["file"]).read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "notes.png").write_text("not an image")
    rows += [{"file": "truncated.png", "category": "0"}, {"file": "notes.png", "category": "1"}]
    rows += [{"file": "missing.png", "category": "7"}]
    path = folder / "images.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def digit_folder(tmp_path_factory, digits_data) -> Path:
    """Real digit images as a user's image folder: train/<digit>/*.png (3 classes, 30 each)."""
    folder = tmp_path_factory.mktemp("digit_folder")
    subset = digits_data["train"].filter(lambda r: r["label"] in (0, 1, 7))
    save_images(subset, folder, n_per_class=30)
    return folder


@pytest.fixture(scope="session")
def vit_init_dir(tmp_path_factory) -> Path:
    """The random-init ViT checkpoint `hf-finetune pretrain` starts from (labels: the source classes)."""
    from hf_finetune.assets.fashion_mnist import FASHION_MNIST_CLASSES, FASHION_MNIST_SOURCE_CLASSES
    from hf_finetune.assets.models import write_init_checkpoint

    folder = tmp_path_factory.mktemp("vit") / "random-init"
    return write_init_checkpoint(folder, [FASHION_MNIST_CLASSES[c] for c in FASHION_MNIST_SOURCE_CLASSES])


@pytest.fixture(scope="session")
def pretrained_vit(tmp_path_factory, vit_init_dir) -> Path:
    """A tiny version of `hf-finetune pretrain` (3,000 source images, 3 epochs), once per session."""
    from hf_finetune.cli import main

    out = tmp_path_factory.mktemp("vit") / "pretrained"
    argv = ["pretrain", "--model_name_or_path", str(vit_init_dir), "--output_dir", str(out),
            "--max_train_samples", "3000", "--max_eval_samples", "500", "--num_train_epochs", "3"]  # fmt: skip
    assert main(argv) == 0
    return out


# --- Run locks: a real second process holding an output folder's lock ---

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from hf_finetune.training.run_lock import RunLock
    held = RunLock(Path(sys.argv[1]))
    held.acquire()
    print("held", flush=True)
    time.sleep(120)
    """
)


@pytest.fixture
def holder(tmp_path):
    """Start a process that holds the lock of tmp_path/model until killed; yields (Popen, out)."""
    out = tmp_path / "model"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout.readline().strip() == "held"
    yield process, out
    process.kill()
    process.wait()
