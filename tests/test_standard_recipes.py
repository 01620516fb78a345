"""Standard tasks: the `make <recipe>` targets and their Hub recipes, checked offline.

`LAYOUTS` records each Hub data set as its repo publishes it (README `configs:` and `dataset_info`,
checked with the search tool; the source is named per entry): config, Parquet folder, splits and
`datasets` features, ClassLabel names included. The slow tests build a tiny local snapshot of each
repo in that layout (Parquet files per split and a README whose `configs:` YAML lets
`load_dataset(folder, "sst2")` pick the config), with real text (Debian fortunes) and real images
(Fashion-MNIST, converted to each set's size and format), and run the recipe unchanged except for
the data path, a small checkpoint, two steps and an output folder.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from conftest import REPO, read_json
from datasets import ClassLabel, Features, Image, Sequence, Value

from hf_finetune.recipes import list_recipes

MAKEFILE = REPO / "Makefile"
# The standard tasks issues 6 and 7 name.
ISSUE_TARGETS = {"sst2", "imdb", "ag_news", "mrpc", "stsb", "conll2003", "go_emotions", "cifar10", "beans", "food101"}

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# In the Hub's order (not alphabetical: cheesecake before cheese_plate), from ethz/food101's README.
FOOD101 = (
    "apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio", "beef_tartare", "beet_salad", "beignets", "bibimbap",
    "bread_pudding", "breakfast_burrito", "bruschetta", "caesar_salad", "cannoli", "caprese_salad", "carrot_cake",
    "ceviche", "cheesecake", "cheese_plate", "chicken_curry", "chicken_quesadilla", "chicken_wings", "chocolate_cake",
    "chocolate_mousse", "churros", "clam_chowder", "club_sandwich", "crab_cakes", "creme_brulee", "croque_madame",
    "cup_cakes", "deviled_eggs", "donuts", "dumplings", "edamame", "eggs_benedict", "escargots", "falafel",
    "filet_mignon", "fish_and_chips", "foie_gras", "french_fries", "french_onion_soup", "french_toast",
    "fried_calamari", "fried_rice", "frozen_yogurt", "garlic_bread", "gnocchi", "greek_salad",
    "grilled_cheese_sandwich", "grilled_salmon", "guacamole", "gyoza", "hamburger", "hot_and_sour_soup", "hot_dog",
    "huevos_rancheros", "hummus", "ice_cream", "lasagna", "lobster_bisque", "lobster_roll_sandwich",
    "macaroni_and_cheese", "macarons", "miso_soup", "mussels", "nachos", "omelette", "onion_rings", "oysters",
    "pad_thai", "paella", "pancakes", "panna_cotta", "peking_duck", "pho", "pizza", "pork_chop", "poutine",
    "prime_rib", "pulled_pork_sandwich", "ramen", "ravioli", "red_velvet_cake", "risotto", "samosa", "sashimi",
    "scallops", "seaweed_salad", "shrimp_and_grits", "spaghetti_bolognese", "spaghetti_carbonara", "spring_rolls",
    "steak", "strawberry_shortcake", "sushi", "tacos", "takoyaki", "tiramisu", "tuna_tartare", "waffles",
)  # fmt: skip
# CoNLL-2003's POS and chunk tag names, in the canonical dataset's order (eriktks/conll2003 README dataset_info).
CONLL_POS = (
    '"',
    "''",
    "#",
    "$",
    "(",
    ")",
    ",",
    ".",
    ":",
    "``",
    "CC",
    "CD",
    "DT",
    "EX",
    "FW",
    "IN",
    "JJ",
    "JJR",
    "JJS",
    "LS",
    "MD",
    "NN",
    "NNP",
    "NNPS",
    "NNS",
    "NN|SYM",
    "PDT",
    "POS",
    "PRP",
    "PRP$",
    "RB",
    "RBR",
    "RBS",
    "RP",
    "SYM",
    "TO",
    "UH",
    "VB",
    "VBD",
    "VBG",
    "VBN",
    "VBP",
    "VBZ",
    "WDT",
    "WP",
    "WP$",
    "WRB",
)
CONLL_CHUNKS = (
    "O",
    "B-ADJP",
    "I-ADJP",
    "B-ADVP",
    "I-ADVP",
    "B-CONJP",
    "I-CONJP",
    "B-INTJ",
    "I-INTJ",
    "B-LST",
    "I-LST",
    "B-NP",
    "I-NP",
    "B-PP",
    "I-PP",
    "B-PRT",
    "I-PRT",
    "B-SBAR",
    "I-SBAR",
    "B-UCP",
    "I-UCP",
    "B-VP",
    "I-VP",
)
CONLL_NER = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
GO_EMOTIONS = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
    "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy",
    "love", "nervousness", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)  # fmt: skip


@dataclass(frozen=True)
class HubLayout:
    """One config of a Hub data set as its repo lays it out (Parquet files `<data_dir>/<split>-*`)."""

    repo: str
    config: str  # the config name in the repo's README `configs:`
    default: bool  # whether `load_dataset(repo)` picks this config without naming it
    data_dir: str
    splits: tuple[str, ...]
    features: Features
    source: str  # where the layout was read
    unlabelled: tuple[str, ...] = ()  # splits whose labels are all -1 (GLUE test sets, IMDB unsupervised)
    image: tuple[str, tuple[tuple[int, int], ...]] | None = None  # (format, sizes) of the real images
    readme: bool = True  # False: no README `configs:`; `dataset_infos.json` and `data/<split>-*` files only


LAYOUTS = {
    "sst2": HubLayout(
        "nyu-mll/glue", "sst2", False, "sst2", ("train", "validation", "test"),
        Features({"sentence": Value("string"), "label": ClassLabel(names=["negative", "positive"]),
                  "idx": Value("int32")}),
        "huggingface.co/datasets/nyu-mll/glue README (configs sst2/{train,validation,test}-*; commit a17903a)",
        unlabelled=("test",),
    ),
    "mrpc": HubLayout(
        "nyu-mll/glue", "mrpc", False, "mrpc", ("train", "validation", "test"),
        Features({"sentence1": Value("string"), "sentence2": Value("string"),
                  "label": ClassLabel(names=["not_equivalent", "equivalent"]), "idx": Value("int32")}),
        "huggingface.co/datasets/nyu-mll/glue README (configs mrpc/*; commit 85520db); MRPC test labels are "
        "real (huggingface/datasets#2216)",
    ),
    "stsb": HubLayout(
        "nyu-mll/glue", "stsb", False, "stsb", ("train", "validation", "test"),
        Features({"sentence1": Value("string"), "sentence2": Value("string"), "label": Value("float32"),
                  "idx": Value("int32")}),
        "huggingface.co/datasets/nyu-mll/glue commit bed0457 'Add stsb data files' (stsb/{train,validation,test}-"
        "00000-of-00001.parquet, README configs stsb; 5,749 / 1,500 / 1,379 rows); test labels are -1",
        unlabelled=("test",),
    ),
    "conll2003": HubLayout(
        "lhoestq/conll2003", "default", True, "data", ("train", "validation", "test"),
        Features({"id": Value("string"), "tokens": Sequence(Value("string")),
                  "pos_tags": Sequence(ClassLabel(names=list(CONLL_POS))),
                  "chunk_tags": Sequence(ClassLabel(names=list(CONLL_CHUNKS))),
                  "ner_tags": Sequence(ClassLabel(names=list(CONLL_NER)))}),
        "huggingface.co/datasets/lhoestq/conll2003 tree main (data/ with {train,validation,test}-00000-of-00001"
        ".parquet, dataset_infos.json, no README; commit 19edcb4); features as eriktks/conll2003's dataset_info. "
        "The canonical eriktks/conll2003 is a loading script (refused by datasets 4+)",
        readme=False,
    ),
    "go_emotions": HubLayout(
        "google-research-datasets/go_emotions", "simplified", False, "simplified", ("train", "validation", "test"),
        Features({"text": Value("string"), "labels": Sequence(ClassLabel(names=list(GO_EMOTIONS))),
                  "id": Value("string")}),
        "huggingface.co/datasets/google-research-datasets/go_emotions commit 93e006e 'Delete loading script' "
        "(simplified/{train,validation,test}-00000-of-00001.parquet; features from the README dataset_info)",
    ),
    "imdb": HubLayout(
        "stanfordnlp/imdb", "plain_text", True, "plain_text", ("train", "test", "unsupervised"),
        Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])}),
        "huggingface.co/datasets/stanfordnlp/imdb tree plain_text/{train,test,unsupervised}-00000-of-00001.parquet",
        unlabelled=("unsupervised",),
    ),
    "ag_news": HubLayout(
        "fancyzhx/ag_news", "default", True, "data", ("train", "test"),
        Features({"text": Value("string"),
                  "label": ClassLabel(names=["World", "Sports", "Business", "Sci/Tech"])}),
        "huggingface.co/datasets/fancyzhx/ag_news card (text; label World, Sports, Business, Sci/Tech; train "
        "120,000 / test 7,600). The `data/` folder is the Hub's usual Parquet layout, not seen for this repo",
    ),
    "cifar10": HubLayout(
        "uoft-cs/cifar10", "plain_text", True, "plain_text", ("train", "test"),
        Features({"img": Image(), "label": ClassLabel(names=list(CIFAR10))}),
        "huggingface.co/datasets/uoft-cs/cifar10 README (configs plain_text default: true; commit e025e64)",
        image=("PNG", ((32, 32),)),
    ),
    "beans": HubLayout(
        "AI-Lab-Makerere/beans", "default", True, "data", ("train", "validation", "test"),
        Features({"image_file_path": Value("string"), "image": Image(),
                  "labels": ClassLabel(names=["angular_leaf_spot", "bean_rust", "healthy"])}),
        "huggingface.co/datasets/AI-Lab-Makerere/beans README (configs default: data/{train,validation,test}-*)",
        image=("JPEG", ((500, 500),)),
    ),
    "food101": HubLayout(
        "ethz/food101", "default", True, "data", ("train", "validation"),
        Features({"image": Image(), "label": ClassLabel(names=list(FOOD101))}),
        "huggingface.co/datasets/ethz/food101 README and viewer (default config; train 75.8k, validation 25.3k)",
        image=("JPEG", ((512, 384), (384, 512))),  # photos rescaled to a longest side of 512 px
    ),
}  # fmt: skip


def recipe_values(name: str) -> dict:
    from hf_finetune.recipes import load_recipe, resolve_recipe_path

    return load_recipe(resolve_recipe_path(name))


def makefile_list(variable: str) -> list[str]:
    match = re.search(rf"^{variable}[ \t]*:?=[ \t]*(.*)$", MAKEFILE.read_text(), re.MULTILINE)
    assert match, f"{variable} not set in the Makefile"
    return match.group(1).split()


STANDARD = makefile_list("STANDARD_TASKS")


def make(*args: str) -> subprocess.CompletedProcess:
    ours = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MODEL", "ARGS", "VENV", "ACCELERATE_CONFIG")
    env = {k: v for k, v in os.environ.items() if k not in ours}
    return subprocess.run(["make", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


needs_make = pytest.mark.skipif(not any((Path(p) / "make").is_file() for p in os.get_exec_path()), reason="no make")


# --- Fast: recipes, layouts and make targets agree ---


@pytest.mark.parametrize("name", sorted(list_recipes()))
def test_every_shipped_recipe_resolves_to_a_registered_task_with_its_columns(name):
    from hf_finetune.recipes import parse_config
    from hf_finetune.tasks import TASKS

    cfg = parse_config(["--config", name, "--output_dir", "unused"])
    TASKS.get(cfg.run.task)  # raises for an unknown task
    assert cfg.data.label_column
    if cfg.run.task == "image_classification":
        assert cfg.data.image_column
    else:
        assert cfg.data.text_column


def input_and_label_keys(task: str) -> tuple[list[str], str]:
    """The recipe keys naming a task's input column(s) and its label column."""
    if task == "image_classification":
        return ["image_column"], "label_column"
    if task == "token_classification":
        return ["tokens_column"], "tags_column"
    return ["text_column", "text_pair_column"], "label_column"


