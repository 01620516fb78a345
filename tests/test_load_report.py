"""After `from_pretrained`, only real problems are printed: the new head and an unused pooler are expected
(one info line each), pretrained weights that start random are a warning naming them, and transformers'
own LOAD REPORT table (which lists the expected differences as if they were problems) stays quiet."""

from __future__ import annotations

import logging

import pytest
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from hf_finetune.analysis import conformance
from hf_finetune.modeling.loading import load_classifier
from hf_finetune.settings.arguments import ModelArguments


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def logs():
    """Records of our loggers and transformers', whatever propagation settings earlier tests left."""
    handler = Records()
    loggers = [logging.getLogger("hf_finetune"), logging.getLogger("transformers")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    yield handler.records
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)


@pytest.fixture
def bert_base_dir(tmp_path):
    """A bare BERT encoder with its pooler, as sentence-encoder checkpoints ship (no task head)."""
    AutoModel.from_config(AutoConfig.for_model("bert", **conformance.BY_TYPE["bert"].config)).save_pretrained(tmp_path)
    return tmp_path


def load(folder):
    return load_classifier(
        AutoModelForSequenceClassification, ModelArguments(model_name_or_path=str(folder)), ["a", "b"]
    )


def test_a_new_head_on_an_encoder_prints_no_load_report(bert_base_dir, logs):
    _, new = load(bert_base_dir)
    assert new == ["classifier.bias", "classifier.weight"]
    messages = [r.getMessage() for r in logs]
    assert not [m for m in messages if "LOAD REPORT" in m or "MISSING" in m]
    assert not [r for r in logs if r.levelno >= logging.WARNING and r.name.startswith("hf_finetune")]
    assert any(m.startswith("newly initialised") for m in messages)


def test_missing_pretrained_weights_are_a_warning_naming_them(bert_base_dir, logs):
    weights = load_file(bert_base_dir / "model.safetensors")
    gone = "encoder.layer.1.output.dense.weight"
    save_file({k: v for k, v in weights.items() if k != gone}, bert_base_dir / "model.safetensors", {"format": "pt"})
    load(bert_base_dir)
    warnings = [r.getMessage() for r in logs if r.levelno == logging.WARNING and r.name.startswith("hf_finetune")]
    assert len(warnings) == 1 and f"bert.{gone}" in warnings[0] and "start random" in warnings[0]
