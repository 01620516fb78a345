"""Push a finished output folder to the Hugging Face Hub.

One job: take the folder a finished run left, stage what a user of the model needs (with
the model card regenerated for the repo), and upload it with `HfApi`. Both
`hf-finetune push` and `push_to_hub: true` in a recipe come here; the Trainer never
pushes by itself (it would create the repo when it starts and upload its own card and
every checkpoint).

Rules:
- Private by default. A repo that already exists with another visibility is refused
  rather than silently kept: `TrainingArguments.hub_private_repo` only applies when the
  repo is created (transformers#25219), so "private" could otherwise push into a public repo.
- A model trained on private data (`data_private`, by default true for local files) goes to
  a public repo only when asked explicitly (`--allow-private-data-public`): weights can
  memorise training examples.
- The token comes from the environment (`HF_TOKEN`), the standard login (`hf auth login`)
  or `hub_token`; it is passed to `HfApi` and nowhere else (no file, log or card).

`HfApi` is imported at module level: it is the one seam tests replace.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import HfApi

from hf_finetune.errors import UserError, first_line
from hf_finetune.outputs import METRICS, RUN_CONFIG, is_finished
from hf_finetune.recipes import config_from_dict, load_recipe
from hf_finetune.tasks import TASKS
from hf_finetune.training.model_card import build_model_card

logger = logging.getLogger("hf_finetune")

# `namespace/name`: we always ask for the namespace, so no network call is needed to guess it.
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
# What a user of the model needs, by exact name (see `uploaded_names` for why an allowlist).
UPLOADED_FILES = (
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "adapter_model.safetensors",
    "adapter_config.json",
    RUN_CONFIG,
    METRICS,
    "confusion_matrix.json",
    "confusion_matrix.png",
    "loss_curves.png",
    "predictions_scatter.png",  # regression
    # The example scripts' results files (`Trainer.save_metrics`): tools that read Hub repos look for them.
    "all_results.json",
    "train_results.json",
    "eval_results.json",
    "test_results.json",
)
SHARDED_WEIGHTS = re.compile(r"^model-\d+-of-\d+\.safetensors$")
# Tokenizer and image-processor files, whose names vary by model family.
PROCESSOR_PREFIXES = (
    "tokenizer",
    "vocab",
    "merges",
    "special_tokens",
    "added_tokens",
    "preprocessor",
    "processor_config",
    "image_processor",
)
PROCESSOR_SUFFIXES = (".model",)  # sentencepiece
CARD = "README.md"


@dataclass
class HubPush:
    """A recipe's push settings (`push_to_hub`, `hub_model_id`, ...), captured before the Trainer sees them."""

    repo_id: str
    private: bool
    revision: str | None
    token: str | None = field(default=None, repr=False)  # only an explicit `hub_token`; None: HfApi finds it


def check_repo_id(repo_id: str | None, option: str = "--repo-id") -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not repo_id or not REPO_ID.match(repo_id):
        raise UserError(
            f"{option} must be `namespace/name` (your user or organisation, a slash, the repo name), got '{repo_id}'"
        )
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise UserError(f"{option} '{repo_id}' is not a valid repo id: {first_line(exc)}") from None
    return repo_id


def require_token(explicit: str | None = None, hint: str = "") -> None:
    """A write token must exist before anything is staged or sent. The value is never returned or shown."""
    from huggingface_hub import get_token

    if explicit or get_token():
        return
    raise UserError(f"pushing to the Hub needs a token with write access: run `hf auth login` or set HF_TOKEN{hint}")


