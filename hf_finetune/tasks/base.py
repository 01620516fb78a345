"""What a task supplies to the shared training run."""

from __future__ import annotations

from typing import ClassVar


class Task:
    """A task knows its data columns, model class, input encoding and metrics; `training.run` does the rest."""

    name: ClassVar[str]
    summary: ClassVar[str]
    pipeline_tag: ClassVar[str]
    # What a user passes to `pipeline(pipeline_tag, model=DIR)`, for the model card's example.
    example_input: ClassVar[str] = '"your text here"'
    # For the model card's adapter example: the Auto class of the task model, and the pipeline
    # argument that takes the processor (the adapter repo holds the tokenizer or image processor).
    auto_model_class: ClassVar[str] = "AutoModelForSequenceClassification"
    processor_argument: ClassVar[str] = "tokenizer"

    def __init__(self, cfg):
        self.cfg = cfg

    def check_model_inputs(self) -> None:
        """The cheap checks of checkpoint (and tokenizer) paths, before any data is loaded."""
        from ..modeling import check_model_inputs

        check_model_inputs(self.cfg.model)

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

    def input_columns(self) -> list[tuple[str, str]]:
        """(kind, column) of the model inputs, e.g. [("text", "review")], for the model card."""
        raise NotImplementedError

    def describe_example(self, example: dict) -> dict:
        """The human-readable input of one raw example, for the misclassified-examples file."""
        raise NotImplementedError
