"""Load labelled data from files, folders, the Hub or a package, and check it before training.

Every check here runs before a model is loaded or an output folder is created: a
wrong column name or a one-class label column must cost seconds, not a crashed run
at 90%. Errors name what is wrong and what to change.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hf_finetune.config import DataArguments, looks_like_local_path
from hf_finetune.errors import UserError, first_line
from hf_finetune.local_assets import is_packaged, load_packaged_dataset

logger = logging.getLogger(__name__)

# file suffix -> (datasets builder, extra builder kwargs)
FILE_FORMATS = {
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"sep": "\t"}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
}
# CoNLL text files (token classification): one word per line, its tag in the last column.
CONLL_SUFFIXES = (".conll", ".txt")
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


@contextmanager
def datasets_errors_silenced():
    """datasets logs its own error line before raising; we report the error once, as one line."""
    from datasets.utils import logging as datasets_logging

    level = datasets_logging.get_verbosity()
    datasets_logging.set_verbosity(logging.CRITICAL + 1)
    try:
        yield
    finally:
        datasets_logging.set_verbosity(level)


def read_data_file(path: str | os.PathLike, split: str = "train"):
    """One local data file as a `datasets.Dataset`, with format and readability checks."""
    from datasets import load_dataset

    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"data file {path} does not exist")
    if path.is_dir():
        raise UserError(f"{path} is a folder; pass it as --dataset_name, or pass one file as --train_file")
    suffix = path.suffix.lower()
    if suffix not in FILE_FORMATS and suffix not in CONLL_SUFFIXES:
        formats = ", ".join([*FILE_FORMATS, *CONLL_SUFFIXES])
        raise UserError(f"cannot read {path}: unsupported file type '{suffix}'; use one of {formats}")
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or first_line(exc)}") from None
    if not head.strip():
        raise UserError(f"data file {path} is empty")
    if suffix != ".parquet":
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if len(head) - exc.start > 4:  # not just a multi-byte character cut at the 64 KiB boundary
                raise UserError(
                    f"{path} is not UTF-8 text (bad byte at offset {exc.start}); re-save it as UTF-8"
                ) from None
    if suffix in CONLL_SUFFIXES:
        return read_conll_file(path)
    builder, kwargs = FILE_FORMATS[suffix]
    try:
        with datasets_errors_silenced():
            dataset = load_dataset(builder, data_files={split: str(path)}, split=split, **kwargs)
    except Exception as exc:  # pyarrow/pandas parse errors come in many types; all mean "bad file"
        cause = exc.__cause__ or exc
        raise UserError(f"cannot parse {path} as {suffix[1:]}: {first_line(cause)}") from None
    if len(dataset) == 0:
        raise UserError(f"data file {path} has no rows")
    return dataset


def read_conll_file(path: Path):
    """A CoNLL-2003-style text file as a Dataset with `tokens` and `ner_tags` (lists of strings).

    One word per line, columns separated by whitespace, the word first and its tag last (CoNLL-2003
    has POS and chunk tags between them); a blank line ends a sentence; `-DOCSTART-` lines are skipped.
    """
    from datasets import Dataset

    sentences: list[tuple[list[str], list[str]]] = []
    words: list[str] = []
    tags: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            columns = line.split()
            if not columns or columns[0] == "-DOCSTART-":
                if words:
                    sentences.append((words, tags))
                    words, tags = [], []
                continue
            if len(columns) < 2:
                raise UserError(
                    f"line {number} of {path} has one column ({columns[0]!r}); a CoNLL file has the word first and "
                    "its tag last on each line, separated by whitespace"
                )
            words.append(columns[0])
            tags.append(columns[-1])
    if words:
        sentences.append((words, tags))
    if not sentences:
        raise UserError(f"{path} holds no sentences (one word and its tag per line, a blank line between sentences)")
    return Dataset.from_dict({"tokens": [w for w, _ in sentences], "ner_tags": [t for _, t in sentences]})


def load_raw_splits(args: DataArguments) -> tuple[dict, str]:
    """All available splits, before column checks: (split name -> Dataset, description of the source)."""
    if args.train_file:
        splits = {args.train_split: read_data_file(args.train_file)}
        for name, path in (("validation", args.validation_file), ("test", args.test_file)):
            if path:
                splits[name] = read_data_file(path, split=name)
        return splits, args.train_file
    return load_named_splits(args.dataset_name, args.dataset_config_name), args.dataset_name


def load_named_splits(name: str, config_name: str | None = None) -> dict:
    """Split name -> Dataset of a `packaged:` data set, a dataset or image folder, or a Hub id."""
    if is_packaged(name):
        return dict(load_packaged_dataset(name))
    return dict(_load_dataset_folder_or_hub(name, config_name))


def _load_dataset_folder_or_hub(name: str, config_name: str | None):
    """A local folder and a Hub id go through the same `load_dataset` call; `save_to_disk` folders too."""
    from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

    path = Path(name).expanduser()
    if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
        loaded = load_from_disk(str(path))
        return loaded if isinstance(loaded, DatasetDict) else DatasetDict({"train": loaded})
    if not path.exists() and looks_like_local_path(name):
        raise UserError(f"dataset folder {name} does not exist")
    if path.is_file():
        raise UserError(f"{name} is a file; pass it as --train_file")
    try:
        loaded = load_dataset(name, config_name)
    except Exception as exc:  # offline, unknown id, missing config: all fixable by the user
        hint = "check the id and config name" if not path.exists() else "the folder holds no readable data files"
        raise UserError(f"cannot load dataset '{name}' ({hint}): {first_line(exc)}") from None
    if isinstance(loaded, Dataset):
        loaded = DatasetDict({"train": loaded})
    return loaded


def text_columns(text_column: str, text_pair_column: str | None) -> list[tuple[str, str]]:
    """(option name, column) of the input text column(s), for checks and error messages."""
    return [("text_column", text_column)] + ([("text_pair_column", text_pair_column)] if text_pair_column else [])


def require_columns(dataset, columns: list[tuple[str, str]], split: str, source: str) -> None:
    for option, column in columns:
        if column not in dataset.column_names:
            raise UserError(
                f"column '{column}' not found in {split} split of {source}; available columns: "
                f"{', '.join(dataset.column_names)}. Set --{option} to one of them"
            )


def _is_missing(value) -> bool:
    """Null, blank, or a float NaN (pandas' missing value, which a JSON file can also hold)."""
    return (
        value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, float) and value != value)
    )