def label_names_of(layout: HubLayout, values: dict) -> list[str]:
    """What the model's id2label must be: ClassLabel names, or the target column's name (regression)."""
    _, label_key = input_and_label_keys(values["task"])
    feature = layout.features[values[label_key]]
    if values["task"] == "text_regression":
        return [values[label_key]]
    return list(getattr(feature, "feature", feature).names)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_hub_recipe_names_the_real_dataset_config_and_columns(name):
    layout, values = LAYOUTS[name], recipe_values(name)
    assert values["dataset_name"] == layout.repo
    config = values.get("dataset_config_name")
    assert config == layout.config or (config is None and layout.default), (config, layout.config)
    task = values["task"]
    inputs, label_key = input_and_label_keys(task)
    for key in [*inputs, label_key]:
        if key in values:
            assert values[key] in layout.features, (key, values[key], list(layout.features))
    label = layout.features[values[label_key]]
    if task == "text_regression":
        assert isinstance(label, Value) and label.dtype.startswith("float")
    elif task == "token_classification" or values.get("multi_label"):
        assert isinstance(label, Sequence) and isinstance(label.feature, ClassLabel)
    else:
        assert isinstance(label, ClassLabel)
    expected_input = {"image_classification": Image, "token_classification": Sequence}.get(task, Value)
    assert isinstance(layout.features[values[inputs[0]]], expected_input)


