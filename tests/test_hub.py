"""Pushing to the Hub, with only `HfApi` replaced (at `hf_finetune.training.hub.HfApi`): the Hub cannot be reached here.

The fake records every call and, inside `upload_folder`, reads the folder that would be uploaded
(the staged folder is removed after a real push). Models are real: the session's fine-tuned
MiniLM (`trained_run`), a short LoRA run, and short runs with `push_to_hub: true` and a fake token.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
from conftest import csv_recipe_args, read_json, run_cli

from hf_finetune.cli import main
from hf_finetune.training.record import METRIC_IDS

FAKE_TOKEN = "hf_FakeTokenQx7Vb2Zp9Lm4Kd8Wr3Ty6Nc1Hs5"
REPO = "me/fortunes-topics"
TOPICS = {"computers", "politics", "science", "songs-poems"}
# What a user of a full fine-tune needs; nothing that quotes the data, no checkpoints, no pickles.
FULL_MODEL_FILES = [
    "README.md",
    "all_results.json",
    "config.json",
    "confusion_matrix.json",
    "confusion_matrix.png",
    "eval_results.json",
    "loss_curves.png",
    "metrics.json",
    "model.safetensors",
    "run_config.yaml",
    "test_results.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "train_results.json",
]
SHORT = ["--max_train_samples", "64", "--max_eval_samples", "32", "--max_steps", "4", "--eval_strategy", "no",
         "--load_best_model_at_end", "false"]  # fmt: skip


class FakeHub:
    """Stands in for the Hub behind `HfApi`: records calls; `existing` maps repo id -> private."""

    def __init__(self, refuse_construction: bool = False):
        self.calls: list[tuple[str, dict]] = []
        self.uploads: list[dict] = []
        self.existing: dict[str, bool] = {}
        hub = self

        class FakeHfApi:
            def __init__(self, token=None, **kwargs):
                if refuse_construction:
                    raise AssertionError("HfApi must not be constructed here")
                hub.calls.append(("init", {"token": token, **kwargs}))

            def create_repo(self, repo_id, *, private=None, exist_ok=False, **kwargs):
                hub.calls.append(("create_repo", {"repo_id": repo_id, "private": private, "exist_ok": exist_ok}))
                hub.existing.setdefault(repo_id, bool(private))
                return f"https://huggingface.co/{repo_id}"

            def repo_info(self, repo_id, **kwargs):
                hub.calls.append(("repo_info", {"repo_id": repo_id, **kwargs}))
                return SimpleNamespace(id=repo_id, private=hub.existing[repo_id])

            def create_branch(self, repo_id, *, branch, exist_ok=False, **kwargs):
                hub.calls.append(("create_branch", {"repo_id": repo_id, "branch": branch, "exist_ok": exist_ok}))

            def upload_folder(self, *, folder_path, repo_id, revision=None, commit_message=None, **kwargs):
                folder = Path(folder_path)
                hub.calls.append(("upload_folder", {"repo_id": repo_id, "revision": revision}))
                hub.uploads.append(
                    {
                        "repo_id": repo_id,
                        "revision": revision,
                        "commit_message": commit_message,
                        "folder": folder,
                        "files": sorted(str(p.relative_to(folder)) for p in folder.rglob("*")),
                        "card": (folder / "README.md").read_text(encoding="utf-8"),
                        "extra": kwargs,
                    }
                )

        self.api = FakeHfApi

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def call(self, name: str) -> dict:
        (found,) = [kwargs for n, kwargs in self.calls if n == name]
        return found


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    """No token anywhere: environment or login file."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))


@pytest.fixture
def fake_hub(monkeypatch, no_token) -> FakeHub:
    """The fake Hub, and a fake token in the environment as `hf auth login` users have one."""
    hub = FakeHub()
    monkeypatch.setattr("hf_finetune.training.hub.HfApi", hub.api)
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    return hub


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def main_metric_message(run: Path) -> str:
    test = read_json(run / "metrics.json")["metrics"]["test"]
    return f"hf-finetune: full fine-tune, test macro_f1 {test['macro_f1']:.4f}"


def run_card_snippet(card_text: str, replacements: dict[str, str]) -> object:
    """Execute the card's Python usage example (its last code block), with Hub ids mapped to local folders."""
    code = re.findall(r"```python\n(.*?)```", card_text, flags=re.S)[-1]
    for hub_id, local in replacements.items():
        code = code.replace(f'"{hub_id}"', repr(local))
    last = code.strip().splitlines()[-1]
    namespace: dict = {}
    exec("\n".join(code.strip().splitlines()[:-1]) + f"\n_result = {last}", namespace)  # noqa: S102
    return namespace["_result"]


