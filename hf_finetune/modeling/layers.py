"""One depth axis for every encoder: `embeddings`, `block.0` ... `block.{n-1}`, `head`.

Layer-wise learning-rate decay, gradual unfreezing and "train the top k layers" all need
to know which layer a parameter belongs to and how deep that layer sits. Module paths
differ across families (`bert.encoder.layer.N`, `vit.layers.N`, `convnext.encoder.stages.S.layers.N`)
and move between transformers releases, so the layout is discovered from structure
instead of names. The base model is `model.base_model`; everything outside it is the task's head.

The blocks, and how staged models are counted:

- the layer stack is the `nn.ModuleList`/`nn.Sequential` of the base model holding the most
  parameters (BERT's `encoder.layer`, ViT's `layers`, ConvNeXt's `encoder.stages`);
- when its elements are *stages* (containers themselves, classes named `...Stage`, or a stack
  of mixed classes as in MobileViT), each stage is split into its own largest inner stack and
  every layer inside becomes one block: ConvNeXt with depths [3, 3, 9, 3] has 18 blocks, not 4.
  A stage's other parameters (Swin's patch merging, ConvNeXt's downsampling) join its first
  layer if they come before the layers, else its last. Counting by layer keeps `llrd_decay`
  and `freeze_num_layers` meaning the same thing for a ViT and a CNN;
- families with more than one stack in sequence (Funnel's encoder then decoder) list them in
  `FAMILY_STACKS`.

Where each other parameter of the base model goes, and why:

- before the first block (word/patch embeddings, CNN stems such as ResNet's `embedder` or
  MobileNet's `conv_stem`, XLNet's `mask_emb`) -> `embeddings`: they make the first block's input;
- tables shared by every layer (MPNet's `relative_attention_bias`, DeBERTa's `rel_embeddings`,
  BEiT's shared `relative_position_bias`) -> `embeddings` too. They feed every layer, so no single
  block owns them; like position embeddings they encode the input's geometry, are the most
  general thing the model learned, and freezing the bottom of the network should freeze them;
- after the last block (ViT's final `layernorm`, BERT's `pooler`, EfficientNet's `top_conv`,
  MobileNet's `conv_1x1`) -> the *top block*. They are pretrained and only ever see the top
  layer's output, so they share its depth: freezing "all but the head" then gives a true linear
  probe on pretrained features, and layer-wise decay gives them the top layer's rate;
- anything else (a parameter between two layers, or one shared by two of them) means the depth
  cannot be read. The layout is then *unreadable*: one `backbone` block plus the head. Strategies
  that need no depth (full, lora, ia3, scratch, linear_probe) still run; those that do
  (`Strategy.needs_depth`) refuse in one line naming the family and the parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from torch import nn

from hf_finetune.errors import UserError

EMBEDDINGS, HEAD = "embeddings", "head"
# The single block of an unreadable layout: every base-model parameter, at no particular depth.
BACKBONE = "backbone"

# Families whose layers sit in several stacks run one after another (paths inside the base model).
FAMILY_STACKS: dict[str, tuple[str, ...]] = {
    # FunnelModel (token classification) upsamples with a decoder stack after the encoder's stages.
    "funnel": ("encoder.blocks", "decoder.layers"),
}
# Families whose stage i > 0 starts with a downsampling module kept in a list beside the stages
# (PoolFormer's `encoder.patch_embeddings[i]`): it joins stage i's first layer; element 0 is the stem.
FAMILY_STAGE_INPUTS: dict[str, str] = {
    "poolformer": "encoder.patch_embeddings",
    "segformer": "encoder.patch_embeddings",
}
# Shared tables that are not named like one: DeBERTa-v2's `encoder.LayerNorm` normalises only
# `rel_embeddings` (in `get_rel_embedding`), never a layer's output, so it lives with the table.
FAMILY_SHARED: dict[str, tuple[str, ...]] = {"deberta-v2": ("encoder.LayerNorm.",)}

_SHARED_NAME = re.compile(r"(^|\.)(rel_embeddings|relative_attention_bias|relative_position_bias|mask_emb)(\.|$)")
_LISTS = (nn.ModuleList, nn.Sequential)


class _Unreadable(Exception):
    """The depth of the layers cannot be read; the message says why (shown by the refusing strategy)."""


@dataclass
class BlockLayout:
    """Parameters grouped by depth; `names` is bottom to top and always starts with
    `embeddings` and ends with `head` (either may be empty), so depth = position.
    `unreadable` holds why the depth could not be read (then `names` is embeddings, backbone, head)."""

    names: list[str]
    params: dict[str, list[tuple[str, nn.Parameter]]]
    family: str = ""
    unreadable: str | None = None
    _owner: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._owner = {name: block for block in self.names for name, _ in self.params[block]}

    @property
    def num_blocks(self) -> int:
        """Layers only, the `n` of `block.0` ... `block.{n-1}`."""
        return len(self.names) - 2

    def block_of(self, param_name: str) -> str:
        if param_name not in self._owner:
            raise UserError(f"'{param_name}' is not a parameter of this model")
        return self._owner[param_name]

    def depth_index(self, block_name: str) -> int:
        """0 for embeddings, i + 1 for block.i, num_blocks + 1 for head: the exponent
        that layer-wise decay needs (rate = base * decay ** (num_blocks + 1 - depth))."""
        if block_name not in self.names:
            raise UserError(f"unknown block '{block_name}'; known: {', '.join(self.names)}")
        return self.names.index(block_name)

    def require_depth(self, strategy: str) -> None:
        """One-line refusal for a strategy that needs each layer's depth on a layout without one."""
        if self.unreadable:
            raise UserError(
                f"strategy {strategy} needs the depth of each layer, and the layers of {self.family or 'this'} "
                f"models cannot be read: {self.unreadable}; use full, lora, ia3 or linear_probe, or list the "
                "family's layer stacks in hf_finetune.modeling.layers.FAMILY_STACKS"
            )

    def require_head(self, strategy: str) -> None:
        if not self.params[HEAD]:
            raise UserError(
                f"strategy {strategy} trains only the task head, and this {self.family or ''} model has none "
                "(it is a bare base model); load it with a task class (e.g. AutoModelForSequenceClassification)"
            )


