"""Zero-shot classification by attributes: direct attribute prediction (DAP).

Lampert, Nickisch and Harmeling, "Learning to detect unseen object classes by between-class
attribute transfer" (CVPR 2009) and "Attribute-based classification for zero-shot visual object
categorization" (TPAMI 2014, https://doi.org/10.1109/TPAMI.2013.140). A multi-label model trained
on the *seen* classes predicts one probability per attribute (sigmoid + binary cross-entropy, the
ordinary `--multi_label true` image classification run). A class nobody showed the model is given
by its attribute vector a^z in {0, 1}^M, in a small table the user writes. Then

    p(z | x)  proportional to  prod_m  p(a_m = a^z_m | x) / p(a_m = a^z_m)

over the candidate classes: the unseen classes (standard zero-shot) or every class in the table
(generalized zero-shot, where unseen classes compete with the seen ones the model was trained on).
The prior p(a_m) is the mean attribute vector of the seen classes (Lampert's choice); it rewards an
attribute that is rare among the seen classes when the image shows it. Scores are summed in log
space, with probabilities clipped, so one over-confident attribute cannot veto a class on its own.

The class table (YAML or JSON) lists what each class has; every other attribute the model knows
counts as absent:

    unseen:
      Dress: [clothing, upper_body, covers_legs]
      Sneaker: [footwear]
    seen:                    # optional: attribute priors and generalized zero-shot
      Trouser: [clothing, covers_legs]
      ...

or, as a CSV class-attribute matrix, `class,split,clothing,footwear,...` rows such as `Dress,unseen,1,0,...`.

`packaged:fashion-mnist` is that table for Fashion-MNIST, built from the one attribute table
(`local_assets.FASHION_MNIST_ATTRIBUTES`) with Dress and Sneaker unseen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hf_finetune.assets.fashion_mnist import (
    FASHION_MNIST_ATTRIBUTES,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_UNSEEN_CLASSES,
)
from hf_finetune.data.checks import require_columns
from hf_finetune.data.files import load_named_splits, read_data_file
from hf_finetune.data.images import ImageChecker, to_rgb
from hf_finetune.errors import UserError, first_line
from hf_finetune.inference.pipeline import MULTI_LABEL, model_kind
from hf_finetune.modeling.adapters import is_adapter_folder, load_adapter_model
from hf_finetune.modeling.loading import check_checkpoint_folder
from hf_finetune.settings.packaged import is_packaged

logger = logging.getLogger("hf_finetune")

# A sigmoid output of 0.99999 says little more than 0.999; clipping to [1e-4, 1 - 1e-4] caps what one
# attribute can cost a class at log(1e-4) = -9.2 nats, so a single confidently wrong attribute is
# outweighed by several right ones instead of ruling the class out.
PROBABILITY_CLIP = 1e-4
# An attribute every seen class has (or none has) gives a prior of 1 (or 0); Lampert clips priors too.
PRIOR_CLIP = 0.01
PRIORS = ("seen", "none")
TABLE_SUFFIXES = (".yaml", ".yml", ".json", ".csv")


@dataclass
class ClassTable:
    """Classes as attribute sets: `unseen` are the zero-shot targets, `seen` (optional) were trained on."""

    unseen: dict[str, tuple[str, ...]]
    seen: dict[str, tuple[str, ...]]
    source: str

    @property
    def classes(self) -> dict[str, tuple[str, ...]]:
        return {**self.unseen, **self.seen}

    def matrix(self, names: list[str], attributes: list[str]) -> np.ndarray:
        """(classes x attributes) 0/1 matrix of the named classes, columns in the model's attribute order."""
        table = self.classes
        return np.array([[float(a in table[name]) for a in attributes] for name in names])

    def priors(self, attributes: list[str]) -> np.ndarray | None:
        """p(a_m = 1): the mean attribute vector of the seen classes (None without seen classes)."""
        if not self.seen:
            return None
        return self.matrix(list(self.seen), attributes).mean(axis=0)

    def check(self, attributes: list[str], generalized: bool = False) -> None:
        """Every attribute is one the model predicts; `generalized`: no unseen class looks like a seen one."""
        known = set(attributes)
        for name, has in self.classes.items():
            unknown = sorted(set(has) - known)
            if unknown:
                raise UserError(
                    f"class '{name}' in {self.source} has attribute(s) the model does not predict: "
                    f"{', '.join(unknown)}; it predicts {', '.join(attributes)}"
                )
        if generalized:
            for name in self.unseen:
                check_distinct(name, self.unseen[name], self.classes, self.source)


