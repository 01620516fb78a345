"""Read labelled data: data files, CoNLL files, dataset folders, Hub ids and `packaged:` sets, as splits."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path

from hf_finetune.assets.catalogue import load_packaged_dataset
from hf_finetune.errors import UserError, first_line
from hf_finetune.settings.arguments import DataArguments, looks_like_local_path
from hf_finetune.settings.packaged import is_packaged

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
    return dict(load_dataset_folder_or_hub(name, config_name))


def load_dataset_folder_or_hub(name: str, config_name: str | None):
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
