"""Checkpoints to the Hub while training (`hub_strategy`), and `resume: hub` on a new machine.

What `hub_strategy` promises in transformers, on our own pusher (the Trainer never pushes; see
`hf_finetune.training.hub`):
- `end` (our default): nothing while training; the finished folder is pushed once at the end.
- `every_save`: at every save, the model files (weights, config, tokenizer) to the repo's root.
- `checkpoint`: the same, plus the whole checkpoint (optimizer, scheduler, RNG states, trainer
  state) to `last-checkpoint/`, replaced in one commit each time: what `resume: hub` continues from.
- `all_checkpoints`: the same, each checkpoint into its own `checkpoint-N/` folder.

Only complete checkpoints go: the pusher runs from `on_save`, which Trainer calls after
`StrategyTrainer._save_checkpoint` wrote the completeness sentinel, and it checks the sentinel
again (`is_complete`) before staging. The files are hard-linked into a staging folder first, so
checkpoint rotation can delete the checkpoint while its upload runs. Uploads run in one background
thread: training does not wait for the network. A save that comes while the previous upload is
still running is skipped (the next one carries newer weights), unless `hub_always_push: true`, which
waits for it. At the end of training (a SIGTERM stop included) the pending upload is waited for.
A failed checkpoint upload is a warning, not a stopped run: the final push still reports errors.

The repo is private unless `hub_private_repo: false` (checked as for the final push); the token
goes to `HfApi` only; `training_args.bin` (a pickle) is never uploaded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from huggingface_hub import constants
from transformers import TrainerCallback

from hf_finetune.engine.checkpoints import CHECKPOINT_COMPLETE, CHECKPOINT_NAME, is_complete, newest_complete
from hf_finetune.errors import UserError, first_line
from hf_finetune.outputs import METRICS, RUN_CONFIG
from hf_finetune.training import hub

logger = logging.getLogger("hf_finetune")

STRATEGIES = ("end", "every_save", "checkpoint", "all_checkpoints")
LAST_CHECKPOINT = "last-checkpoint"
NOT_UPLOADED = ("training_args.bin",)  # a pickle; Trainer does not need it to resume


def strategy_name(args) -> str:
    return str(getattr(args.hub_strategy, "value", args.hub_strategy))


def check_hub_strategy(cfg, push) -> None:
    """A checkpoint strategy without `push_to_hub` would silently push nothing: refuse it before any work."""
    strategy = strategy_name(cfg.training)
    if strategy not in STRATEGIES:
        raise UserError(f"hub_strategy must be one of {', '.join(STRATEGIES)}, got '{strategy}'")
    if strategy != "end" and push is None:
        raise UserError(
            f"hub_strategy {strategy} pushes checkpoints to the Hub while training: also pass --push_to_hub true "
            "--hub_model_id user/name, or leave hub_strategy at end"
        )


def model_files(folder: Path) -> list[str]:
    """The files of a checkpoint a user of the model needs at the repo's root (the final push's allowlist)."""
    return [name for name in hub.uploaded_names(folder) if name not in (RUN_CONFIG, METRICS)]


def stage_checkpoint(folder: Path, strategy: str) -> Path:
    """A temporary folder with the repo's new files, hard-linked (copied where links are impossible)."""
    staged = Path(tempfile.mkdtemp(prefix=f"hf-finetune-{folder.name}-"))
    links = [(folder / name, staged / name) for name in model_files(folder)]
    if strategy in ("checkpoint", "all_checkpoints"):
        target = staged / (LAST_CHECKPOINT if strategy == "checkpoint" else folder.name)
        links += [
            (path, target / path.relative_to(folder))
            for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name not in NOT_UPLOADED
        ]
    for source, destination in links:
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, destination)
        except OSError:
            shutil.copy2(source, destination)
    return staged