def check_distinct(name: str, has: tuple[str, ...], rivals: dict[str, tuple[str, ...]], source: str) -> None:
    """Two candidate classes with the same attributes get the same score on every image: refuse them."""
    twin = next((other for other in rivals if other != name and set(rivals[other]) == set(has)), None)
    if twin is not None:
        raise UserError(
            f"classes '{name}' and '{twin}' in {source} have the same attributes ({', '.join(sorted(has))}), "
            "so no attribute can tell them apart; give one of them an attribute the other lacks"
        )


def parse_class_table(values, source: str) -> ClassTable:
    """A table's parsed YAML/JSON -> `ClassTable`, or a one-line `UserError` saying what is malformed."""
    shape = "a mapping with `unseen:` (and optionally `seen:`), each class: [attribute, ...]"
    if not isinstance(values, dict) or "unseen" not in values:
        raise UserError(f"{source} must be {shape}")
    extra = sorted(set(values) - {"unseen", "seen"})
    if extra:
        raise UserError(f"{source} has unknown key(s) {', '.join(map(str, extra))}; it must be {shape}")
    parts = {}
    for part in ("unseen", "seen"):
        classes = values.get(part) or {}
        if not isinstance(classes, dict):
            raise UserError(f"`{part}:` in {source} must map class names to attribute lists, got {classes!r}")
        parsed = {}
        for name, has in classes.items():
            if isinstance(has, str):
                has = [has]
            if not isinstance(has, list) or not all(isinstance(a, str) for a in has):
                raise UserError(f"class '{name}' in {source} must list attribute names, got {has!r}")
            if not has:
                raise UserError(
                    f"class '{name}' in {source} has no attributes; DAP describes a class only by the attributes "
                    "it has: list at least one"
                )
            parsed[str(name)] = tuple(dict.fromkeys(has))
        parts[part] = parsed
    if len(parts["unseen"]) < 2:
        raise UserError(f"{source} names {len(parts['unseen'])} unseen class(es); zero-shot needs at least two")
    for name, has in parts["unseen"].items():
        check_distinct(name, has, parts["unseen"], source)
    both = sorted(set(parts["unseen"]) & set(parts["seen"]))
    if both:
        raise UserError(f"class(es) {', '.join(both)} in {source} are both seen and unseen; keep each in one list")
    return ClassTable(unseen=parts["unseen"], seen=parts["seen"], source=source)


def fashion_mnist_class_table() -> ClassTable:
    """The Fashion-MNIST zero-shot split: Dress and Sneaker unseen, from the one attribute table."""

    values = {"unseen": {}, "seen": {}}
    for i, name in enumerate(FASHION_MNIST_CLASSES):
        values["unseen" if i in FASHION_MNIST_UNSEEN_CLASSES else "seen"][name] = list(FASHION_MNIST_ATTRIBUTES[name])
    return parse_class_table(values, "packaged:fashion-mnist")


PACKAGED_TABLES = {"fashion-mnist": fashion_mnist_class_table}


