"""Checks of columns and values that run before any model loads: a wrong column costs seconds, not a crashed run."""

from __future__ import annotations

from collections.abc import Callable

from hf_finetune.errors import UserError


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


def is_missing(value) -> bool:
    """Null, blank, or a float NaN (pandas' missing value, which a JSON file can also hold)."""
    return (
        value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, float) and value != value)
    )


def check_no_missing(dataset, column: str, split: str, kind: str) -> None:
    bad = [i for i, v in enumerate(dataset[column]) if is_missing(v)]
    if bad:
        rows = ", ".join(str(i) for i in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise UserError(
            f"{len(bad)} row(s) of the {split} split have an empty {kind} in column '{column}' (rows {rows}; "
            "blank, null or NaN); remove or fill them"
        )


def check_text(dataset, column: str, split: str, option: str) -> None:
    """A text column of numbers (often the wrong column) would fail inside the tokenizer with a traceback."""
    feature = dataset.features[column]
    if getattr(feature, "dtype", None) not in ("string", "large_string"):
        kind = f"{feature.dtype} values" if hasattr(feature, "dtype") else repr(feature)
        raise UserError(
            f"column '{column}' of the {split} split holds {kind}, not text; set --{option} to the column with the text"
        )


def check_single_label(train, label_column: str) -> None:
    """A column of lists is multi-label data: say which option reads it, rather than failing on hashing."""
    feature = train.features[label_column]
    if hasattr(feature, "feature"):  # datasets' List/Sequence feature
        raise UserError(f"label column '{label_column}' holds lists of labels: pass --multi_label true to use them")


def check_split_inputs(dataset, split: str, inputs: list[tuple[str, str]], check_inputs: Callable | None = None):
    """The model-input checks of one split: no empty texts and text-typed columns, or `check_inputs(split,
    dataset) -> dataset` for other kinds of input (images: decoded and checked once; it may drop rows)."""
    if check_inputs is not None:
        return check_inputs(split, dataset)
    for option, column in inputs:
        check_no_missing(dataset, column, split, "text")
        check_text(dataset, column, split, option)
    return dataset


def rows_text(rows: list[int], values: list) -> str:
    """`1 ('n/a'), 3 (empty)`: the first five rows with their values, and how many more."""
    shown = ", ".join(f"{i} ({'empty' if values[k] is None else repr(values[k])})" for k, i in enumerate(rows[:5]))
    return shown + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def numeric_targets(dataset, column: str, split: str):
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
            f"rows {rows_text(bad, bad_values)}; regression needs one number per row"
        )
    dataset = dataset.remove_columns(column).add_column(column, values)
    return dataset.cast_column(column, Value("float32"))
