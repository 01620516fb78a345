from dataclasses import dataclass, field

from hf_finetune.errors import UserError
from hf_finetune.modeling.adapters import PEFT_REFUSES, wrap_with_peft
from hf_finetune.modeling.layers import block_linear_modules, discover_blocks, head_module_names
from hf_finetune.strategies import register_strategy
from hf_finetune.strategies.base import Strategy


@dataclass
class LoraArguments:
    _argument_group_name = "lora strategy"

    lora_r: int = field(default=8, metadata={"help": "Rank of the low-rank update (Hu et al. 2021)."})
    lora_alpha: int = field(default=16, metadata={"help": "Scaling of the update (alpha/r); 2 x rank is usual."})
    lora_dropout: float = field(default=0.1, metadata={"help": "Dropout on the adapter's input."})
    lora_use_dora: bool = field(
        default=False,
        metadata={"help": "DoRA: split each weight into magnitude and direction (Liu et al. 2024)."},
    )
    lora_target_modules: list[str] = field(
        default_factory=list,
        metadata={"help": "Module names (or suffixes) to adapt. Default: every linear layer of every block."},
    )


@register_strategy
class Lora(Strategy):
    """LoRA (and DoRA) adapters from `peft` on every linear layer of the transformer blocks; the
    backbone stays frozen and the new head trains fully (`modules_to_save`), so the output folder
    holds only adapters + head. `hf-finetune merge` turns it into a plain model."""

    name = "lora"
    summary = "LoRA/DoRA adapters on all linear layers of the blocks, head trained fully; default LR 5e-4"
    Arguments = LoraArguments
    decides_what_trains = True
    default_learning_rate = 5e-4  # the LoRA paper's range for RoBERTa-base on GLUE (4e-4..5e-4)
    refuses = PEFT_REFUSES

    def prepare_model(self, model, new_keys):
        a = self.args
        refuse_unadaptable(model)
        layout = discover_blocks(model)
        targets = list(a.lora_target_modules) or block_linear_modules(model, layout)
        check_targets(model, layout, targets)
        from peft import LoraConfig  # after the check: importing peft takes seconds

        config = LoraConfig(
            r=a.lora_r,
            lora_alpha=a.lora_alpha,
            lora_dropout=a.lora_dropout,
            use_dora=a.lora_use_dora,
            target_modules=targets,
        )
        return wrap_with_peft(model, config, self.cfg)


def refuse_unadaptable(model) -> None:
    """Families whose forward reads attributes of the layers LoRA would wrap (found by the conformance matrix)."""
    config = model.config
    if config.model_type in ("mobilenet_v1", "mobilenet_v2") and getattr(config, "tf_padding", False):
        raise UserError(
            f"lora cannot adapt {config.model_type} models with tf_padding: their layers read each convolution's "
            "stride to pad TensorFlow-style, and peft's LoRA convolution does not expose it; use full, "
            "freeze_bottom or linear_probe"
        )


def check_targets(model, layout, targets: list[str]) -> None:
    """Each target must name a module outside the head, by full name or suffix, as peft matches them.

    peft only fails when no target matches at all, so a typo in one of several targets would
    silently leave those layers without adapters; and its error for none is a traceback.
    """
    heads = tuple(head_module_names(model, layout))
    names = [n for n, _ in model.named_modules() if n and n.split(".", 1)[0] not in heads]
    unmatched = [t for t in targets if not any(n == t or n.endswith(f".{t}") for n in names)]
    if unmatched:
        suffixes = sorted({n.rsplit(".", 1)[-1] for n in block_linear_modules(model, layout)})
        raise UserError(
            f"lora_target_modules: nothing in {type(model).__name__} outside the head matches {', '.join(unmatched)}; "
            f"the blocks' linear layers end in {', '.join(suffixes)} (leave lora_target_modules empty to adapt them all)"
        )
