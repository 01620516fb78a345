"""Runnable task entry points, one module per task: `accelerate launch -m hf_finetune.scripts.<task> --config R`.

They ship in the wheel, so a multi-process launch works from an installed package, with no source
checkout: `accelerate launch --config_file "$(hf-finetune launch-config cpu_ddp)" -m
hf_finetune.scripts.text_classification --config fortunes_topics`. Each is `hf-finetune train` with the
task fixed (a recipe for another task is refused); the checkout's `tasks/<task>.py` are the same thing.
"""