class PushCheckpoints(TrainerCallback):
    """Uploads each complete checkpoint as `hub_strategy` says, from the main process, in the background."""

    def __init__(self, push, strategy: str, always_push: bool):
        self.push, self.strategy, self.always_push = push, strategy, always_push
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-push")
        self.pending: Future | None = None
        self.repo_ready = False
        self.pushed: list[str] = []  # checkpoint folder names, in upload order

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if not is_complete(folder):  # never a half-written checkpoint
            logger.warning("not pushing %s: it has no completeness sentinel", folder)
            return
        if self.pending is not None and not self.pending.done():
            if not self.always_push:
                logger.info("previous push still running: %s not pushed (hub_always_push: true waits)", folder.name)
                return
            self.pending.result()
        staged = stage_checkpoint(folder, self.strategy)
        self.pending = self.pool.submit(self.upload, staged, folder.name, state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        if self.pending is not None:
            self.pending.result()
        self.pool.shutdown(wait=True)

    def upload(self, staged: Path, name: str, step: int) -> None:
        push = self.push
        try:
            api = hub.HfApi(token=push.token)
            if not self.repo_ready:
                hub.ensure_repo(api, push.repo_id, push.private, push.revision)
                self.repo_ready = True
            api.upload_folder(
                folder_path=str(staged),
                repo_id=push.repo_id,
                revision=push.revision,
                commit_message=f"hf-finetune: training in progress, step {step}",
                # One commit replaces last-checkpoint/ whole: a resumer never sees two checkpoints mixed.
                delete_patterns=[f"{LAST_CHECKPOINT}/*"] if self.strategy == "checkpoint" else None,
            )
            self.pushed.append(name)
            logger.info("pushed %s to %s (%s)", name, push.repo_id, self.strategy)
        except (*hub.network_errors(), UserError) as exc:
            logger.warning("push of %s to %s failed (%s); training goes on", name, push.repo_id, first_line(exc))
        finally:
            shutil.rmtree(staged, ignore_errors=True)


def checkpoint_pushers(cfg, push) -> list:
    """The callback for `hub_strategy` (none for `end` or without `push_to_hub`)."""
    strategy = strategy_name(cfg.training)
    if push is None or strategy == "end":
        return []
    return [PushCheckpoints(push, strategy, bool(cfg.training.hub_always_push))]


def step_of(folder: Path) -> int:
    return json.loads((folder / CHECKPOINT_COMPLETE).read_text(encoding="utf-8"))["step"]


def pushed_checkpoint_folders(files: list[str]) -> list[str]:
    """Checkpoint folders of a repo's file list that hold a sentinel (`last-checkpoint`, `checkpoint-N`)."""
    folders = {f.split("/")[0] for f in files if f.count("/") == 1 and f.endswith(f"/{CHECKPOINT_COMPLETE}")}
    return sorted(f for f in folders if f == LAST_CHECKPOINT or CHECKPOINT_NAME.match(f))


def download_pushed_checkpoint(cfg) -> Path | None:
    """The newest complete checkpoint pushed to `hub_model_id`, downloaded to the Hugging Face cache (the
    output folder is not written before every check passed); None when none was pushed yet."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    args = cfg.training
    repo_id = hub.check_repo_id(args.hub_model_id, option="hub_model_id (resume: hub reads it)")
    if constants.HF_HUB_OFFLINE:
        raise UserError("resume: hub needs the Hub, but HF_HUB_OFFLINE is set; unset it or use --resume auto")
    api = hub.HfApi(token=args.hub_token)
    try:
        folders = pushed_checkpoint_folders(api.list_repo_files(repo_id, revision=args.hub_revision))
        if not folders:
            return None
        # `checkpoint` keeps one, `last-checkpoint/`; `all_checkpoints` one folder per step: the highest.
        numbered = sorted((int(m.group(1)), f) for f in folders if (m := CHECKPOINT_NAME.match(f)))
        newest = LAST_CHECKPOINT if LAST_CHECKPOINT in folders else numbered[-1][1]
        snapshot = Path(api.snapshot_download(repo_id, revision=args.hub_revision, allow_patterns=[f"{newest}/*"]))
    except (RepositoryNotFoundError, RevisionNotFoundError):
        return None
    except hub.network_errors() as exc:
        raise UserError(
            f"resume: hub could not read checkpoints from {repo_id} ({first_line(exc)}); check the id and your "
            "token, or use --resume auto"
        ) from None
    if not is_complete(snapshot / newest, left_out=NOT_UPLOADED):
        raise UserError(
            f"the checkpoint {newest} pushed to {repo_id} is incomplete (a file is missing or has another size than "
            "its sentinel lists); push again or use --resume auto"
        )
    return snapshot / newest


def resume_from_hub(cfg, out: Path) -> Path | None:
    """`resume: hub`: the newer of the Hub's last pushed checkpoint and this machine's newest complete one;
    None (start from scratch) when neither exists, so the same command starts a run and continues it."""
    pushed = download_pushed_checkpoint(cfg)
    local = newest_complete(out)
    found = [p for p in (pushed, local) if p is not None]
    if not found:
        logger.info("resume: hub found no checkpoint pushed to %s: starting from scratch", cfg.training.hub_model_id)
        return None
    checkpoint = max(found, key=step_of)
    origin = f"pushed to {cfg.training.hub_model_id}" if checkpoint == pushed else "on this machine"
    logger.info("resume: hub continues from step %d (%s)", step_of(checkpoint), origin)
    return checkpoint
