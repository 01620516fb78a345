"""Tokenizers fed words that are already split (token classification): word ids, and byte-level BPE.

Tags belong to words, so token classification tokenizes pre-split words
(`is_split_into_words=True`) and aligns tags through `word_ids()`, which only fast (Rust-backed)
tokenizers provide. Three kinds of fast tokenizer matter:

- WordPiece (BERT, ELECTRA, MPNet) and SentencePiece-style Metaspace (XLM-R, ALBERT, DeBERTa-v2)
  mark word starts themselves (`##` continuations, the `▁` prefix), so a word alone is encoded as
  in running text;
- byte-level BPE (RoBERTa, Longformer, DeBERTa-v1, GPT-2) stores the space *in* the token: "Twain"
  in a sentence is `ĠTw ain`, but the word alone is `Tw ain`, pieces the model met only at the
  very start of a text. With `add_prefix_space=True` every word gets its space back, which is what
  RoBERTa's tokenizer demanded for pre-split input before transformers 5 silently dropped the check.
  The folder we save keeps the setting, so `pipeline("token-classification")` encodes raw text
  the same way (its first word gets the space too, as in training).
"""

from __future__ import annotations

import json
import logging

from hf_finetune.errors import UserError
from hf_finetune.modeling.loading import load_tokenizer
from hf_finetune.settings.arguments import ModelArguments

logger = logging.getLogger("hf_finetune")


def load_word_tokenizer(args: ModelArguments):
    """The checkpoint's tokenizer, checked for word ids and set up for pre-split words."""
    tokenizer = load_tokenizer(args)
    name = args.tokenizer_name or args.model_name_or_path
    if not tokenizer.is_fast:
        raise UserError(
            f"the tokenizer of {name} ({type(tokenizer).__name__}) is not a fast tokenizer and has no word_ids(), "
            "which token classification needs to put each word's tag on its sub-tokens; use a checkpoint that "
            "ships a tokenizer.json, or point --tokenizer_name at a fast tokenizer with the same vocabulary"
        )
    if not needs_prefix_space(tokenizer):
        return tokenizer
    tokenizer = load_tokenizer(args, add_prefix_space=True)
    if needs_prefix_space(tokenizer):
        raise UserError(
            f"the byte-level BPE tokenizer of {name} ignores add_prefix_space=True, so words given one by one "
            "would be encoded unlike running text; set add_prefix_space in its tokenizer_config.json"
        )
    logger.info("byte-level BPE tokenizer: loaded with add_prefix_space=True, so each word is encoded as in a sentence")
    return tokenizer


def needs_prefix_space(tokenizer) -> bool:
    """Whether a byte-level pre-tokenizer would encode a lone word without its leading space."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    return any(
        p.get("type") == "ByteLevel" and not p.get("add_prefix_space") for p in _parts(state.get("pre_tokenizer"))
    )


def _parts(pre_tokenizer: dict | None) -> list[dict]:
    """A pre-tokenizer and, for a `Sequence`, the ones inside it."""
    if not pre_tokenizer:
        return []
    return [pre_tokenizer, *(p for inner in pre_tokenizer.get("pretokenizers", []) for p in _parts(inner))]