# --- hf-finetune push on the session's fine-tuned MiniLM ---


@pytest.mark.slow
def test_push_uploads_exactly_the_model_files_private_by_default(trained_run, fake_hub, capsys):
    local_card = (trained_run / "README.md").read_text()
    code, out, err = run_cli(["push", "--model", str(trained_run), "--repo-id", REPO, "--revision", "v1"], capsys)
    assert code == 0, err
    assert fake_hub.names() == ["init", "create_repo", "repo_info", "create_branch", "upload_folder"]
    assert fake_hub.call("init") == {"token": None}  # HfApi reads HF_TOKEN / the login itself
    assert fake_hub.call("create_repo") == {"repo_id": REPO, "private": True, "exist_ok": True}
    assert fake_hub.call("create_branch") == {"repo_id": REPO, "branch": "v1", "exist_ok": True}
    (upload,) = fake_hub.uploads
    assert upload["repo_id"] == REPO and upload["revision"] == "v1"
    assert upload["commit_message"] == main_metric_message(trained_run)
    assert upload["files"] == FULL_MODEL_FILES
    assert f'model="{REPO}"' in upload["card"]
    assert not upload["folder"].exists()  # staging removed after the push
    assert (trained_run / "README.md").read_text() == local_card  # the output folder is left as it was
    assert f"https://huggingface.co/{REPO}/tree/v1" in out and "(private)" in out


@pytest.mark.slow
def test_push_token_flag_reaches_hfapi_and_is_uploaded_nowhere(trained_run, monkeypatch, no_token, capsys):
    hub = FakeHub()
    monkeypatch.setattr("hf_finetune.training.hub.HfApi", hub.api)
    code, _, err = run_cli(["push", "--model", str(trained_run), "--repo_id", REPO, "--token", FAKE_TOKEN], capsys)
    assert code == 0, err
    assert hub.call("init") == {"token": FAKE_TOKEN}  # no HF_TOKEN, no login: only the flag could give it
    (upload,) = hub.uploads
    assert FAKE_TOKEN not in upload["card"] and FAKE_TOKEN not in err


@pytest.mark.slow
def test_public_push_of_a_model_trained_on_local_files_needs_the_override(trained_run, fake_hub, capsys):
    code, _, err = run_cli(["push", "--model", str(trained_run), "--repo-id", REPO, "--public"], capsys)
    assert_one_line_error(code, err, "private data", "--allow-private-data-public")
    assert fake_hub.calls == []

    argv = ["push", "--model", str(trained_run), "--repo_id", REPO, "--public", "--allow_private_data_public",
            "--commit-message", "first public release"]  # fmt: skip
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    assert fake_hub.call("create_repo")["private"] is False
    assert "create_branch" not in fake_hub.names()
    (upload,) = fake_hub.uploads
    assert upload["commit_message"] == "first public release" and upload["revision"] is None


@pytest.mark.slow
@pytest.mark.parametrize("existing_private,flag", [(False, None), (True, "--public")])
def test_existing_repo_with_other_visibility_is_refused(trained_run, fake_hub, capsys, existing_private, flag):
    fake_hub.existing[REPO] = existing_private
    argv = ["push", "--model", str(trained_run), "--repo-id", REPO, "--allow-private-data-public"]
    code, _, err = run_cli(argv + ([flag] if flag else []), capsys)
    have = "private" if existing_private else "public"
    assert_one_line_error(code, err, f"already exists and is {have}")
    assert "upload_folder" not in fake_hub.names()


@pytest.mark.slow
def test_dry_run_lists_the_folder_without_token_or_hfapi(trained_run, monkeypatch, no_token, capsys):
    monkeypatch.setattr("hf_finetune.training.hub.HfApi", FakeHub(refuse_construction=True).api)
    code, out, err = run_cli(["push", "--model", str(trained_run), "--repo-id", REPO, "--dry-run"], capsys)
    assert code == 0, err
    staged = Path(re.search(r"staged folder \(kept for inspection\): (\S+)", out).group(1))
    try:
        assert sorted(p.name for p in staged.iterdir()) == FULL_MODEL_FILES
        listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
        assert listed == FULL_MODEL_FILES
        assert "MB" in out and "(private)" in out and main_metric_message(trained_run) in out
    finally:
        import shutil

        shutil.rmtree(staged)


