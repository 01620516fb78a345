"""`hf-finetune zero-shot`: unseen classes classified by their attributes."""

from __future__ import annotations

from pathlib import Path

from hf_finetune.analysis.zero_shot import PRIORS, format_zero_shot_report, zero_shot_evaluate
from hf_finetune.cli.commands import summary
from hf_finetune.cli.common import CommandParser
from hf_finetune.errors import EXIT_OK, UserError
from hf_finetune.outputs import write_json
from hf_finetune.training.run import setup_logging


def zero_shot_main(argv: list[str]) -> int:

    parser = CommandParser(
        prog="hf-finetune zero-shot",
        description=summary("zero-shot") + ". Direct attribute prediction (Lampert et al.): the attribute model "
        "(a --multi_label true image run on the seen classes) scores each unseen class's attribute description.",
        allow_abbrev=False,
    )
    parser.add_argument("--model", required=True, help="Output folder of a multi-label attribute run.")
    parser.add_argument(
        "--classes", required=True,
        help="Class table: a .yaml with `unseen:` (and optional `seen:`) mapping classes to attribute lists, "
        "a .csv with columns class,split (seen/unseen) and one 0/1 column per attribute, or packaged:fashion-mnist.",
    )  # fmt: skip
    parser.add_argument(
        "--data", required=True, help="Labelled images: packaged:NAME, a dataset or image folder, or a file of paths."
    )
    parser.add_argument("--split", default="test", help="Split of --data to score (default test).")
    parser.add_argument("--image_column", "--image-column", default="image")
    parser.add_argument("--label_column", "--label-column", default="label", help="Column with the class names.")
    parser.add_argument(
        "--prior", choices=PRIORS, default="seen",
        help="Attribute priors p(a): the seen classes' mean attribute vector (default), or none.",
    )  # fmt: skip
    parser.add_argument("--batch_size", "--batch-size", type=int, default=128)
    parser.add_argument("--output", help="JSON report. Default: zero_shot.json in --model.")
    args = parser.parse_args(argv)
    output = Path(args.output) if args.output else Path(args.model) / "zero_shot.json"
    if output.suffix != ".json":
        raise UserError(f"--output must end in .json, got {output}")

    setup_logging(is_main=True)
    report = zero_shot_evaluate(
        args.model, args.classes, args.data, split=args.split, image_column=args.image_column,
        label_column=args.label_column, prior=args.prior, batch_size=args.batch_size,
    )  # fmt: skip
    print(format_zero_shot_report(report))
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json(output, report)
    print(f"report written to {output}")
    return EXIT_OK
