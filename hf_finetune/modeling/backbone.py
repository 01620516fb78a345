"""A frozen checkpoint as a feature extractor: the base model with its tokenizer or image processor, and one pooling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hf_finetune.data.images import to_rgb
from hf_finetune.errors import UserError, first_line
from hf_finetune.modeling.adapters import is_adapter_folder
from hf_finetune.modeling.loading import (
    PROCESSOR_FILES,
    TOKENIZER_FILES,
    check_checkpoint_folder,
    check_remote_code,
    recorded_checkpoint_name,
    resolve_checkpoint,
)
from hf_finetune.settings.arguments import ModelArguments


class Backbone:
    """A frozen `AutoModel` with its tokenizer or image processor, in eval mode."""

    def __init__(self, name: str, model, tokenizer=None, image_processor=None, hidden_size: int | None = None):
        self.name, self.model, self.tokenizer, self.image_processor = name, model, tokenizer, image_processor
        self.hidden_size = int(hidden_size or model.config.hidden_size)

    @property
    def modality(self) -> str:
        return "text" if self.tokenizer is not None else "image"

    def encode(self, values: list, pooling: str, batch_size: int, max_seq_length: int, progress: bool) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        text = isinstance(values[0], str)
        if text and self.tokenizer is None:
            raise UserError(f"{self.name} is an image checkpoint (no tokenizer) and the column holds text")
        if not text and self.image_processor is None:
            raise UserError(f"{self.name} is a text checkpoint (no image processor) and the column holds images")
        order = _length_order(self.tokenizer, values, max_seq_length) if text else list(range(len(values)))
        out = np.zeros((len(values), self.hidden_size), dtype=np.float32)
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        with torch.inference_mode():
            for rows in tqdm(
                batches, desc=f"Features ({self.name.rsplit('/', 1)[-1]}, {pooling})", disable=not progress
            ):
                batch = [values[i] for i in rows]
                pooled = self._text(batch, pooling, max_seq_length) if text else self._images(batch, pooling)
                out[rows] = pooled.float().cpu().numpy()
        return out

    def _text(self, texts: list[str], pooling: str, max_seq_length: int):
        inputs = self.tokenizer(texts, padding=True, truncation=True, max_length=max_seq_length, return_tensors="pt")
        return self.pooled(dict(inputs), pooling)

    def _images(self, images: list, pooling: str):

        pixel_values = self.image_processor(images=[to_rgb(i) for i in images], return_tensors="pt")["pixel_values"]
        return self.pooled({"pixel_values": pixel_values}, pooling)

    def pooled(self, inputs: dict, pooling: str) -> torch.Tensor:
        """One vector per example from the model's input tensors: the seam an exported backbone replaces."""
        return pool(self.model(**inputs), pooling, inputs.get("attention_mask"))


def _length_order(tokenizer, texts: list[str], max_seq_length: int) -> list[int]:
    """Example indices sorted by token count (longest first): batches of similar length pad little."""
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_seq_length)["input_ids"]]
    return sorted(range(len(texts)), key=lambda i: -lengths[i])


def load_backbone(
    name: str, *, revision: str | None = None, trust_remote_code: bool = False, allow_pickle: bool = False
) -> Backbone:
    """`AutoModel` of a checkpoint (the base model of a classifier folder) with its tokenizer or image processor."""
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    checkpoint = resolve_checkpoint(name)
    if Path(checkpoint).is_dir() and is_adapter_folder(Path(checkpoint)):
        raise UserError(f"{name} holds PEFT adapters; merge them first (`hf-finetune merge`) and extract from that")
    check_checkpoint_folder(checkpoint, allow_pickle)
    args = ModelArguments(model_name_or_path=name, revision=revision, trust_remote_code=trust_remote_code)
    check_remote_code(checkpoint, args)
    folder = Path(checkpoint)
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
    # A local folder says which it has; a Hub id: try the tokenizer first, then the image processor.
    has_tokenizer = not folder.is_dir() or any((folder / f).is_file() for f in TOKENIZER_FILES)
    has_processor = not folder.is_dir() or any((folder / f).is_file() for f in PROCESSOR_FILES)
    tokenizer = processor = None
    try:
        if has_tokenizer:
            try:
                tokenizer = AutoTokenizer.from_pretrained(checkpoint, **kwargs)
            except Exception:
                if not has_processor:
                    raise
        if tokenizer is None and has_processor:
            processor = AutoImageProcessor.from_pretrained(checkpoint, **kwargs)
        if tokenizer is None and processor is None:
            raise UserError(f"{name} has neither a tokenizer nor an image processor: cannot turn inputs into features")
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # a classifier folder's head and a new pooler are "unused"/"new": expected
        try:
            model = AutoModel.from_pretrained(
                checkpoint, use_safetensors=None if allow_pickle else True, add_pooling_layer=False, **kwargs
            )
        except TypeError:  # architectures without a pooler do not take the argument
            model = AutoModel.from_pretrained(checkpoint, use_safetensors=None if allow_pickle else True, **kwargs)
        finally:
            hf_logging.set_verbosity(verbosity)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"cannot load backbone '{checkpoint}': {first_line(exc)}") from None
    model.eval()
    model.requires_grad_(False)
    return Backbone(recorded_checkpoint_name(name), model, tokenizer, processor)


def feature_size(config) -> int:
    """Width of the pooled feature: `hidden_size` (BERT, ViT), or the last stage's width (ConvNeXt, ResNet)."""
    size = getattr(config, "hidden_size", None)
    if size is None and getattr(config, "hidden_sizes", None):
        size = config.hidden_sizes[-1]
    if size is None:
        raise UserError(f"cannot tell the feature width of a {config.model_type} encoder (no hidden_size)")
    return int(size)


def pool(outputs, pooling: str = "cls", attention_mask=None) -> torch.Tensor:
    """One vector per example from an encoder's output: the one pooling rule of the suite.

    A CNN's feature map (batch, channels, h, w) has no tokens: its positions are averaged. A token sequence
    gives its first token ([CLS], what a classification head reads) for `cls`; for `mean`, the average of the
    real tokens (`attention_mask`, text) or of the patch tokens after [CLS] (images)."""
    hidden = outputs.last_hidden_state
    if hidden.dim() == 4:
        return hidden.mean(dim=(2, 3))
    if pooling == "cls":
        return hidden[:, 0]
    if attention_mask is None:
        return hidden[:, 1:].mean(1)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


class PooledEncoder(torch.nn.Module):
    """A backbone's model and its pooling as one module: what an export traces, so its graph outputs the
    features a classical head reads (no pooling code needed beside the graph)."""

    def __init__(self, model, pooling: str):
        super().__init__()
        self.model, self.pooling = model, pooling

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, pixel_values=None):
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids,
                 "pixel_values": pixel_values}  # fmt: skip
        return pool(self.model(**{k: v for k, v in given.items() if v is not None}), self.pooling, attention_mask)