def push_settings(cfg) -> HubPush | None:
    """Check a recipe's push settings before any work (None when `push_to_hub` is off)."""
    args = cfg.training
    if not args.push_to_hub:
        return None
    if not args.hub_model_id:
        raise UserError("push_to_hub is on but hub_model_id is not set: pass --hub_model_id user/name")
    check_repo_id(args.hub_model_id, option="hub_model_id")
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise UserError(
            "push_to_hub needs the Hub, but HF_HUB_OFFLINE is set; unset it or push later with `hf-finetune push`"
        )
    require_token(args.hub_token, hint=" (or pass --hub_token)")
    private = True if args.hub_private_repo is None else args.hub_private_repo
    if not private and cfg.data.data_private:
        raise UserError(
            f"hub_private_repo is false but the training data is private ({data_source(cfg)}); set "
            "data_private: false if it may be published, or leave hub_private_repo unset (private)"
        )
    return HubPush(repo_id=args.hub_model_id, private=private, revision=args.hub_revision, token=args.hub_token)


def keep_trainer_from_pushing(args) -> None:
    """The Trainer sees `push_to_hub` off (we push once, at the end) and no token, so no checkpoint's
    pickled `training_args.bin` holds it. Call after `run_config.yaml` is written: it records the intent."""
    args.push_to_hub = False
    args.hub_token = None


def data_source(cfg) -> str:
    return cfg.data.train_file or cfg.data.dataset_name


def finished_run(model_dir: str | Path) -> Path:
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        raise UserError(f"model folder {model_dir} does not exist")
    if not is_finished(folder):
        raise UserError(
            f"{model_dir} is not a finished run (no run_complete.json): push the output_dir of a run that completed"
        )
    return folder


def load_run_config(folder: Path):
    """The run's resolved configuration, read back as a recipe."""

    path = folder / RUN_CONFIG
    if not path.is_file():
        raise UserError(f"{folder} has no {RUN_CONFIG}; it was not written by hf-finetune")
    try:
        # Runs written before the example scripts' switches were fixed on recorded `do_train: false` etc.,
        # which never changed what they did: a finished run's record is read without them.
        values = {k: v for k, v in load_recipe(path).items() if k not in ("do_train", "do_eval", "do_predict")}
        return config_from_dict(values)
    except UserError as exc:
        raise UserError(f"cannot read {path} back as a recipe: {exc}") from None


def uploaded_names(folder: Path) -> list[str]:
    """The files of an output folder that go to the Hub: an allowlist, not a denylist.

    An output folder also holds what must not be published or is of no use to a model's users:
    `misclassified.jsonl` and `skipped_images.txt` quote the data or its paths (which may be
    private), `checkpoint-*` folders, `trainer_state.json`, `training_args.bin` (a pickle),
    `run_complete.json` and TensorBoard `runs/`. Listing what goes, rather than what does not,
    keeps a file added to the outputs later out of the upload until someone decides it belongs.
    """
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file()
        and (
            p.name in UPLOADED_FILES
            or SHARDED_WEIGHTS.match(p.name)
            or p.name.startswith(PROCESSOR_PREFIXES)
            or p.suffix in PROCESSOR_SUFFIXES
        )
    )


def stage_upload(model_dir: str | Path, repo_id: str) -> Path:
    """A fresh folder holding exactly what is uploaded, with the model card regenerated for `repo_id`.

    Files are hard-linked where the file system allows (weights can be gigabytes), else copied;
    the output folder itself is never changed. The caller removes the staged folder.
    """
    folder = finished_run(model_dir)
    cfg = load_run_config(folder)
    card = build_card(folder, cfg, repo_id)
    staged = Path(tempfile.mkdtemp(prefix=f"hf-finetune-push-{repo_id.split('/')[-1]}-"))
    for name in uploaded_names(folder):
        try:
            os.link(folder / name, staged / name)
        except OSError:
            shutil.copy2(folder / name, staged / name)
    card.save(staged / CARD)
    return staged


def build_card(folder: Path, cfg, repo_id: str):

    summary = json.loads((folder / METRICS).read_text(encoding="utf-8"))
    return build_model_card(cfg, TASKS.get(cfg.run.task)(cfg), summary, repo_id=repo_id)


