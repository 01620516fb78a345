"""The notebook API, early stopping and TensorBoard logging, on one short real run."""

import json

import pytest

import hf_finetune

pytestmark = pytest.mark.slow


def test_train_api_stops_early_and_logs_to_tensorboard(tmp_path, fortunes_csv):
    result = hf_finetune.train(
        "fortunes_topics",
        train_file=str(fortunes_csv["train"]),
        text_column="review",
        label_column="topic",
        max_train_samples=64,
        max_eval_samples=32,
        per_device_train_batch_size=8,
        # With a learning rate of 0 the validation metric can never improve, so patience 1 must
        # stop the run at the second evaluation (step 4) instead of max_steps (40).
        learning_rate=0.0,
        max_steps=40,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        early_stopping_patience=1,
        report_to="tensorboard",
        output_dir=str(tmp_path / "api"),
    )
    from hf_finetune.outputs import COMPLETE_MARKER

    assert result.output_dir == tmp_path / "api" and (result.output_dir / COMPLETE_MARKER).is_file()
    state = json.loads((result.output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert set(result.metrics) == {"validation"}  # no test file given
    assert list(result.output_dir.rglob("events.out.tfevents*")), "no TensorBoard event file written"
