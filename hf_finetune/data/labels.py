"""Labels as the model sees them: names in id order, ClassLabel ids, multi-hot rows, tag lists."""

from __future__ import annotations

from hf_finetune.errors import UserError


def single_label_names(train, label_column: str) -> list[str]:
    from datasets import ClassLabel

    feature = train.features[label_column]
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    values = set(train[label_column])
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return [str(v) for v in sorted(values, key=(float if numeric else str))]


def encode_labels(dataset, label_column: str, label_names: list[str], split: str):
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


def split_label_cell(value, separator: str) -> list:
    """One multi-label cell as a list: a list stays, a string is split on the separator."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(separator) if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def multi_label_names(train, label_column: str, separator: str) -> list[str]:
    from datasets import ClassLabel

    feature = getattr(train.features[label_column], "feature", None)
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    values = {str(v) for row in train[label_column] for v in split_label_cell(row, separator)}
    return sorted(values)


def encode_multi_labels(dataset, label_column: str, label_names: list[str], split: str, separator: str):
    """Label lists as lists of ids in the train label order (a `Sequence(ClassLabel)` column)."""
    from datasets import ClassLabel, Sequence

    feature = getattr(dataset.features[label_column], "feature", None)
    names = feature.names if isinstance(feature, ClassLabel) else None
    rows = [[names[v] if names else str(v) for v in split_label_cell(row, separator)] for row in dataset[label_column]]
    unseen = sorted({v for row in rows for v in row} - set(label_names))
    if unseen:
        raise UserError(f"labels in {split} not seen in train: {', '.join(unseen[:10])}")
    label2id = {n: i for i, n in enumerate(label_names)}
    ids = [sorted({label2id[v] for v in row}) for row in rows]
    dataset = dataset.remove_columns(label_column).add_column(label_column, ids)
    return dataset.cast_column(label_column, Sequence(ClassLabel(names=label_names)))


def multi_hot(label_ids: list[list[int]], num_labels: int) -> list[list[float]]:
    """Lists of label ids as 0/1 float rows: the targets of binary cross-entropy."""
    rows = []
    for ids in label_ids:
        row = [0.0] * num_labels
        for i in ids:
            row[i] = 1.0
        rows.append(row)
    return rows


def word_list(value) -> list[str]:
    """A list cell stays a list; a string cell (CSV) is split on whitespace."""
    if isinstance(value, str):
        return value.split()
    return [str(v) for v in value] if value is not None else []


def tag_rows(dataset, column: str) -> list[list[str]]:
    """Tags as names, from a `Sequence(ClassLabel)` of ids, lists of names, or whitespace-separated strings."""
    from datasets import ClassLabel

    feature = getattr(dataset.features[column], "feature", None)
    if isinstance(feature, ClassLabel):
        return [[feature.names[i] for i in row] for row in dataset[column]]
    return [word_list(row) for row in dataset[column]]