def read_class_table(path: str) -> ClassTable:
    """`--classes`: a YAML/JSON file, a CSV class-attribute matrix, or `packaged:fashion-mnist`."""
    import yaml

    if is_packaged(path):
        key = path.split(":", 1)[1]
        if key not in PACKAGED_TABLES:
            raise UserError(f"unknown packaged class table '{key}'; known: {', '.join(PACKAGED_TABLES)}")
        return PACKAGED_TABLES[key]()
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"class table {path} does not exist: pass a .yaml or .csv table of the classes' attributes")
    if file.suffix not in TABLE_SUFFIXES:
        raise UserError(f"class table {path} must be {' or '.join(TABLE_SUFFIXES)}")
    if file.suffix == ".csv":
        return parse_class_table(read_csv_table(file), path)
    try:
        values = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"cannot parse {path}: {first_line(exc)}") from None
    return parse_class_table(values, path)


def read_csv_table(file: Path) -> dict:
    """The published form of attribute tables (Lampert's class-attribute matrix): a row per class,
    `class,split,<attribute>,...` with split `seen` or `unseen` and 0/1 per attribute."""
    import csv

    with open(file, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    header = list(rows[0]) if rows else []
    if header[:2] != ["class", "split"] or len(header) < 3:
        raise UserError(f"{file} must start with the columns class,split then one 0/1 column per attribute")
    values: dict = {"unseen": {}, "seen": {}}
    for number, row in enumerate(rows, start=2):
        if row["split"] not in values:
            raise UserError(f"{file} line {number}: split must be seen or unseen, got '{row['split']}'")
        bad = [a for a in header[2:] if (row[a] or "").strip() not in ("0", "1")]
        if bad:
            raise UserError(f"{file} line {number}: attribute columns hold 0 or 1; {', '.join(bad)} do not")
        values[row["split"]][row["class"]] = [a for a in header[2:] if row[a].strip() == "1"]
    return values


def dap_log_scores(attribute_probs, class_attributes, priors=None) -> np.ndarray:
    """log p(z | x) up to a constant per image: (images x attributes), (classes x attributes) -> (images x classes).

    sum_m [a_zm log p_m + (1 - a_zm) log(1 - p_m)]  -  sum_m [a_zm log pi_m + (1 - a_zm) log(1 - pi_m)]
    with p_m the predicted probability of attribute m and pi_m its prior (omitted when `priors` is None).
    """
    p = np.clip(np.asarray(attribute_probs, dtype=np.float64), PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
    a = np.asarray(class_attributes, dtype=np.float64)
    scores = np.log(p) @ a.T + np.log1p(-p) @ (1 - a).T
    if priors is not None:
        prior = np.clip(np.asarray(priors, dtype=np.float64), PRIOR_CLIP, 1 - PRIOR_CLIP)
        scores -= a @ np.log(prior) + (1 - a) @ np.log1p(-prior)
    return scores


def dap_predict(attribute_probs, class_attributes, priors=None) -> np.ndarray:
    """Index of the most probable class per image (ties: the first listed)."""
    return dap_log_scores(attribute_probs, class_attributes, priors).argmax(axis=1)


# --- Applying a trained attribute model to labelled images ---


def load_attribute_model(model_dir: str):
    """(model, image processor, attribute names in output order) of a finished multi-label run."""
    import json

    from transformers import AutoImageProcessor, AutoModelForImageClassification

    folder = Path(model_dir).expanduser()
    if not (folder / "config.json").is_file():
        raise UserError(f"{model_dir} is not a model folder (no config.json): pass the output_dir of a training run")
    check_checkpoint_folder(str(folder), allow_pickle=False)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if model_kind(config) != MULTI_LABEL:
        raise UserError(
            f"{model_dir} predicts one class per image; zero-shot needs an attribute model: train one with "
            "--multi_label true (recipe fashion_mnist_zero_shot)"
        )
    if not (folder / "preprocessor_config.json").is_file():
        raise UserError(f"{model_dir} has no preprocessor_config.json: zero-shot reads images with an image model")
    model = (
        load_adapter_model(folder)
        if is_adapter_folder(folder)
        else AutoModelForImageClassification.from_pretrained(folder)
    )
    processor = AutoImageProcessor.from_pretrained(folder)
    attributes = [model.config.id2label[i] for i in range(len(model.config.id2label))]
    return model.eval(), processor, attributes


def attribute_probabilities(model, processor, images, batch_size: int = 128) -> np.ndarray:
    """Sigmoid outputs (images x attributes) through the image processor, as training evaluated them."""
    import torch

    rows = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = [to_rgb(image) for image in images[start : start + batch_size]]
            pixel_values = processor(images=batch, return_tensors="pt")["pixel_values"].to(model.device)
            rows.append(torch.sigmoid(model(pixel_values=pixel_values).logits.float()).cpu().numpy())
    return np.concatenate(rows) if rows else np.zeros((0, len(model.config.id2label)))


def load_class_images(data: str, split: str, image_column: str, label_column: str, classes: list[str]):
    """(images, class names) of the given classes in one split of `data`: packaged:NAME, a dataset folder
    (`save_to_disk` or an image folder) or a data file (.csv/.jsonl/.parquet with image paths)."""
    from datasets import ClassLabel

    file = Path(data).expanduser()
    splits = {split: read_data_file(str(file), split=split)} if file.is_file() else load_named_splits(data)
    if split not in splits:
        raise UserError(f"no '{split}' split in {data}; splits: {', '.join(splits)}. Pass --split")
    dataset = splits[split]
    require_columns(dataset, [("image_column", image_column), ("label_column", label_column)], split, data)
    feature = dataset.features[label_column]
    names = [feature.int2str(v) if isinstance(feature, ClassLabel) else str(v) for v in dataset[label_column]]
    present, wanted = set(names), set(classes)
    missing = [c for c in classes if c not in present]
    if missing:
        shown = ", ".join(sorted(present)[:12])
        raise UserError(
            f"no images of class(es) {', '.join(missing)} in the {split} split of {data} (column '{label_column}' "
            f"holds: {shown}); class names in the table must match the data's"
        )
    rows = [i for i, name in enumerate(names) if name in wanted]
    base = file.resolve().parent if file.is_file() else (file.resolve() if file.is_dir() else Path.cwd())
    checker = ImageChecker(image_column, {split: base}, skip_bad=False, source=data, trusted=is_packaged(data))
    subset = checker(split, dataset.select(rows))
    return list(subset[image_column]), [names[i] for i in rows]


def confusion(true: list[int], predicted, n_true: int, n_candidates: int) -> list[list[int]]:
    matrix = np.zeros((n_true, n_candidates), dtype=int)
    np.add.at(matrix, (np.asarray(true), np.asarray(predicted)), 1)
    return matrix.tolist()


def score_candidates(probs, true_names: list[str], table: ClassTable, attributes: list[str], candidates, priors):
    """Accuracy, per-class accuracy and the confusion matrix of DAP over `candidates` on the unseen images."""
    unseen = list(table.unseen)
    predicted = dap_predict(probs, table.matrix(candidates, attributes), priors)
    true_ids = [candidates.index(name) for name in true_names]
    correct = np.asarray(predicted) == np.asarray(true_ids)
    per_class = {name: round(float(correct[[t == name for t in true_names]].mean()), 4) for name in unseen}
    return {
        "candidates": candidates,
        "chance": round(1 / len(candidates), 4),
        "accuracy": round(float(correct.mean()), 4),
        "mean_per_class_accuracy": round(float(np.mean(list(per_class.values()))), 4),
        "per_class_accuracy": per_class,
        "confusion_matrix": {"rows": unseen, "columns": candidates, "matrix": confusion(
            [unseen.index(n) for n in true_names], predicted, len(unseen), len(candidates)
        )},
    }  # fmt: skip


def attribute_agreement(probs, true_names: list[str], table: ClassTable, attributes: list[str], unseen) -> dict:
    """Per unseen class: how often each thresholded attribute (p >= 0.5) says what the description says."""
    agrees = (probs >= 0.5) == (table.matrix(true_names, attributes) > 0.5)
    return {
        name: dict(
            zip(attributes, np.round(agrees[[t == name for t in true_names]].mean(axis=0), 4).tolist(), strict=True)
        )
        for name in unseen
    }


def zero_shot_evaluate(
    model_dir: str,
    classes: str | ClassTable,
    data: str,
    split: str = "test",
    image_column: str = "image",
    label_column: str = "label",
    prior: str = "seen",
    batch_size: int = 128,
) -> dict:
    """Classify the images of the table's unseen classes by DAP; the Python API behind `hf-finetune zero-shot`.

    Returns the standard zero-shot scores (candidates: the unseen classes; chance 1/#unseen), the
    generalized scores when the table lists seen classes (candidates: every class), and how often each
    thresholded attribute (p >= 0.5) agrees with the class description, per unseen class.
    """
    if prior not in PRIORS:
        raise UserError(f"prior must be one of {', '.join(PRIORS)}, got '{prior}'")
    table = classes if isinstance(classes, ClassTable) else read_class_table(classes)
    model, processor, attributes = load_attribute_model(model_dir)
    table.check(attributes)
    generalized, skipped = bool(table.seen), None
    if generalized:
        try:
            table.check(attributes, generalized=True)
        except UserError as exc:  # standard zero-shot still works; only the all-classes decision cannot
            generalized, skipped = False, str(exc)
            logger.warning("no generalized zero-shot: %s", skipped)
    unseen = list(table.unseen)
    images, true_names = load_class_images(data, split, image_column, label_column, unseen)
    logger.info("zero-shot: %d images of %s from the %s split of %s", len(images), ", ".join(unseen), split, data)
    probs = attribute_probabilities(model, processor, images, batch_size)
    priors = table.priors(attributes) if prior == "seen" else None
    counts = {name: true_names.count(name) for name in unseen}
    report = {
        "model": str(model_dir),
        "classes": table.source,
        "data": data,
        "split": split,
        "images": len(images),
        "images_per_class": counts,
        "attributes": attributes,
        "prior": "mean attribute vector of the seen classes" if priors is not None else "none (uniform)",
        "unseen": {
            **score_candidates(probs, true_names, table, attributes, unseen, priors),
            "majority_baseline": round(max(counts.values()) / len(images), 4),
        },
        "attribute_agreement": attribute_agreement(probs, true_names, table, attributes, unseen),
    }
    if skipped:
        report["generalized_skipped"] = skipped
    if generalized:
        report["generalized"] = score_candidates(probs, true_names, table, attributes, list(table.classes), priors)
    return report


def format_zero_shot_report(report: dict) -> str:
    """What `hf-finetune zero-shot` prints: headline vs chance, per-class accuracy, confusion matrices."""
    lines = [
        f"{report['images']} images of unseen classes ({report['split']} split of {report['data']}); "
        f"prior: {report['prior']}"
    ]
    for key, title in (("unseen", "zero-shot (unseen classes only)"), ("generalized", "generalized (all classes)")):
        if key not in report:
            continue
        part = report[key]
        lines.append(
            f"{title}: accuracy {part['accuracy']:.4f} vs chance {part['chance']:.4f} "
            f"({len(part['candidates'])} candidates); mean per-class accuracy {part['mean_per_class_accuracy']:.4f}"
        )
        for name, value in part["per_class_accuracy"].items():
            lines.append(f"  {name:<20} accuracy {value:.4f}  n={report['images_per_class'][name]}")
        cm = part["confusion_matrix"]
        width = max(8, *(len(c) + 1 for c in cm["columns"]))
        lines.append("  " + " " * 20 + "".join(f"{c:>{width}}" for c in cm["columns"]))
        for name, row in zip(cm["rows"], cm["matrix"], strict=True):
            lines.append(f"  {name:<20}" + "".join(f"{v:>{width}}" for v in row))
    lines.append("attributes (p >= 0.5) agreeing with the class description:")
    for name, values in report["attribute_agreement"].items():
        lines.append(f"  {name:<20} " + ", ".join(f"{a} {v:.3f}" for a, v in values.items()))
    return "\n".join(lines)