def test_makefile_standard_targets_and_recipes_agree():
    recipes = list_recipes()
    assert ISSUE_TARGETS <= set(STANDARD)
    assert set(STANDARD) <= set(recipes), set(STANDARD) - set(recipes)
    assert set(STANDARD) == set(LAYOUTS), "every standard target is a Hub recipe with a checked layout"
    phony = re.search(r"^\.PHONY:(.*)$", MAKEFILE.read_text(), re.MULTILINE).group(1).split()
    assert {"help", "$(STANDARD_TASKS)"} <= set(phony)


@needs_make
@pytest.mark.parametrize("name", STANDARD)
def test_make_target_launches_the_recipe_task_with_overrides(name):
    result = make("-n", name, "MODEL=x", "ARGS=--num_train_epochs 1")
    assert result.returncode == 0, result.stderr
    commands = result.stdout.replace("\\\n", " ").splitlines()
    launch = " ".join(next(c for c in commands if "accelerate launch" in c).split())
    task = recipe_values(name)["task"]
    assert launch == (
        f".venv/bin/accelerate launch --config_file accelerate_configs/cpu.yaml tasks/{task}.py "
        f"--config {name} --model_name_or_path x --num_train_epochs 1"
    )
    assert "HF_HUB_OFFLINE" not in launch  # these need the Hub
    plain = make("-n", name, "ACCELERATE_CONFIG=accelerate_configs/cpu_ddp.yaml")
    assert "--config_file accelerate_configs/cpu_ddp.yaml" in plain.stdout
    assert "--model_name_or_path" not in plain.stdout