def discover_blocks(model: nn.Module) -> BlockLayout:
    """The model's layout; never fails: a model whose depth cannot be read gets an unreadable layout."""
    base = model.base_model
    family = getattr(model.config, "model_type", "") or ""
    try:
        block_of_param = _place_base_params(model, base, family)
        names = [EMBEDDINGS, *(f"block.{i}" for i in range(_count_blocks(block_of_param))), HEAD]
        reason = None
    except _Unreadable as problem:
        block_of_param = {id(p): BACKBONE for p in base.parameters()}
        names, reason = [EMBEDDINGS, BACKBONE, HEAD], str(problem)
    params: dict[str, list[tuple[str, nn.Parameter]]] = {block: [] for block in names}
    for name, param in model.named_parameters():
        params[block_of_param.get(id(param), HEAD)].append((name, param))
    return BlockLayout(names=names, params=params, family=family, unreadable=reason)


def _count_blocks(block_of_param: dict[int, str]) -> int:
    return len({b for b in block_of_param.values() if b.startswith("block.")})


def _place_base_params(model: nn.Module, base: nn.Module, family: str) -> dict[int, str]:
    """id(parameter) -> block for every base-model parameter, by the rules in the module docstring."""
    prefix = next(name for name, module in model.named_modules() if module is base)
    layers = _layers(base, family)
    block_of_param: dict[int, str] = {}
    for i, layer_params in enumerate(layers):
        for param in layer_params:
            if id(param) in block_of_param:
                raise _Unreadable(f"a parameter is shared by {block_of_param[id(param)]} and block.{i}")
            block_of_param[id(param)] = f"block.{i}"

    base_params = list(base.named_parameters())
    in_layer = [i for i, (_, p) in enumerate(base_params) if id(p) in block_of_param]
    first, last = in_layer[0], in_layer[-1]
    shared = FAMILY_SHARED.get(family, ())
    for position, (name, param) in enumerate(base_params):
        if id(param) in block_of_param:
            continue
        if position < first or _SHARED_NAME.search(name) or name.startswith(shared):
            block_of_param[id(param)] = EMBEDDINGS
        elif position > last:
            block_of_param[id(param)] = f"block.{len(layers) - 1}"
        else:
            full = f"{prefix}.{name}" if prefix else name
            raise _Unreadable(f"parameter '{full}' sits between two layers but in neither")
    return block_of_param


def _layers(base: nn.Module, family: str) -> list[list[nn.Parameter]]:
    """The parameters of each layer, bottom to top (stages split into their layers)."""
    paths = [path for path in FAMILY_STACKS.get(family, ()) if _has_submodule(base, path)]
    stacks = [base.get_submodule(path) for path in paths] if paths else [_main_stack(base)]
    stage_inputs = _has_submodule(base, FAMILY_STAGE_INPUTS.get(family, ""))
    layers: list[list[nn.Parameter]] = []
    for stack in stacks:
        mixed = len({type(element) for element in stack}) > 1
        for i, element in enumerate(stack):
            if mixed or isinstance(element, _LISTS) or type(element).__name__.endswith("Stage"):
                stage = _stage_layers(element)
                if stage_inputs and i > 0:
                    stage[0] += list(base.get_submodule(FAMILY_STAGE_INPUTS[family])[i].parameters())
                layers += stage
            else:
                layers.append(list(element.parameters()))
    layers = [layer for layer in layers if layer]  # parameter-free layers (pooling, identity) have no depth
    if not layers:
        raise _Unreadable(f"{type(base).__name__} has no stack of layers with parameters")
    return layers


