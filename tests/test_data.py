"""Loading every supported source with custom column names, label inference and the split."""

import json
from collections import Counter

import pandas as pd
import pytest
from datasets import ClassLabel, Dataset, DatasetDict

from hf_finetune.data.splits import load_labelled_data
from hf_finetune.errors import UserError
from hf_finetune.settings.arguments import DataArguments

ROWS = [
    ("great film, would watch again", "pos"),
    ("dull and far too long", "neg"),
    ("a fine cast", "pos"),
    ("I want my money back", "neg"),
    ("beautiful photography", "pos"),
    ("the plot makes no sense", "neg"),
] * 10


def frame() -> pd.DataFrame:
    return pd.DataFrame({"review": [r[0] for r in ROWS], "sentiment": [r[1] for r in ROWS], "extra": 1})


def write(tmp_path, suffix: str):
    path = tmp_path / f"reviews{suffix}"
    df = frame()
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".tsv":
        df.to_csv(path, sep="\t", index=False)
    elif suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    elif suffix == ".json":  # a top-level JSON array of records
        path.write_text(json.dumps(df.to_dict(orient="records")), encoding="utf-8")
    elif suffix == ".parquet":
        df.to_parquet(path)
    return path


def args(**kwargs) -> DataArguments:
    return DataArguments(**{"text_column": "review", "label_column": "sentiment", **kwargs})


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_every_file_format_with_custom_columns(tmp_path, suffix):
    data = load_labelled_data(args(train_file=str(write(tmp_path, suffix))), seed=0)
    assert data.label_names == ["neg", "pos"]  # sorted unique values
    assert set(data.splits) == {"train", "validation"}
    train = data.splits["train"]
    assert train.column_names == ["review", "sentiment"]  # other columns dropped
    assert isinstance(train.features["sentiment"], ClassLabel)
    assert len(train) + len(data.splits["validation"]) == len(ROWS)
    i = train["review"].index("dull and far too long")
    assert data.label_names[train["sentiment"][i]] == "neg"


def test_local_folder_goes_through_load_dataset_like_a_hub_id(tmp_path):
    folder = tmp_path / "my_dataset"
    folder.mkdir()
    frame().iloc[:48].to_csv(folder / "train.csv", index=False)
    frame().iloc[48:].to_csv(folder / "test.csv", index=False)
    data = load_labelled_data(args(dataset_name=str(folder)), seed=0)
    assert set(data.splits) == {"train", "validation", "test"}
    assert len(data.splits["test"]) == 12


def test_save_to_disk_folder_keeps_classlabel_names(tmp_path):
    features = {"review": [r[0] for r in ROWS], "sentiment": [int(r[1] == "pos") for r in ROWS]}
    ds = Dataset.from_dict(features).cast_column("sentiment", ClassLabel(names=["negative", "positive"]))
    DatasetDict({"train": ds, "validation": ds.select(range(6))}).save_to_disk(tmp_path / "saved")
    data = load_labelled_data(args(dataset_name=str(tmp_path / "saved")), seed=0)
    assert data.label_names == ["negative", "positive"]  # from the ClassLabel, not re-sorted
    assert len(data.splits["validation"]) == 6


def test_numeric_labels_sort_numerically(tmp_path):
    df = pd.DataFrame({"review": [f"text {i}" for i in range(30)], "sentiment": [10, 2, 1] * 10})
    df.to_csv(tmp_path / "n.csv", index=False)
    data = load_labelled_data(args(train_file=str(tmp_path / "n.csv")), seed=0)
    assert data.label_names == ["1", "2", "10"]


def test_validation_split_is_stratified_and_seeded(fortunes):
    data_args = DataArguments(dataset_name="packaged:fortunes-topics", validation_size=0.2)
    a = load_labelled_data(data_args, seed=1)
    b = load_labelled_data(data_args, seed=1)
    c = load_labelled_data(data_args, seed=2)
    assert a.splits["validation"]["text"] == b.splits["validation"]["text"]
    assert a.splits["validation"]["text"] != c.splits["validation"]["text"]
    full = Counter(fortunes["train"]["label"])
    held_out = Counter(a.splits["validation"]["label"])
    n = len(a.splits["validation"])
    for label, count in full.items():  # each class keeps its share, to within one row
        assert abs(held_out[label] - n * count / len(fortunes["train"])) <= 1


def test_labels_unseen_in_train_are_an_error(tmp_path):
    frame().to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"review": ["meh"], "sentiment": ["mixed"]}).to_csv(tmp_path / "val.csv", index=False)
    with pytest.raises(UserError, match="not seen in train: mixed"):
        load_labelled_data(args(train_file=str(tmp_path / "train.csv"), validation_file=str(tmp_path / "val.csv")), 0)


def test_unlabelled_test_split_is_skipped(tmp_path):
    folder = tmp_path / "glue_like"
    folder.mkdir()
    df = pd.DataFrame({"review": [r[0] for r in ROWS], "sentiment": [int(r[1] == "pos") for r in ROWS]})
    df.to_csv(folder / "train.csv", index=False)
    df.assign(sentiment=-1).to_csv(folder / "test.csv", index=False)  # GLUE: test labels are hidden
    data = load_labelled_data(args(dataset_name=str(folder)), seed=0)
    assert "test" not in data.splits


def test_max_samples_take_seeded_subsets(tmp_path):
    data = load_labelled_data(
        args(train_file=str(write(tmp_path, ".csv")), max_train_samples=10, max_eval_samples=3), 0
    )
    assert len(data.splits["train"]) == 10 and len(data.splits["validation"]) == 3


def test_sentence_pair_column_is_kept(tmp_path):
    df = frame().assign(hypothesis=lambda d: d["review"].str.upper())
    df.to_csv(tmp_path / "pairs.csv", index=False)
    data = load_labelled_data(args(train_file=str(tmp_path / "pairs.csv"), text_pair_column="hypothesis"), 0)
    assert set(data.splits["train"].column_names) == {"review", "hypothesis", "sentiment"}
