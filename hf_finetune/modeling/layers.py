"""One depth axis for every encoder: `embeddings`, `block.0` ... `block.{n-1}`, `head`.

Layer-wise learning-rate decay, gradual unfreezing and "train the top k layers" all need
to know which layer a parameter belongs to and how deep that layer sits. Module paths
differ across families (`bert.encoder.layer.N`, `vit.layers.N`, `distilbert.transformer.layer.N`)
and move between transformers releases, so the layout is discovered from structure
instead of names: the base model is `model.base_model`, its layers are its longest
`nn.ModuleList` of same-class modules, and everything outside it is the task's head.

Where each parameter goes, and why:

- inside a layer -> that layer's block;
- outside `model.base_model` -> `head`, so `head` is exactly what the task added on top of
  the pretrained network (classifier, DistilBERT's `pre_classifier`, RoBERTa's dense layer);
- in the base model, before the layers and named like embeddings (or the module returned
  by `get_input_embeddings()`) -> `embeddings`;
- in the base model, after the layers and named like a norm or pooler (ViT's final
  `layernorm`, BERT's `pooler`) -> the *top block*. They are pretrained and only ever see
  the top layer's output, so they share its depth: freezing "all but the head" then
  gives a true linear probe on pretrained features, and layer-wise decay gives them the
  top layer's rate rather than the fresh head's;
- anything else raises `UserError` naming the parameter: a silently misplaced parameter
  would get the wrong learning rate or stay frozen with no sign of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from torch import nn

from hf_finetune.errors import UserError

EMBEDDINGS, HEAD = "embeddings", "head"

# Families whose layers are split into stages (a ModuleList of stages, each with its own
# ModuleList of layers). The generic rule would pick one stage's layers, so these name
# (stage list in the base model, layer list in each stage); stages are flattened in order.
# A stage's other parameters (Swin's patch merging, run after its layers) join its top layer.
STAGED_FAMILIES: dict[str, tuple[str, str]] = {
    "swin": ("encoder.layers", "blocks"),
    "swinv2": ("encoder.layers", "blocks"),
    "donut-swin": ("encoder.layers", "blocks"),
}

_EMBEDDING_NAME = re.compile(r"embed", re.IGNORECASE)
_TAIL_NAME = re.compile(r"norm|pool|ln_?f", re.IGNORECASE)


@dataclass
class BlockLayout:
    """Parameters grouped by depth; `names` is bottom to top and always starts with
    `embeddings` and ends with `head` (either may be empty), so depth = position."""

    names: list[str]
    params: dict[str, list[tuple[str, nn.Parameter]]]
    _owner: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._owner = {name: block for block in self.names for name, _ in self.params[block]}

    @property
    def num_blocks(self) -> int:
        """Transformer layers only, the `n` of `block.0` ... `block.{n-1}`."""
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


def discover_blocks(model: nn.Module) -> BlockLayout:
    base = model.base_model
    prefix = next(name for name, module in model.named_modules() if module is base)
    layers = _layers(base, model.config.model_type)
    names = [EMBEDDINGS, *(f"block.{i}" for i in range(len(layers))), HEAD]

    block_of_param: dict[int, str] = {}
    for i, layer_params in enumerate(layers):
        for param in layer_params:
            if id(param) in block_of_param:
                raise UserError(f"a parameter is shared by {block_of_param[id(param)]} and block.{i}: no single depth")
            block_of_param[id(param)] = f"block.{i}"

    base_params = list(base.named_parameters())
    in_layer = [i for i, (_, p) in enumerate(base_params) if id(p) in block_of_param]
    first, last = in_layer[0], in_layer[-1]
    input_embeddings = _input_embedding_params(base)
    for position, (name, param) in enumerate(base_params):
        if id(param) in block_of_param:
            continue
        if position < first and (id(param) in input_embeddings or _EMBEDDING_NAME.search(name)):
            block_of_param[id(param)] = EMBEDDINGS
        elif position > last and _TAIL_NAME.search(name):
            block_of_param[id(param)] = names[-2]
        else:
            full = f"{prefix}.{name}" if prefix else name
            raise UserError(
                f"parameter '{full}' of {type(model).__name__} fits no block: it is in the base model but not in "
                "a layer, not an embedding before the layers and not a final norm/pooler after them; "
                "add its family to hf_finetune.layers.STAGED_FAMILIES or extend the rules there"
            )

    params: dict[str, list[tuple[str, nn.Parameter]]] = {block: [] for block in names}
    for name, param in model.named_parameters():
        params[block_of_param.get(id(param), HEAD)].append((name, param))
    return BlockLayout(names=names, params=params)


def _layers(base: nn.Module, model_type: str) -> list[list[nn.Parameter]]:
    """The parameters of each transformer layer, bottom to top."""
    if model_type not in STAGED_FAMILIES:
        return [list(layer.parameters()) for layer in _longest_stack(base)]
    stages_path, layers_name = STAGED_FAMILIES[model_type]
    layers: list[list[nn.Parameter]] = []
    for stage in base.get_submodule(stages_path):
        stage_layers = [list(layer.parameters()) for layer in getattr(stage, layers_name)]
        owned = {id(p) for layer in stage_layers for p in layer}
        stage_layers[-1] += [p for p in stage.parameters() if id(p) not in owned]
        layers += stage_layers
    return layers


def _longest_stack(base: nn.Module) -> nn.ModuleList:
    """Longest ModuleList of same-class modules; ties go to the outermost, earliest one,
    since inner lists (heads, experts) are parts of a layer rather than layers."""
    best: nn.ModuleList | None = None
    for module in base.modules():
        if (
            isinstance(module, nn.ModuleList)
            and len(module) > 0
            and len({type(child) for child in module}) == 1
            and (best is None or len(module) > len(best))
        ):
            best = module
    if best is None or next(best.parameters(), None) is None:
        raise UserError(
            f"{type(base).__name__} has no stack of identical layers (nn.ModuleList) to index; "
            "add its family to hf_finetune.layers.STAGED_FAMILIES"
        )
    return best


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
    """Full names of every linear layer inside the blocks: the default adapter targets.
    Full names rather than suffixes such as `dense`, which would also catch the pooler and the head."""
    return [name for name, _ in _modules_in_blocks(model, layout, nn.Linear)]


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
