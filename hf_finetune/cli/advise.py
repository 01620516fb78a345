"""`hf-finetune advise`: measure a checkpoint on the data and recommend a strategy."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hf_finetune.analysis.advisor import DEFAULT_SAMPLE, advise, data_values, write_recipe
from hf_finetune.cli.commands import summary
from hf_finetune.cli.common import CommandParser
from hf_finetune.errors import EXIT_OK, UserError
from hf_finetune.modeling.loading import checkpoint_modality, resolve_checkpoint
from hf_finetune.outputs import write_json
from hf_finetune.recipes import load_recipe, resolve_recipe_path


def guess_task(model: str) -> str:
    """image_classification for a checkpoint with an image processor and no tokenizer, else text."""

    return f"{checkpoint_modality(resolve_checkpoint(model))}_classification"


def advise_parser() -> CommandParser:
    parser = CommandParser(prog="hf-finetune advise", description=summary("advise"))
    parser.add_argument("--model", help="Checkpoint: Hub id, folder or packaged:... (default: the recipe's).")
    parser.add_argument(
        "--data", help="Labelled data: a file, a dataset folder, a Hub id or packaged:... (default: the recipe's)."
    )
    parser.add_argument("--config", help="Recipe to start from; the recommended recipe keeps its other settings.")
    parser.add_argument(
        "--task",
        choices=("text_classification", "image_classification"),
        help="Default: the recipe's, else guessed from the checkpoint.",
    )
    parser.add_argument(
        "--reference-data",
        "--reference_data",
        dest="reference",
        help="A sample of the checkpoint's source domain, for the proxy A-distance.",
    )
    parser.add_argument(
        "--sample", type=int, default=DEFAULT_SAMPLE, help=f"Examples to measure on (default {DEFAULT_SAMPLE})."
    )
    parser.add_argument(
        "--pooling",
        choices=("cls", "mean"),
        default="cls",
        help="How a feature vector is pooled (cls: what the head sees).",
    )
    parser.add_argument("--text_column", "--text-column")
    parser.add_argument("--label_column", "--label-column")
    parser.add_argument("--image_column", "--image-column")
    parser.add_argument(
        "--out",
        default="advised_recipe.yaml",
        help="Where the recommended recipe goes; the measurements go beside it as .json.",
    )
    return parser


def advise_values(args) -> dict:
    """The recipe the advice starts from: `--config`'s values with `--model`, `--data` and the columns over them."""
    values = load_recipe(resolve_recipe_path(args.config)) if args.config else {}
    if args.model:
        values["model_name_or_path"] = args.model
    if args.data:
        values.update(data_values(args.data))
    if not values.get("model_name_or_path") or not (values.get("dataset_name") or values.get("train_file")):
        raise UserError("advise needs a checkpoint and data: pass --model and --data (or a --config that names them)")
    for key in ("text_column", "label_column", "image_column"):
        if getattr(args, key):
            values[key] = getattr(args, key)
    values["task"] = args.task or values.get("task") or guess_task(values["model_name_or_path"])
    return values


def advise_main(argv: list[str]) -> int:
    args = advise_parser().parse_args(argv)
    if args.sample < 20:
        raise UserError(
            f"--sample must be at least 20 (a 5-fold probe needs a few examples per class), got {args.sample}"
        )
    out = Path(args.out)
    if out.is_dir() or out.suffix not in (".yaml", ".yml"):
        raise UserError(f"--out must be a .yaml file path, got {args.out}")
    values = advise_values(args)
    advice = advise(values, base_name=args.config, sample=args.sample, reference=args.reference, pooling=args.pooling)
    m, rec = advice.measurements, advice.recommendation
    print(f"quadrant: {rec.quadrant}")
    settings = ", ".join(f"{k} {v}" for k, v in rec.hyperparameters.items())
    print(f"recommended strategy: {rec.strategy}" + (f" ({settings})" if settings else ""))
    print("because:")
    for reason in rec.reasons:
        print(f"  - {reason}")
    write_recipe(out, advice.recipe, rec)
    write_json(out.with_suffix(".json"), {"measurements": dataclasses.asdict(m), "recommendation": rec.as_dict(),
                                          "seconds": advice.seconds})  # fmt: skip
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in advice.seconds.items())
    print(f"recipe written to {out} (run it: hf-finetune train --config {out}); measured in {timing}")
    return EXIT_OK
