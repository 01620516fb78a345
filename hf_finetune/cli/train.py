"""`hf-finetune train` and `hf-finetune pretrain`."""

from __future__ import annotations

from hf_finetune.cli.launching import relaunch, split_launch_flag
from hf_finetune.errors import EXIT_OK
from hf_finetune.recipes import ConfigParser, parse_config
from hf_finetune.training.cross_validation import run_cv
from hf_finetune.training.pretrain import pretrain
from hf_finetune.training.run import run, setup_logging


def train_main(argv: list[str], task: str | None = None, prog: str = "hf-finetune train") -> int:

    if any(a in ("-h", "--help") for a in argv):
        ConfigParser(prog=prog).print_help()
        print("\n--launch NAME   run under `accelerate launch` with a shipped config (`hf-finetune launch-config`)")
        return EXIT_OK
    launch, argv = split_launch_flag(argv)
    if launch is not None:
        parse_config(argv, task=task, prog=prog)  # bad input stops here, before any process starts
        return relaunch(launch, argv, task)
    cfg = parse_config(argv, task=task, prog=prog)
    if cfg.run.cv_folds:
        run_cv(cfg)
    else:
        run(cfg)
    return EXIT_OK


def pretrain_main(argv: list[str]) -> int:

    if any(a in ("-h", "--help") for a in argv):
        print("hf-finetune pretrain [--key value ...]: the `vit_fashion_source` recipe; any train option overrides it")
        ConfigParser(prog="hf-finetune pretrain").print_help()
        return EXIT_OK

    setup_logging(is_main=True)
    out = pretrain(argv)
    print(f"pretrained ViT: {out}")
    return EXIT_OK
