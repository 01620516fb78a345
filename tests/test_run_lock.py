"""One run per output folder: the lock is a real OS lock held by a real second process.

The holder is a separate Python process (an flock is per open file, so another process is
what a second `train` really is); SIGKILL on it is what a preempted machine does.
"""

import json
import os
import signal
import sys
from types import SimpleNamespace

import pytest
from conftest import csv_recipe_args, run_cli

from hf_finetune.errors import UserError
from hf_finetune.training.run_lock import RunLock, check_not_in_use, lock_output_dir, lock_paths, shown_command

ONE_PROCESS = SimpleNamespace(is_main_process=True, num_processes=1)


def test_a_second_train_into_a_held_folder_is_refused_in_one_line_and_writes_nothing(holder, tmp_path, capsys):
    process, out = holder
    train_file = tmp_path / "train.csv"
    train_file.write_text("review,topic\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(20)))
    code, _, err = run_cli(["train", *csv_recipe_args(train_file), "--output_dir", str(out)], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and "in use by another run" in lines[-1]
    assert f"process {process.pid}" in lines[-1]  # who holds it
    assert "Traceback" not in err
    assert not out.exists()


def test_the_lock_taken_after_the_checks_refuses_even_when_the_probe_passed(holder):
    # A run that started before the holder and passed its probe still meets the real lock.
    _, out = holder
    with pytest.raises(UserError, match="in use by another run"):
        lock_output_dir(out, ONE_PROCESS)


def test_a_lock_left_by_a_killed_run_is_taken_over(holder, caplog):
    process, out = holder
    process.send_signal(signal.SIGKILL)
    process.wait()
    lock_file, note = lock_paths(out)
    assert lock_file.is_file() and json.loads(note.read_text())["pid"] == process.pid  # what the killed run left
    check_not_in_use(out, ONE_PROCESS)  # the probe passes: the OS released the dead process's lock
    with caplog.at_level("INFO", logger="hf_finetune"):
        taken = lock_output_dir(out, ONE_PROCESS)
    try:
        assert "stopped without releasing it" in caplog.text and str(process.pid) in caplog.text
        assert json.loads(note.read_text())["pid"] == os.getpid()
        with pytest.raises(UserError, match="in use by another run"):  # and now we hold it
            RunLock(out).acquire()
    finally:
        taken.release()
    assert not note.exists() and lock_file.is_file()  # released: the note goes, the lock file stays
    RunLock(out).acquire()  # free again


def test_the_probe_creates_nothing_for_a_new_folder(tmp_path):
    out = tmp_path / "new" / "model"
    check_not_in_use(out, ONE_PROCESS)
    assert not (tmp_path / "new").exists()


def test_the_holder_note_never_shows_a_token(monkeypatch):
    monkeypatch.setattr(
        sys, "argv", ["hf-finetune", "train", "--hub_token", "hf_Secret1", "--hub-token=hf_Secret2", "--x", "1"]
    )
    shown = shown_command()
    assert "hf_Secret" not in shown and shown.endswith("--hub_token *** --hub-token=*** --x 1")
