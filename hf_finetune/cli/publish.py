"""`hf-finetune merge` and `hf-finetune push`: a run as a plain model, on the Hub."""

from __future__ import annotations

from hf_finetune.cli.commands import summary
from hf_finetune.cli.common import CommandParser
from hf_finetune.errors import EXIT_OK
from hf_finetune.modeling.adapters import merge_adapter_folder
from hf_finetune.training.hub import push_folder


def merge_main(argv: list[str]) -> int:

    parser = CommandParser(prog="hf-finetune merge", description=summary("merge"))
    parser.add_argument("--model", required=True, help="Output folder of a lora/ia3 run (holds adapter_config.json).")
    parser.add_argument("--out", required=True, help="New folder for the merged, plain transformers model.")
    args = parser.parse_args(argv)
    out = merge_adapter_folder(args.model, args.out)
    print(f'merged model written to {out}; load it with pipeline(model="{out}")')
    return EXIT_OK


def push_main(argv: list[str]) -> int:

    parser = CommandParser(
        prog="hf-finetune push",
        description=summary("push") + ". The token comes from --token, HF_TOKEN or `hf auth login`.",
    )
    parser.add_argument(
        "--token",
        help="Hub token with write access. Default: HF_TOKEN or the cached `hf auth login`. Never written anywhere.",
    )
    parser.add_argument("--model", required=True, help="Output folder of a finished run (holds run_complete.json).")
    parser.add_argument("--repo-id", "--repo_id", dest="repo_id", required=True, help="`user/name` or `org/name`.")
    visibility = parser.add_mutually_exclusive_group()
    visibility.add_argument(
        "--private", dest="private", action="store_true", default=True, help="Private repo (the default)."
    )
    visibility.add_argument("--public", dest="private", action="store_false", help="Public repo.")
    parser.add_argument("--revision", help="Branch to push to (created if missing). Default: main.")
    parser.add_argument("--commit-message", "--commit_message", help="Default: names the strategy and the main metric.")
    parser.add_argument(
        "--dry-run",
        "--dry_run",
        action="store_true",
        help="Stage the upload folder and list its files; no token or network needed.",
    )
    parser.add_argument(
        "--allow-private-data-public",
        "--allow_private_data_public",
        action="store_true",
        help="Allow --public for a model trained on private data (local files unless data_private: false).",
    )
    args = parser.parse_args(argv)
    push_folder(
        args.model,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        allow_private_data_public=args.allow_private_data_public,
        dry_run=args.dry_run,
        token=args.token,
    )
    return EXIT_OK