def _has_submodule(module: nn.Module, path: str) -> bool:
    try:
        return bool(path) and module.get_submodule(path) is not None
    except AttributeError:
        return False


def _largest_stack(module: nn.Module) -> nn.Module | None:
    """The ModuleList/Sequential inside `module` with the most parameters; ties go to the outermost
    (a parent holds at least its children's parameters, and `modules()` visits parents first)."""
    best, best_size = None, 0
    for candidate in module.modules():
        if isinstance(candidate, _LISTS) and len(candidate) > 0:
            size = sum(p.numel() for p in candidate.parameters())
            if size > best_size:
                best, best_size = candidate, size
    return best


def _main_stack(base: nn.Module) -> nn.Module:
    stack = _largest_stack(base)
    if stack is None:
        raise _Unreadable(f"{type(base).__name__} has no stack of layers (nn.ModuleList or nn.Sequential)")
    return stack


def _stage_layers(stage: nn.Module) -> list[list[nn.Parameter]]:
    """A stage's layers, each one block; the stage's other parameters join its first or last layer."""
    inner = stage if isinstance(stage, _LISTS) else _largest_stack(stage)
    layers = [list(layer.parameters()) for layer in inner] if inner is not None else []
    layers = [layer for layer in layers if layer]
    if not layers:
        return [list(stage.parameters())]
    owned = {id(p) for layer in layers for p in layer}
    order = list(stage.parameters())
    first_owned = next(i for i, p in enumerate(order) if id(p) in owned)
    for position, param in enumerate(order):
        if id(param) not in owned:
            (layers[0] if position < first_owned else layers[-1]).append(param)
    return layers


def _input_embedding_params(base: nn.Module) -> set[int]:
    """Covers families whose token embedding is not named like one (GPT-2's `wte`)."""
    try:
        embedding = base.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        return set()
    return {id(p) for p in embedding.parameters()} if isinstance(embedding, nn.Module) else set()


def _modules_in_blocks(model: nn.Module, layout: BlockLayout, kind: type) -> list[tuple[str, nn.Module]]:
    """(name, module) of every `kind` module whose parameters all sit in transformer blocks."""
    in_blocks = {id(p) for block in layout.names[1:-1] for _, p in layout.params[block]}
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, kind)
        and next(module.parameters(), None) is not None
        and all(id(p) in in_blocks for p in module.parameters())
    ]


def block_linear_modules(model: nn.Module, layout: BlockLayout) -> list[str]:
    """Full names of every linear layer inside the blocks: the default adapter targets. CNNs whose
    blocks hold no linear layer (ResNet, MobileNet, PoolFormer) get their ordinary convolutions
    instead (peft has LoRA for Conv2d; grouped/depthwise ones are left out, as their weights have
    one input channel per group and little rank to adapt). Full names rather than suffixes such as
    `dense`, which would also catch the pooler and the head."""
    linears = [name for name, _ in _modules_in_blocks(model, layout, nn.Linear)]
    if linears:
        return linears
    return [name for name, conv in _modules_in_blocks(model, layout, nn.Conv2d) if conv.groups == 1]


# Attention key/value projections across families: BERT `key`/`value`, ViT `k_proj`/`v_proj`, DistilBERT `k_lin`.
_KEY_VALUE_NAME = re.compile(r"(^|\.)(k|v|key|value)(_?(proj|lin))?$")


def ia3_modules(model: nn.Module, layout: BlockLayout) -> tuple[list[str], list[str]]:
    """(targets, feed-forward targets) for (IA)^3: the key and value projections, and each block's
    feed-forward down-projection, recognised by shape (more inputs than outputs: BERT's
    `output.dense`, ViT's `mlp.fc2`) so no family needs listing."""
    linears = _modules_in_blocks(model, layout, nn.Linear)
    key_value = [name for name, _ in linears if _KEY_VALUE_NAME.search(name)]
    down = [name for name, m in linears if m.in_features > m.out_features]
    if not key_value or not down:
        raise UserError(
            f"cannot find key/value projections and feed-forward layers in {type(model).__name__} for ia3; "
            "use the lora strategy"
        )
    return key_value + down, down


def head_module_names(model: nn.Module, layout: BlockLayout) -> list[str]:
    """Top-level modules holding the head (`classifier`, DistilBERT's `pre_classifier`): what PEFT
    must train and save in full (`modules_to_save`)."""
    names = []
    for name, _ in layout.params[HEAD]:
        if "." not in name:
            raise UserError(f"head parameter '{name}' belongs to no module, so adapters cannot save it")
        top = name.split(".", 1)[0]
        if top not in names:
            names.append(top)
    return names