def default_commit_message(folder: Path, cfg) -> str:
    """Names the strategy and the main metric: `hf-finetune: lora fine-tune, test macro_f1 0.8490`."""
    metrics = json.loads((folder / METRICS).read_text(encoding="utf-8")).get("metrics", {})
    split = "test" if "test" in metrics else "validation"
    scores = metrics.get(split, {})
    key = (cfg.training.metric_for_best_model or "").removeprefix("eval_")
    key = key if key in scores else "accuracy"
    message = f"hf-finetune: {'+'.join(cfg.strategy.strategy_names)} fine-tune"
    if key in scores:
        message += f", {split} {key} {scores[key]:.4f}"
    return message


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def push_folder(
    model_dir: str | Path,
    repo_id: str,
    private: bool = True,
    revision: str | None = None,
    commit_message: str | None = None,
    allow_private_data_public: bool = False,
    dry_run: bool = False,
    token: str | None = None,
) -> str:
    """Push a finished run's folder to `repo_id`; returns the repo URL (dry run: the staged folder, kept).

    Every check that needs no network comes first (repo id, finished run, private data, token),
    so bad input costs no upload. `token` None: `HfApi` takes it from HF_TOKEN or the login.
    """
    check_repo_id(repo_id)
    folder = finished_run(model_dir)
    cfg = load_run_config(folder)
    if not private and cfg.data.data_private and not allow_private_data_public:
        raise UserError(
            f"{model_dir} was trained on private data ({data_source(cfg)}) and weights can memorise training "
            "examples; push it private, or pass --allow-private-data-public to publish it"
        )
    if not dry_run:
        require_token(token)
    commit_message = commit_message or default_commit_message(folder, cfg)
    staged = stage_upload(folder, repo_id)
    target = f"{repo_id} ({'private' if private else 'public'}{f', branch {revision}' if revision else ''})"
    if dry_run:
        print(f"dry run, nothing uploaded: would push to {target} with commit message '{commit_message}':")
        for path in sorted(staged.iterdir()):
            print(f"  {path.name:<40} {_size(path.stat().st_size):>10}")
        print(f"staged folder (kept for inspection): {staged}")
        return str(staged)
    try:
        url = _upload(folder, staged, repo_id, private, revision, commit_message, token)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    print(f"pushed {folder} to {url}{f'/tree/{revision}' if revision else ''} ({'private' if private else 'public'})")
    return url


def network_errors() -> tuple[type[BaseException], ...]:
    """HTTP status errors, offline mode (an OSError) and the HTTP client's transport errors."""
    import importlib

    from huggingface_hub.errors import HfHubHTTPError

    errors: list[type[BaseException]] = [HfHubHTTPError, OSError]
    for module in ("httpx2", "httpx"):  # huggingface_hub's HTTP client: httpx2 in 2.x, httpx in 1.x
        try:
            errors.append(importlib.import_module(module).HTTPError)
        except ImportError:
            pass
    return tuple(errors)


def ensure_repo(api, repo_id: str, private: bool, revision: str | None) -> str:
    """Create the repo (and branch) if needed and refuse one of the other visibility; returns its URL."""
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    # `private` only applies when the repo is created: an existing repo keeps its visibility.
    existing = api.repo_info(repo_id, repo_type="model").private
    if bool(existing) != private:
        have, want = ("private", "public") if existing else ("public", "private")
        raise UserError(
            f"{repo_id} already exists and is {have}, but you asked for {want}: change its visibility on the "
            f"Hub or push with --{have}"
        )
    if revision:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    return url


def _upload(
    folder: Path, staged: Path, repo_id: str, private: bool, revision: str | None, message: str, token: str | None
) -> str:
    api = HfApi(token=token)
    try:
        url = ensure_repo(api, repo_id, private, revision)
        api.upload_folder(folder_path=str(staged), repo_id=repo_id, revision=revision, commit_message=message)
    except network_errors() as exc:  # auth, permissions, network, HF_HUB_OFFLINE: all fixable by the user
        raise UserError(
            f"push to {repo_id} failed: {first_line(exc).rstrip('.')}. The model stays in {folder}; retry with "
            f"`hf-finetune push --model {folder} --repo-id {repo_id}{' --public' if not private else ''}`"
        ) from None
    return str(url)
