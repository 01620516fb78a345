"""The target domain of DANN: unlabelled rows mixed into training, a labelled target test scored each epoch."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hf_finetune.data.checks import check_no_missing, check_split_inputs
from hf_finetune.data.files import load_raw_splits
from hf_finetune.data.images import ImageChecker, relative_path_bases
from hf_finetune.data.labels import encode_labels
from hf_finetune.data.splits import is_unlabelled, seeded_subset
from hf_finetune.errors import UserError
from hf_finetune.settings.packaged import is_packaged
from hf_finetune.strategies.dann.layers import TARGET_LABEL

# task.input_columns() kinds -> the option that names the column (for error messages).
INPUT_OPTIONS = {"text": "text_column", "pair": "text_pair_column", "image": "image_column"}


@dataclass
class TargetDomain:
    """Raw target-domain splits with the source's columns: `train` unlabelled (label -100), `test` labelled
    with the source's label ids (evaluation only) or None."""

    train: object
    test: object | None
    source: str


def load_target_domain(task, cfg, dataset_name: str | None, train_file: str | None, test_file: str | None,
                       label_names: list[str]) -> TargetDomain:  # fmt: skip
    """The target data through the same readers and input checks as the source data.

    Its `train` split (or `train_file`) gives unlabelled inputs: labels there are dropped, never trained on.
    Its `test` split (or `test_file`), when it has the label column, is scored each epoch and at the end.
    The columns are the source's (`text_column`, `image_column`, `label_column`); `max_train_samples` and
    `max_eval_samples` cap the target splits as they cap the source's.
    """

    data_args = cfg.data
    args = dataclasses.replace(
        data_args, dataset_name=dataset_name, dataset_config_name=None, train_file=train_file,
        validation_file=None, test_file=test_file, train_split="train", validation_split=None, test_split=None,
    )  # fmt: skip
    raw, source = load_raw_splits(args)
    where = f"the dann target data {source}"
    if "train" not in raw:
        raise UserError(f"{where} has no 'train' split (splits: {', '.join(raw)}); it gives the unlabelled inputs")
    inputs = [(INPUT_OPTIONS.get(kind, kind), column) for kind, column in task.input_columns()]
    columns = [column for _, column in inputs]
    seed = cfg.training.seed
    images = any(kind == "image" for kind, _ in task.input_columns())
    checker = None
    if images:
        trusted = not train_file and is_packaged(dataset_name)
        checker = ImageChecker(
            data_args.image_column, relative_path_bases(args), data_args.skip_bad_images, source, trusted
        )

    def checked(dataset, split: str, keep: list[str]):
        missing = [column for column in keep if column not in dataset.column_names]
        if missing:
            raise UserError(
                f"column '{missing[0]}' not found in the {split} split of {where} (columns: "
                f"{', '.join(dataset.column_names)}); the target data needs the source's column names"
            )
        return check_split_inputs(dataset.select_columns(keep), split, inputs, checker)

    train = checked(seeded_subset(raw["train"], data_args.max_train_samples, seed), "train", columns)
    train = train.add_column(data_args.label_column, [TARGET_LABEL] * len(train))
    test, label = raw.get("test"), data_args.label_column
    if test is not None and (label not in test.column_names or is_unlabelled(test, label)):
        test = None  # unlabelled target data: nothing to score; adaptation still runs
    if test is not None:
        test = checked(seeded_subset(test, data_args.max_eval_samples, seed), "test", [*columns, label])
        check_no_missing(test, label, "test", "label")
        test = encode_labels(test, label, label_names, f"the test split of {where}")
    return TargetDomain(train=train, test=test, source=source)


def mix_domains(source_train, target_train):
    """Source training rows (labels as plain ints) followed by the unlabelled target rows, in one Dataset;
    the Trainer's random sampler shuffles them together."""
    from datasets import Value, concatenate_datasets

    features = source_train.features.copy()
    for name, feature in features.items():
        if name in target_train.column_names and getattr(feature, "names", None) is not None:  # ClassLabel
            features[name] = Value("int64")
    source_train = source_train.cast(features)
    target_train = target_train.select_columns(source_train.column_names).cast(features)
    return concatenate_datasets([source_train, target_train])
