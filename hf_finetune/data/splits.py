"""Labelled splits ready for a task: chosen, checked, encoded, held out and subsampled, all seeded.

Every check here runs before a model is loaded or an output folder is created: a
wrong column name or a one-class label column must cost seconds, not a crashed run
at 90%. Errors name what is wrong and what to change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import train_test_split

from hf_finetune.data.checks import (
    check_no_missing,
    check_single_label,
    check_split_inputs,
    numeric_targets,
    require_columns,
    text_columns,
)
from hf_finetune.data.files import load_raw_splits
from hf_finetune.data.labels import (
    encode_labels,
    encode_multi_labels,
    multi_label_names,
    single_label_names,
    tag_rows,
    word_list,
)
from hf_finetune.data.tags import bio_problem, iob1_to_iob2, tag_label_names
from hf_finetune.errors import UserError, first_line
from hf_finetune.settings.arguments import DataArguments

logger = logging.getLogger(__name__)

VALIDATION_SPLIT_NAMES = ("validation", "valid", "dev", "val")
# Hub test splits without public labels (GLUE) carry -1 in every row.
UNLABELLED = -1


@dataclass
class LabelledData:
    """Validated splits with integer labels in `label_column`, plus the label names in id order."""

    splits: dict  # split name ("train", "validation", optional "test") -> datasets.Dataset
    label_names: list[str]
    source: str
    # File name -> text, written into the output folder once it exists (e.g. the skipped images):
    # data is checked before the folder is created, so what the checks found waits here.
    extra_outputs: dict[str, str] = field(default_factory=dict)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.label_names)}


def seeded_subset(dataset, n: int | None, seed: int):
    if n is None or n >= len(dataset):
        return dataset
    if n < 1:
        raise UserError(f"max_train_samples/max_eval_samples must be at least 1, got {n}")
    return dataset.shuffle(seed=seed).select(range(n))


def is_unlabelled(dataset, label_column: str) -> bool:
    return all(v == UNLABELLED for v in dataset[label_column])


def select_splits(args: DataArguments, columns: list[tuple[str, str]], label_column: str) -> tuple[dict, str]:
    """Train, validation (if any) and labelled test split, each with only `columns` ((option, column) pairs).

    Every task starts here: the split names are resolved, every column is checked in every split
    (the error lists the columns that exist), and a test split whose labels are all -1 (GLUE) is dropped.
    """
    raw, source = load_raw_splits(args)
    if args.train_split not in raw:
        raise UserError(
            f"no '{args.train_split}' split in {source}; splits: {', '.join(raw)}. Set --train_split to one of them"
        )
    validation_name = args.validation_split or next((n for n in VALIDATION_SPLIT_NAMES if n in raw), None)
    if args.validation_split and args.validation_split not in raw:
        raise UserError(f"no '{args.validation_split}' split in {source}; splits: {', '.join(raw)}")
    test_name = args.test_split or ("test" if "test" in raw else None)
    if args.test_split and args.test_split not in raw:
        raise UserError(f"no '{args.test_split}' split in {source}; splits: {', '.join(raw)}")

    chosen = {"train": raw[args.train_split]}
    if validation_name:
        chosen["validation"] = raw[validation_name]
    if test_name:
        chosen["test"] = raw[test_name]
    for split, dataset in chosen.items():
        require_columns(dataset, columns, split, source)
    if test_name and is_unlabelled(chosen["test"], label_column):
        logger.info("test split '%s' of %s has no labels (all -1): skipping final test evaluation", test_name, source)
        del chosen["test"]
    keep = [c for _, c in columns]
    for split, dataset in chosen.items():
        chosen[split] = dataset.remove_columns([c for c in dataset.column_names if c not in keep])
    return chosen, source


def finish_splits(chosen: dict, args: DataArguments, seed: int, stratify_column: str | None) -> dict:
    """Hold out a validation split if there is none (stratified by `stratify_column` when given), then subsets."""
    if "validation" not in chosen:
        chosen["train"], chosen["validation"] = hold_out_validation(chosen["train"], args, seed, stratify_column)
    chosen["train"] = seeded_subset(chosen["train"], args.max_train_samples, seed)
    for split in ("validation", "test"):
        if split in chosen:
            cap = args.max_predict_samples if split == "test" and args.max_predict_samples else args.max_eval_samples
            chosen[split] = seeded_subset(chosen[split], cap, seed)
    return chosen


def load_labelled_data(
    args: DataArguments,
    seed: int,
    inputs: list[tuple[str, str]] | None = None,
    check_inputs: Callable | None = None,
) -> LabelledData:
    """Splits with checked columns and integer labels; a stratified validation split if none exists.

    `inputs` are the (option, column) pairs of the model inputs, the text column(s) by default.
    `check_inputs(split, dataset) -> dataset` replaces the empty-text check for other kinds of input
    (images: decoded and checked once, before training); it may drop rows or add columns.
    Multi-label data (`args.multi_label`) gets lists of label ids and a random validation split.
    """
    inputs = inputs or text_columns(args.text_column, args.text_pair_column)
    chosen, source = select_splits(args, [*inputs, ("label_column", args.label_column)], args.label_column)
    for split, dataset in list(chosen.items()):
        dataset = check_split_inputs(dataset, split, inputs, check_inputs)
        check_no_missing(dataset, args.label_column, split, "label")
        chosen[split] = dataset

    if args.multi_label:
        label_names = multi_label_names(chosen["train"], args.label_column, args.multi_label_separator)
    else:
        check_single_label(chosen["train"], args.label_column)
        label_names = single_label_names(chosen["train"], args.label_column)
    if len(label_names) < 2:
        raise UserError(
            f"label column '{args.label_column}' has only one class ({label_names[0] if label_names else 'none'}) in "
            "the training data; classification needs at least two"
        )
    for split in list(chosen):
        if args.multi_label:
            chosen[split] = encode_multi_labels(
                chosen[split], args.label_column, label_names, split, args.multi_label_separator
            )
        else:
            chosen[split] = encode_labels(chosen[split], args.label_column, label_names, split)
    chosen = finish_splits(chosen, args, seed, None if args.multi_label else args.label_column)
    return LabelledData(splits=chosen, label_names=label_names, source=source)


# Where a target column named `labels` goes while its split is encoded (see `encode_splits`).
RAW_TARGET = "__raw_labels__"


def encode_splits(splits: dict, encode: Callable, target_column: str, num_proc: int | None = None) -> dict:
    """`encode(batch, target_column, split) -> model inputs with "labels"` mapped over each split, raw columns dropped.

    A target column that is itself named `labels` (go_emotions, the fortunes topic sets) is renamed first:
    `datasets.map` keeps an input column's feature for an output column of the same name, so multi-hot
    floats would be stored as ClassLabel ids and -100 would be refused.
    """
    out = {}
    for split, dataset in splits.items():
        column = target_column
        if target_column == "labels":
            dataset, column = dataset.rename_column("labels", RAW_TARGET), RAW_TARGET
        out[split] = dataset.map(
            encode,
            batched=True,
            fn_kwargs={"target_column": column, "split": split},
            remove_columns=dataset.column_names,
            num_proc=num_proc,  # `preprocessing_num_workers`
            desc=f"Tokenizing {split}",
        )
    return out


def load_regression_data(args: DataArguments, seed: int) -> LabelledData:
    """Text (or text pairs) with one float target in `label_column`; a random validation split if none exists.

    `label_names` is the one output, named after the target column (the model's `id2label`).
    """
    inputs = text_columns(args.text_column, args.text_pair_column)
    chosen, source = select_splits(args, [*inputs, ("label_column", args.label_column)], args.label_column)
    for split, dataset in list(chosen.items()):
        for _, column in inputs:
            check_no_missing(dataset, column, split, "text")
        chosen[split] = numeric_targets(dataset, args.label_column, split)
    if len(set(chosen["train"][args.label_column])) < 2:
        raise UserError(f"every training target in column '{args.label_column}' is the same; nothing to learn")
    chosen = finish_splits(chosen, args, seed, None)
    return LabelledData(splits=chosen, label_names=[args.label_column], source=source)


def hold_out_validation(train, args: DataArguments, seed: int, stratify_column: str | None):
    """Hold out `validation_size` of train: stratified by label (single-label classification) so rare classes
    appear in both parts, at random otherwise (multi-label, regression, token classification)."""
    n_val = round(len(train) * args.validation_size)
    if n_val < 1 or len(train) - n_val < 1:
        raise UserError(
            f"{len(train)} training rows are too few to hold out a validation split; add rows or a validation file"
        )
    if stratify_column is None:  # no single label to stratify by
        parts = train.train_test_split(test_size=args.validation_size, seed=seed)
        logger.info("no validation split: held out %d of %d rows at random, seed %d", n_val, len(train), seed)
        return parts["train"], parts["test"]
    n_classes = len(train.features[stratify_column].names)
    try:
        parts = train.train_test_split(test_size=args.validation_size, seed=seed, stratify_by_column=stratify_column)
    except ValueError as exc:  # a class with a single row, or fewer validation rows than classes
        logger.warning("stratified validation split impossible (%s); using a random split", first_line(exc))
        parts = train.train_test_split(test_size=args.validation_size, seed=seed)
    logger.info(
        "no validation split: held out %d of %d training rows (%d classes), stratified, seed %d",
        len(parts["test"]),
        len(train),
        n_classes,
        seed,
    )
    return parts["train"], parts["test"]


def load_token_data(args: DataArguments, seed: int) -> LabelledData:
    """Sentences as word lists (`tokens_column`) with one BIO tag per word (`tags_column`), checked row by row.

    Tags become ids in `label_names` order: a `Sequence(ClassLabel)` keeps its names (CoNLL-2003's order);
    otherwise `O`, then B-/I- of each entity type found in train. Errors name the row: a word count
    that differs from the tag count, an empty sentence, a tag that breaks BIO, a tag train lacks.
    """
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    columns = [("tokens_column", args.tokens_column), ("tags_column", args.tags_column)]
    chosen, source = select_splits(args, columns, args.tags_column)
    rows = {}
    for split, dataset in chosen.items():
        words = [word_list(v) for v in dataset[args.tokens_column]]
        tags = tag_rows(dataset, args.tags_column)
        problems = []
        for i, (w, t) in enumerate(zip(words, tags, strict=True)):
            if not w:
                problems.append(f"row {i} has no words")
            elif len(w) != len(t):
                problems.append(f"row {i} has {len(w)} words but {len(t)} tags")
            else:
                if args.tag_scheme == "iob1":
                    t = tags[i] = iob1_to_iob2(t)
                problem = bio_problem(t, w)
                if problem:
                    problems.append(f"row {i}: {problem}")
        if problems:
            more = f" ({len(problems) - 1} more row(s) with problems)" if len(problems) > 1 else ""
            raise UserError(
                f"bad tags in the {split} split of {source}, column '{args.tags_column}': {problems[0]}{more}"
            )
        rows[split] = (words, tags)

    feature = getattr(chosen["train"].features[args.tags_column], "feature", None)
    if isinstance(feature, ClassLabel) and args.tag_scheme == "iob2":
        label_names = list(feature.names)
    else:
        label_names = tag_label_names({t for row in rows["train"][1] for t in row})
    if len(label_names) < 2:
        raise UserError(f"column '{args.tags_column}' of the train split holds only O tags: no entity to learn")
    index = {name: i for i, name in enumerate(label_names)}
    features_tags = Sequence(ClassLabel(names=label_names))
    for split, (words, tags) in rows.items():
        unseen = sorted({t for row in tags for t in row} - set(index))
        if unseen:
            raise UserError(f"tags in {split} not seen in train: {', '.join(unseen[:10])}")
        chosen[split] = Dataset.from_dict(
            {args.tokens_column: words, args.tags_column: [[index[t] for t in row] for row in tags]},
            features=Features({args.tokens_column: Sequence(Value("string")), args.tags_column: features_tags}),
        )
    chosen = finish_splits(chosen, args, seed, None)
    return LabelledData(splits=chosen, label_names=label_names, source=source)


def stratified_folds(labels, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train indices, held-out indices) per fold: disjoint held-out parts that cover every row once,
    each class spread evenly over the folds."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    counts = np.bincount(labels)
    rarest = int(counts[counts > 0].min()) if len(labels) else 0
    if k > rarest:
        raise UserError(f"{k} folds need at least {k} training examples of every class; the rarest class has {rarest}")
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def stratified_subsample(labels, n: int, seed: int) -> np.ndarray:
    """Indices (sorted) of `n` rows with the class shares of `labels`, seeded; every row when `n` covers them.

    The one stratified subsample: `compare`'s data fractions and the advisor's measurement sample both draw
    here, so the same seed keeps the same rows. A class too small to split raises sklearn's ValueError."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    kept, _ = train_test_split(np.arange(len(labels)), train_size=n, stratify=labels, random_state=seed)
    return np.sort(kept)