@pytest.mark.slow
def test_regenerated_card_metadata_matches_metrics_and_its_example_runs(trained_run):
    from huggingface_hub import ModelCard

    from hf_finetune.training.hub import stage_upload

    staged = stage_upload(trained_run, REPO)
    try:
        card = ModelCard.load(staged / "README.md")
        assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
        assert card.data.library_name == "transformers"
        assert card.data.pipeline_tag == "text-classification"
        assert "strategy-full" in card.data.tags
        metrics = read_json(trained_run / "metrics.json")["metrics"]
        reported = {(r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results}
        expected = {  # metric types as `evaluate` ids (`macro_f1` is `f1` with average macro)
            (split, METRIC_IDS[key][0]): round(values[key], 4)
            for split, values in metrics.items()
            for key in ("accuracy", "macro_f1", "macro_precision", "macro_recall")
        }
        assert reported == expected
        assert f'pipeline("text-classification", model="{REPO}")' in card.text
        assert re.search(r"Hardware: 1 process on (CPU \(\d+ cores\)|.+), (fp32|bf16|fp16)", card.text)
        assert "Trainable parameters: 22,714,756" in card.text and "Examples: train " in card.text
        result = run_card_snippet(card.text, {REPO: str(staged)})
        assert result[0]["label"] in TOPICS
    finally:
        import shutil

        shutil.rmtree(staged)


@pytest.mark.slow
def test_adapter_run_is_pushed_as_peft_with_a_working_example(fortunes_csv, minilm_dir, tmp_path):
    from huggingface_hub import ModelCard

    from hf_finetune.training.hub import stage_upload

    out = tmp_path / "lora"
    argv = ["train", *csv_recipe_args(fortunes_csv["train"]), "--strategy", "lora", "--save_strategy", "no",
            "--output_dir", str(out), *SHORT]  # fmt: skip
    assert main(argv) == 0
    staged = stage_upload(out, "me/fortunes-lora")
    try:
        names = sorted(p.name for p in staged.iterdir())
        assert {"adapter_model.safetensors", "adapter_config.json", "config.json", "tokenizer.json"} <= set(names)
        assert "model.safetensors" not in names
        card = ModelCard.load(staged / "README.md")
        assert card.data.library_name == "peft"
        assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
        assert "strategy-lora" in card.data.tags
        assert "PeftModel.from_pretrained" in card.text and "hf download me/fortunes-lora" in card.text
        # The peft example, with the Hub ids pointed at the staged folder and the packaged base checkpoint.
        peft_code = re.findall(r"```python\n(.*?)```", card.text, flags=re.S)[0]
        replacements = {"me/fortunes-lora": str(staged), "sentence-transformers/all-MiniLM-L6-v2": minilm_dir}
        result = run_card_snippet(f"```python\n{peft_code}```", replacements)
        assert result[0]["label"] in TOPICS
    finally:
        import shutil

        shutil.rmtree(staged)


# --- push_to_hub: true in a training run ---


@pytest.mark.slow
@pytest.mark.parametrize("token_from", ["environment", "hub_token"])
def test_push_to_hub_pushes_once_and_the_token_is_written_nowhere(
    fortunes_csv, tmp_path, monkeypatch, no_token, capfd, token_from
):
    hub = FakeHub()
    monkeypatch.setattr("hf_finetune.training.hub.HfApi", hub.api)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # tests run offline; the fake is the Hub
    if token_from == "environment":
        monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    out = tmp_path / "pushed"
    argv = ["train", *csv_recipe_args(fortunes_csv["train"]), "--output_dir", str(out), *SHORT,
            "--save_strategy", "steps", "--save_steps", "2", "--logging_steps", "2", "--report_to", "tensorboard",
            "--push_to_hub", "true", "--hub_model_id", "me/fortunes-pushed", "--hub_revision", "exp1"]  # fmt: skip
    if token_from == "hub_token":
        argv += ["--hub_token", FAKE_TOKEN]
    assert main(argv) == 0
    captured = capfd.readouterr()

    assert hub.names() == ["init", "create_repo", "repo_info", "create_branch", "upload_folder"]  # once, at the end
    assert hub.call("init") == {"token": FAKE_TOKEN if token_from == "hub_token" else None}
    assert hub.call("create_repo")["private"] is True
    (upload,) = hub.uploads
    assert upload["repo_id"] == "me/fortunes-pushed" and upload["revision"] == "exp1"
    assert upload["files"] == [f for f in FULL_MODEL_FILES if f != "test_results.json"]  # this run has no test split

    recipe = (out / "run_config.yaml").read_text()
    assert "push_to_hub: true" in recipe and "hub_model_id: me/fortunes-pushed" in recipe
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {str(p.relative_to(out)) for p in files}
    # The scan must cover the places a token would land: pickled args in checkpoints, TensorBoard logs.
    assert "checkpoint-4/training_args.bin" in names and "checkpoint-4/trainer_state.json" in names
    assert any(name.startswith("runs/") for name in names)
    secret = FAKE_TOKEN.encode()
    leaked = [str(p.relative_to(out)) for p in files if secret in p.read_bytes()]
    assert leaked == []
    assert FAKE_TOKEN not in captured.out and FAKE_TOKEN not in captured.err
    assert "https://huggingface.co/me/fortunes-pushed/tree/exp1" in captured.out


def test_the_token_scan_would_find_a_pickled_token():
    """A positive control: TrainingArguments pickled with a token hold it as plain bytes."""
    import torch
    from transformers import TrainingArguments

    buffer = io.BytesIO()
    torch.save(TrainingArguments(output_dir="x", hub_token=FAKE_TOKEN, report_to="none"), buffer)
    assert FAKE_TOKEN.encode() in buffer.getvalue()


@pytest.mark.parametrize(
    "extra,offline,message",
    [
        ([], False, "hub_model_id is not set"),
        (["--hub_model_id", "fortunes"], False, "hub_model_id must be `namespace/name`"),
        (["--hub_model_id", "me/fortunes"], False, "needs a token"),
        (["--hub_model_id", "me/fortunes"], True, "HF_HUB_OFFLINE is set"),
        (["--hub_model_id", "me/fortunes", "--hub_private_repo", "false", "--hub_token", FAKE_TOKEN], False,
         "training data is private"),
    ],
)  # fmt: skip
def test_push_to_hub_bad_input_exits_2_before_any_output(
    fortunes_csv, tmp_path, monkeypatch, no_token, capsys, extra, offline, message
):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr("hf_finetune.training.hub.HfApi", FakeHub(refuse_construction=True).api)
    out = tmp_path / "never"
    argv = ["train", *csv_recipe_args(fortunes_csv["train"]), "--output_dir", str(out), "--push_to_hub", "true"]
    code, _, err = run_cli(argv + extra, capsys)
    assert_one_line_error(code, err, message)
    assert FAKE_TOKEN not in err
    assert not out.exists()


# --- hf-finetune push: bad input ---


@pytest.mark.parametrize("repo_id", ["fortunes", "me/fortunes/extra", "me/bad..name", "me/", "/fortunes"])
def test_push_refuses_a_malformed_repo_id(tmp_path, monkeypatch, capsys, repo_id):
    monkeypatch.setattr("hf_finetune.training.hub.HfApi", FakeHub(refuse_construction=True).api)
    code, _, err = run_cli(["push", "--model", str(tmp_path), "--repo-id", repo_id], capsys)
    assert_one_line_error(code, err, "repo")


def test_push_refuses_a_folder_that_is_not_a_finished_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("hf_finetune.training.hub.HfApi", FakeHub(refuse_construction=True).api)
    (tmp_path / "model.safetensors").write_bytes(b"")
    code, _, err = run_cli(["push", "--model", str(tmp_path), "--repo-id", REPO, "--dry-run"], capsys)
    assert_one_line_error(code, err, "not a finished run")
    code, _, err = run_cli(["push", "--model", str(tmp_path / "missing"), "--repo-id", REPO], capsys)
    assert_one_line_error(code, err, "does not exist")
    code, _, err = run_cli(["push", "--model", str(tmp_path), "--repo-id", REPO, "--private", "--public"], capsys)
    assert_one_line_error(code, err, "not allowed with argument")


def test_push_needs_a_token_before_anything_is_staged(tmp_path, monkeypatch, no_token, capsys):
    monkeypatch.setattr("hf_finetune.training.hub.HfApi", FakeHub(refuse_construction=True).api)
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "run_complete.json").write_text(json.dumps({}))
    recipe = {"model_name_or_path": "packaged:all-MiniLM-L6-v2", "dataset_name": "packaged:fortunes-topics"}
    (folder / "run_config.yaml").write_text(json.dumps(recipe))  # JSON is YAML
    code, _, err = run_cli(["push", "--model", str(folder), "--repo-id", REPO], capsys)
    assert_one_line_error(code, err, "hf auth login", "HF_TOKEN")
