"""What a task supplies to the shared training run."""

from __future__ import annotations

from typing import ClassVar


class Task:
    """A task knows its data columns, model class, input encoding and metrics; `training.run` does the rest."""

    name: ClassVar[str]
    summary: ClassVar[str]
    pipeline_tag: ClassVar[str]

    def __init__(self, cfg):
        self.cfg = cfg

    def load_data(self):
        """Validated splits and label names (`data.LabelledData`)."""
        raise NotImplementedError

    def load_processor(self):
        """Tokenizer or image processor; saved with the model."""
        raise NotImplementedError

    def load_model(self, label_names: list[str]):
        """(model with a new head sized to the labels, names of newly initialised weights)."""
        raise NotImplementedError

    def encode(self, data, processor) -> dict:
        """Split name -> model-ready dataset with a `labels` column."""
        raise NotImplementedError

    def data_collator(self, processor):
        raise NotImplementedError

    def compute_metrics(self):
        raise NotImplementedError

    def describe_example(self, example: dict) -> dict:
        """The human-readable input of one raw example, for the misclassified-examples file."""
        raise NotImplementedError