def _check_no_missing(dataset, column: str, split: str, kind: str) -> None:
    bad = [i for i, v in enumerate(dataset[column]) if _is_missing(v)]
    if bad:
        rows = ", ".join(str(i) for i in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise UserError(
            f"{len(bad)} row(s) of the {split} split have an empty {kind} in column '{column}' (rows {rows}; "
            "blank, null or NaN); remove or fill them"
        )


def _check_text(dataset, column: str, split: str, option: str) -> None:
    """A text column of numbers (often the wrong column) would fail inside the tokenizer with a traceback."""
    feature = dataset.features[column]
    if getattr(feature, "dtype", None) not in ("string", "large_string"):
        kind = f"{feature.dtype} values" if hasattr(feature, "dtype") else repr(feature)
        raise UserError(
            f"column '{column}' of the {split} split holds {kind}, not text; set --{option} to the column with the text"
        )


def _check_single_label(train, label_column: str) -> None:
    """A column of lists is multi-label data: say which option reads it, rather than failing on hashing."""
    feature = train.features[label_column]
    if hasattr(feature, "feature"):  # datasets' List/Sequence feature
        raise UserError(f"label column '{label_column}' holds lists of labels: pass --multi_label true to use them")


def _label_names(train, label_column: str) -> list[str]:
    from datasets import ClassLabel

    feature = train.features[label_column]
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    values = set(train[label_column])
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return [str(v) for v in sorted(values, key=(float if numeric else str))]


def _encode_labels(dataset, label_column: str, label_names: list[str], split: str):
    """Labels as ClassLabel ids in the train label order; unseen labels are an error."""
    from datasets import ClassLabel

    feature = dataset.features[label_column]
    target = ClassLabel(names=label_names)
    if isinstance(feature, ClassLabel):
        if list(feature.names) != label_names:
            mapping = {i: label_names.index(n) if n in label_names else None for i, n in enumerate(feature.names)}
            unseen = sorted({feature.names[v] for v in dataset[label_column] if v >= 0 and mapping[v] is None})
            if unseen:
                raise UserError(f"labels in {split} not seen in train: {', '.join(unseen)}")
            dataset = dataset.map(lambda b: {label_column: [mapping[v] for v in b[label_column]]}, batched=True)
        return dataset.cast_column(label_column, target)
    label2id = {n: i for i, n in enumerate(label_names)}
    as_text = [str(v) for v in dataset[label_column]]
    unseen = sorted(set(as_text) - set(label2id))
    if unseen:
        raise UserError(
            f"labels in {split} not seen in train: {', '.join(unseen[:10])}; the model can only predict the "
            f"train labels ({', '.join(label_names[:10])})"
        )
    dataset = dataset.remove_columns(label_column).add_column(label_column, [label2id[v] for v in as_text])
    return dataset.cast_column(label_column, target)


def _label_list(value, separator: str) -> list:
    """One multi-label cell as a list: a list stays, a string is split on the separator."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(separator) if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _multi_label_names(train, label_column: str, separator: str) -> list[str]:
    from datasets import ClassLabel

    feature = getattr(train.features[label_column], "feature", None)
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    values = {str(v) for row in train[label_column] for v in _label_list(row, separator)}
    return sorted(values)


def _encode_multi_labels(dataset, label_column: str, label_names: list[str], split: str, separator: str):
    """Label lists as lists of ids in the train label order (a `Sequence(ClassLabel)` column)."""
    from datasets import ClassLabel, Sequence

    feature = getattr(dataset.features[label_column], "feature", None)
    names = feature.names if isinstance(feature, ClassLabel) else None
    rows = [[names[v] if names else str(v) for v in _label_list(row, separator)] for row in dataset[label_column]]
    unseen = sorted({v for row in rows for v in row} - set(label_names))
    if unseen:
        raise UserError(f"labels in {split} not seen in train: {', '.join(unseen[:10])}")
    label2id = {n: i for i, n in enumerate(label_names)}
    ids = [sorted({label2id[v] for v in row}) for row in rows]
    dataset = dataset.remove_columns(label_column).add_column(label_column, ids)
    return dataset.cast_column(label_column, Sequence(ClassLabel(names=label_names)))


def _seeded_subset(dataset, n: int | None, seed: int):
    if n is None or n >= len(dataset):
        return dataset
    if n < 1:
        raise UserError(f"max_train_samples/max_eval_samples must be at least 1, got {n}")
    return dataset.shuffle(seed=seed).select(range(n))


def _is_unlabelled(dataset, label_column: str) -> bool:
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
    if test_name and _is_unlabelled(chosen["test"], label_column):
        logger.info("test split '%s' of %s has no labels (all -1): skipping final test evaluation", test_name, source)
        del chosen["test"]
    keep = [c for _, c in columns]
    for split, dataset in chosen.items():
        chosen[split] = dataset.remove_columns([c for c in dataset.column_names if c not in keep])
    return chosen, source


def finish_splits(chosen: dict, args: DataArguments, seed: int, stratify_column: str | None) -> dict:
    """Hold out a validation split if there is none (stratified by `stratify_column` when given), then subsets."""
    if "validation" not in chosen:
        chosen["train"], chosen["validation"] = _hold_out_validation(chosen["train"], args, seed, stratify_column)
    chosen["train"] = _seeded_subset(chosen["train"], args.max_train_samples, seed)
    for split in ("validation", "test"):
        if split in chosen:
            chosen[split] = _seeded_subset(chosen[split], args.max_eval_samples, seed)
    return chosen


def check_split_inputs(dataset, split: str, inputs: list[tuple[str, str]], check_inputs: Callable | None = None):
    """The model-input checks of one split: no empty texts and text-typed columns, or `check_inputs(split,
    dataset) -> dataset` for other kinds of input (images: decoded and checked once; it may drop rows)."""
    if check_inputs is not None:
        return check_inputs(split, dataset)
    for option, column in inputs:
        _check_no_missing(dataset, column, split, "text")
        _check_text(dataset, column, split, option)
    return dataset


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
        _check_no_missing(dataset, args.label_column, split, "label")
        chosen[split] = dataset

    if args.multi_label:
        label_names = _multi_label_names(chosen["train"], args.label_column, args.multi_label_separator)
    else:
        _check_single_label(chosen["train"], args.label_column)
        label_names = _label_names(chosen["train"], args.label_column)
    if len(label_names) < 2:
        raise UserError(
            f"label column '{args.label_column}' has only one class ({label_names[0] if label_names else 'none'}) in "
            "the training data; classification needs at least two"
        )
    for split in list(chosen):
        if args.multi_label:
            chosen[split] = _encode_multi_labels(
                chosen[split], args.label_column, label_names, split, args.multi_label_separator
            )
        else:
            chosen[split] = _encode_labels(chosen[split], args.label_column, label_names, split)
    chosen = finish_splits(chosen, args, seed, None if args.multi_label else args.label_column)
    return LabelledData(splits=chosen, label_names=label_names, source=source)


# Where a target column named `labels` goes while its split is encoded (see `encode_splits`).
RAW_TARGET = "__raw_labels__"


def encode_splits(splits: dict, encode: Callable, target_column: str) -> dict:
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
            desc=f"Tokenizing {split}",
        )
    return out


def multi_hot(label_ids: list[list[int]], num_labels: int) -> list[list[float]]:
    """Lists of label ids as 0/1 float rows: the targets of binary cross-entropy."""
    rows = []
    for ids in label_ids:
        row = [0.0] * num_labels
        for i in ids:
            row[i] = 1.0
        rows.append(row)
    return rows


def _rows_text(rows: list[int], values: list) -> str:
    """`1 ('n/a'), 3 (empty)`: the first five rows with their values, and how many more."""
    shown = ", ".join(f"{i} ({'empty' if values[k] is None else repr(values[k])})" for k, i in enumerate(rows[:5]))
    return shown + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def _numeric_targets(dataset, column: str, split: str):
    """The target column as float32; missing, NaN, infinite or non-numeric values are an error naming the rows."""
    import math

    from datasets import Value

    values, bad, bad_values = [], [], []
    for i, value in enumerate(dataset[column]):
        try:
            number = float(value) if not isinstance(value, bool) else float("nan")
        except (TypeError, ValueError):
            number = float("nan")
        if not math.isfinite(number):
            bad.append(i)
            bad_values.append(value)
        values.append(number)
    if bad:
        raise UserError(
            f"{len(bad)} row(s) of the {split} split have a target in column '{column}' that is not a finite number: "
            f"rows {_rows_text(bad, bad_values)}; regression needs one number per row"
        )
    dataset = dataset.remove_columns(column).add_column(column, values)
    return dataset.cast_column(column, Value("float32"))


def load_regression_data(args: DataArguments, seed: int) -> LabelledData:
    """Text (or text pairs) with one float target in `label_column`; a random validation split if none exists.

    `label_names` is the one output, named after the target column (the model's `id2label`).
    """
    inputs = text_columns(args.text_column, args.text_pair_column)
    chosen, source = select_splits(args, [*inputs, ("label_column", args.label_column)], args.label_column)
    for split, dataset in list(chosen.items()):
        for _, column in inputs:
            _check_no_missing(dataset, column, split, "text")
        chosen[split] = _numeric_targets(dataset, args.label_column, split)
    if len(set(chosen["train"][args.label_column])) < 2:
        raise UserError(f"every training target in column '{args.label_column}' is the same; nothing to learn")
    chosen = finish_splits(chosen, args, seed, None)
    return LabelledData(splits=chosen, label_names=[args.label_column], source=source)


def _hold_out_validation(train, args: DataArguments, seed: int, stratify_column: str | None):
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


def _word_list(value) -> list[str]:
    """A list cell stays a list; a string cell (CSV) is split on whitespace."""
    if isinstance(value, str):
        return value.split()
    return [str(v) for v in value] if value is not None else []


def _tag_rows(dataset, column: str) -> list[list[str]]:
    """Tags as names, from a `Sequence(ClassLabel)` of ids, lists of names, or whitespace-separated strings."""
    from datasets import ClassLabel

    feature = getattr(dataset.features[column], "feature", None)
    if isinstance(feature, ClassLabel):
        return [[feature.names[i] for i in row] for row in dataset[column]]
    return [_word_list(row) for row in dataset[column]]


def load_token_data(args: DataArguments, seed: int) -> LabelledData:
    """Sentences as word lists (`tokens_column`) with one BIO tag per word (`tags_column`), checked row by row.

    Tags become ids in `label_names` order: a `Sequence(ClassLabel)` keeps its names (CoNLL-2003's order);
    otherwise `O`, then B-/I- of each entity type found in train. Errors name the row: a word count
    that differs from the tag count, an empty sentence, a tag that breaks BIO, a tag train lacks.
    """
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    from hf_finetune.tags import bio_problem, iob1_to_iob2, tag_label_names

    columns = [("tokens_column", args.tokens_column), ("tags_column", args.tags_column)]
    chosen, source = select_splits(args, columns, args.tags_column)
    rows = {}
    for split, dataset in chosen.items():
        words = [_word_list(v) for v in dataset[args.tokens_column]]
        tags = _tag_rows(dataset, args.tags_column)
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
