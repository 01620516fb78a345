"""Every file in `accelerate_configs/` is a valid accelerate launch config, and a launch this
machine cannot honour (fp16, FSDP or DeepSpeed without a GPU, DeepSpeed not installed) stops
with one line and exit code 2 before anything is written.

Validity is judged by accelerate's own code, in the order `accelerate launch` runs it: the
config class (`ClusterConfig`, unknown keys refused), the launch-argument validation, the
environment the launcher hands to the training processes, and the FSDP / DeepSpeed plugin
built from that environment, as the Accelerator builds it in each process.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from conftest import REPO, csv_recipe_args, run_cli

CONFIGS = sorted((REPO / "accelerate_configs").glob("*.yaml"))
EXPECTED = {
    "cpu",
    "cpu_ddp",
    "gpu_bf16",
    "gpu_fp16",
    "multi_gpu",
    "fsdp",
    "deepspeed_zero2",
    "deepspeed_zero3",
    "multi_node",
    "multi_node_cpu",
}


def launcher_environment(config: Path) -> tuple[argparse.Namespace, dict[str, str]]:
    """The launch arguments and the environment `accelerate launch --config_file config` gives each process."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import (
        prepare_deepspeed_cmd_env,
        prepare_multi_gpu_env,
        prepare_simple_launcher_cmd_env,
    )

    args = launch_command_parser().parse_args(["--config_file", str(config), "tasks/text_classification.py"])
    args, defaults, _ = _validate_launch_command(args)
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        _, env = prepare_deepspeed_cmd_env(args)
    elif args.use_fsdp or args.multi_gpu:
        env = prepare_multi_gpu_env(args)
    else:
        _, env = prepare_simple_launcher_cmd_env(args)
    return args, env


def test_every_named_launch_config_exists():
    assert {p.stem for p in CONFIGS} == EXPECTED


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_config_starts_with_when_to_use_it_and_the_exact_command(config):
    text = config.read_text()
    assert text.startswith("# "), "the first line says when to use this config"
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert f"accelerate launch --config_file accelerate_configs/{config.name}" in header
    assert "tasks/" in header and "--config " in header


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_accelerate_accepts_the_config(config, monkeypatch):
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

    cluster = load_config_from_file(str(config))  # unknown keys or bad enum values raise here
    assert isinstance(cluster, ClusterConfig)
    args, env = launcher_environment(config)
    assert env["ACCELERATE_MIXED_PRECISION"] == cluster.mixed_precision
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    if args.use_fsdp:
        import accelerate.utils.dataclasses as accelerate_dataclasses
        import torch
        from accelerate.utils import FullyShardedDataParallelPlugin

        # The plugin's last step asks the GPU for its index (sync_module_states); this machine has none.
        if hasattr(accelerate_dataclasses, "get_torch_accelerator_backend"):  # accelerate >= 1.16 asks this
            monkeypatch.setattr(accelerate_dataclasses, "get_torch_accelerator_backend", lambda: ("cuda", None))
        else:
            monkeypatch.setattr(accelerate_dataclasses, "is_cuda_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        plugin = FullyShardedDataParallelPlugin()  # as the Accelerator builds it from the environment
        assert plugin.sharding_strategy.name == "FULL_SHARD"
        assert plugin.state_dict_type.name == "SHARDED_STATE_DICT"
        assert plugin.auto_wrap_policy.__name__ == "transformer_auto_wrap_policy"
        assert plugin.use_orig_params, "per-block learning rates need the original parameters"
    if args.use_deepspeed:
        from accelerate.utils import DeepSpeedPlugin

        plugin = DeepSpeedPlugin()
        assert plugin.zero_stage == int(config.stem[-1])
        assert plugin.deepspeed_config["gradient_accumulation_steps"] == "auto"


def test_configs_say_what_they_distribute():
    from accelerate.commands.config.config_args import load_config_from_file

    loaded = {p.stem: load_config_from_file(str(p)) for p in CONFIGS}
    kinds = {name: c.distributed_type.value for name, c in loaded.items()}
    assert kinds["cpu"] == "NO" and loaded["cpu"].use_cpu
    assert kinds["cpu_ddp"] == "MULTI_GPU" and loaded["cpu_ddp"].use_cpu and loaded["cpu_ddp"].num_processes == 2
    assert kinds["fsdp"] == "FSDP" and kinds["deepspeed_zero2"] == kinds["deepspeed_zero3"] == "DEEPSPEED"
    assert {loaded[n].mixed_precision for n in ("gpu_bf16", "multi_gpu", "fsdp", "multi_node")} == {"bf16"}
    assert loaded["gpu_fp16"].mixed_precision == "fp16"
    node = loaded["multi_node"]
    assert node.num_machines > 1 and node.main_process_ip and node.main_process_port
    assert "machine_rank" in (REPO / "accelerate_configs" / "multi_node.yaml").read_text().split("EDIT", 1)[0]


# What the launcher puts in each process's environment, per config, and what the user sees here.
IMPOSSIBLE_LAUNCHES = [
    ({"ACCELERATE_MIXED_PRECISION": "fp16"}, [], "fp16 mixed precision needs a CUDA GPU"),
    ({}, ["--fp16"], "fp16 mixed precision needs a CUDA GPU"),
    ({"ACCELERATE_USE_FSDP": "true"}, [], "uses FSDP, which needs GPUs"),
    ({"ACCELERATE_USE_DEEPSPEED": "true"}, [], "uses DeepSpeed, which is not installed"),
]


@pytest.mark.parametrize(("env", "flags", "message"), IMPOSSIBLE_LAUNCHES, ids=["fp16-env", "fp16-flag", "fsdp", "ds"])
def test_launch_this_machine_cannot_honour_stops_before_any_output(
    env, flags, message, tmp_path, fortunes_csv, capsys, monkeypatch
):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the check under test is for machines without one")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "out"
    argv = ["train", *csv_recipe_args(fortunes_csv["train"]), "--output_dir", str(out), *flags]
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