@needs_make
def test_make_help_lists_the_standard_targets():
    result = make("-s", "help")
    assert result.returncode == 0
    assert all(name in result.stdout for name in [*STANDARD, "demo", "demo-vision", "MODEL="])


# --- Slow: each Hub recipe, unchanged, on a local snapshot laid out like its repo ---

N_ROWS = {"train": 100}  # other splits: 20 rows
N_OTHER = 20


@cache
def fashion_images(n: int = 400):
    """Real Fashion-MNIST test images (28x28 grayscale arrays) and labels, read by the packaged loader's reader."""
    from hf_finetune.assets.fashion_mnist import FASHION_MNIST_DIR, read_idx

    images = read_idx(FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz")[:n]
    labels = read_idx(FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz")[:n]
    return images, labels


def encoded_image(array, size: tuple[int, int], fmt: str) -> dict:
    """A grayscale array as the set's real kind of image: RGB, its size, its file format (bytes, as in Parquet)."""
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(array).convert("RGB").resize(size).save(buffer, format=fmt)
    return {"bytes": buffer.getvalue(), "path": None}


def class_id(source_label: int, num_classes: int) -> int:
    """A real example's own class (topic, garment) mapped onto the set's classes; Food-101's spread out."""
    return source_label * 10 % num_classes if num_classes > 10 else source_label % num_classes


@cache
def fortunes_ner_rows():
    """Real fortunes sentences with the rule-found tags (`packaged:fortunes-ner`), DATE renamed MISC for CoNLL."""
    from hf_finetune.assets.fortunes import fortunes_ner

    data = fortunes_ner()
    names = data["train"].features["ner_tags"].feature.names
    rename = {n: n.replace("DATE", "MISC") for n in names}
    rows = {}
    for split, dataset in data.items():
        tagged = [
            (t, [CONLL_NER.index(rename[names[i]]) for i in g])
            for t, g in zip(dataset["tokens"], dataset["ner_tags"], strict=True)
        ]
        rows[split] = [r for r in tagged if any(r[1])]  # sentences with an entity
    return rows


@cache
def topic_set_rows():
    """Real fortunes texts with their topic sets (`packaged:fortunes-topic-sets`)."""
    from hf_finetune.assets.fortunes import fortunes_topic_sets

    data = fortunes_topic_sets()
    return {split: list(zip(d["text"], d["labels"], strict=True)) for split, d in data.items()}


def split_rows(layout: HubLayout, index: int, split_name: str, n: int, fortunes) -> dict:
    """Columns for one split, filled from real text or images according to the layout's features.

    Text: fortunes topic entries (labels from their topic), topic sets (multi-label), rule-tagged fortunes
    sentences (token tags; POS and chunk columns, unused by the task, hold NN / O); regression targets are
    the entries' readability grades scaled to STS-B's 0-5. Images: Fashion-MNIST.
    """
    from hf_finetune.assets.fortunes import flesch_kincaid_grade

    source = "train" if split_name == "train" else "test"
    texts = fortunes[source]
    images, image_labels = fashion_images()
    offset = 0 if split_name == "train" else 100 + 50 * index  # no example in two splits
    source_labels = [int(v) for v in (image_labels if layout.image else texts["label"])][offset : offset + n]
    tagged = fortunes_ner_rows()[source][offset : offset + n]
    topic_sets = topic_set_rows()[source][offset : offset + n]
    multi_label = any(isinstance(f, Sequence) and name not in ("tokens",) and name.endswith("labels")
                      for name, f in layout.features.items())  # fmt: skip
    labelled = split_name not in layout.unlabelled
    columns: dict[str, list] = {}
    text_start = offset
    for name, feature in layout.features.items():
        inner = getattr(feature, "feature", None)
        if isinstance(feature, ClassLabel):
            columns[name] = [class_id(v, feature.num_classes) if labelled else -1 for v in source_labels]
        elif isinstance(inner, ClassLabel) and name == "ner_tags":
            columns[name] = [tags for _, tags in tagged]
        elif isinstance(inner, ClassLabel) and name in ("pos_tags", "chunk_tags"):
            fill = inner.names.index("NN" if name == "pos_tags" else "O")
            columns[name] = [[fill] * len(tokens) for tokens, _ in tagged]
        elif isinstance(inner, ClassLabel):  # multi-label: each topic onto its own label of the set
            columns[name] = [
                [class_id(k, inner.num_classes) * 7 % inner.num_classes for k in ids] for _, ids in topic_sets
            ]
        elif inner is not None:  # the words of a sentence
            columns[name] = [tokens for tokens, _ in tagged]
        elif isinstance(feature, Image):
            fmt, sizes = layout.image
            columns[name] = [encoded_image(images[offset + i], sizes[i % len(sizes)], fmt) for i in range(n)]
        elif feature.dtype == "float32":  # regression target: readability grade 0-20 as a 0-5 score
            grades = [flesch_kincaid_grade(t) / 4 for t in texts["text"][offset : offset + n]]
            columns[name] = grades if labelled else [-1.0] * n
        elif feature.dtype == "int32":
            columns[name] = list(range(n))
        elif name in ("image_file_path", "id"):
            columns[name] = [f"/data/{split_name}/{i}.jpg" if name != "id" else f"{split_name}-{i}" for i in range(n)]
        elif multi_label:
            columns[name] = [text for text, _ in topic_sets]
        else:  # a text column: successive real entries (sentence1 and sentence2 get different ones)
            columns[name] = texts["text"][text_start : text_start + n]
            text_start += n
    return columns


def write_snapshot(folder: Path, layouts: list[HubLayout], fortunes) -> Path:
    """Parquet files `<data_dir>/<split>-00000-of-00001.parquet` and a README with `configs:` and `dataset_info`."""
    from datasets import Dataset
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    configs, infos = {}, {}
    for layout in layouts:
        for i, split in enumerate(layout.splits):
            rows = split_rows(layout, i, split, N_ROWS.get(split, N_OTHER), fortunes)
            dataset = Dataset.from_dict(rows, features=layout.features)
            dataset.to_parquet(str(folder / layout.data_dir / f"{split}-00000-of-00001.parquet"))
        if not layout.readme:  # files found by the Hub's default `data/<split>-*` pattern, features in the Parquet
            assert len(layouts) == 1, "a repo without a README card holds one config"
            DatasetInfosDict({layout.config: DatasetInfo(features=layout.features)}).write_to_directory(str(folder))
            return folder
        data_files = [{"split": s, "path": f"{layout.data_dir}/{s}-*"} for s in layout.splits]
        configs[layout.config] = {"data_files": data_files, **({"default": True} if layout.default else {})}
        infos[layout.config] = DatasetInfo(features=layout.features, config_name=layout.config)
    card = DatasetCardData()
    DatasetInfosDict(infos).to_dataset_card_data(card)
    MetadataConfigs(configs).to_dataset_card_data(card)
    (folder / "README.md").write_text(f"---\n{card}\n---\n# Local snapshot for tests\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory, fortunes) -> dict[str, Path]:
    """Repo id -> local snapshot folder; the GLUE snapshot holds both configs, as the real repo does."""
    root = tmp_path_factory.mktemp("hub")
    by_repo: dict[str, list[HubLayout]] = {}
    for layout in LAYOUTS.values():
        by_repo.setdefault(layout.repo, []).append(layout)
    return {
        repo: write_snapshot(root / repo.replace("/", "__"), layouts, fortunes) for repo, layouts in by_repo.items()
    }


@pytest.mark.slow
def test_snapshot_loads_like_the_hub_repo(snapshots):
    from datasets import load_dataset

    glue = snapshots["nyu-mll/glue"]
    sst2, mrpc = load_dataset(str(glue), "sst2"), load_dataset(str(glue), "mrpc")
    assert sst2["train"].features == LAYOUTS["sst2"].features and mrpc["test"].features == LAYOUTS["mrpc"].features
    assert set(sst2["test"]["label"]) == {-1} and set(mrpc["test"]["label"]) <= {0, 1}
    cifar = load_dataset(str(snapshots["uoft-cs/cifar10"]))  # the default config, as the recipe asks
    assert cifar["train"].features == LAYOUTS["cifar10"].features and cifar["train"][0]["img"].size == (32, 32)
    stsb = load_dataset(str(glue), "stsb")
    assert stsb["validation"].features == LAYOUTS["stsb"].features and set(stsb["test"]["label"]) == {-1.0}
    # No README card: splits from the `data/<split>-*` file names, features from the Parquet files themselves.
    conll = load_dataset(str(snapshots["lhoestq/conll2003"]))
    assert set(conll) == {"train", "validation", "test"} and conll["test"].features == LAYOUTS["conll2003"].features
    emotions = load_dataset(str(snapshots["google-research-datasets/go_emotions"]), "simplified")
    assert emotions["train"].features == LAYOUTS["go_emotions"].features


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_hub_recipe_trains_unchanged_on_a_local_snapshot(name, snapshots, minilm_dir, vit_init_dir, tmp_path):
    """What `make <name>` runs (the recipe's task entry point), with only data, checkpoint and size swapped."""
    from hf_finetune.cli import task_entry_point

    layout, values = LAYOUTS[name], recipe_values(name)
    model = str(vit_init_dir) if layout.image else minilm_dir
    out = tmp_path / "out"
    argv = ["--config", name, "--dataset_name", str(snapshots[layout.repo]), "--model_name_or_path", model,
            "--max_steps", "2", "--max_train_samples", "64", "--max_eval_samples", "16",
            "--output_dir", str(out)]  # fmt: skip
    assert task_entry_point(values["task"], argv) == 0
    assert (out / "run_complete.json").is_file()
    label_names = label_names_of(layout, values)
    assert list(read_json(out / "config.json")["id2label"].values()) == label_names
    metrics = read_json(out / "metrics.json")
    assert metrics["label_names"] == label_names
    # a labelled test split is scored once at the end; an all -1 one (GLUE) is skipped
    has_test = "test" in layout.splits and "test" not in layout.unlabelled
    assert ("test" in metrics["metrics"]) == has_test, metrics["metrics"].keys()
