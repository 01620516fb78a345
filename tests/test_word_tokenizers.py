"""Word alignment for token classification across the three kinds of fast tokenizer, and the refusal
of a tokenizer without word_ids. The tokenizers are real ones, trained here in milliseconds with the
`tokenizers` library on a few sentences and saved as the Hub checkpoints ship them (tokenizer.json)."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import BertTokenizer, RobertaTokenizer, XLMRobertaTokenizer

from hf_finetune.data.tags import IGNORE, align_labels
from hf_finetune.errors import UserError
from hf_finetune.modeling.pretokenized import load_word_tokenizer, needs_prefix_space
from hf_finetune.settings.arguments import ModelArguments

CORPUS = [
    "Mark Twain left Hannibal for New York in June 1853.",
    "He later wrote for the San Francisco Call.",
    "Einstein worked at Princeton on Mondays.",
] * 10
WORDS = ["Mark", "Twain", "left", "Hannibal", "for", "New", "York"]
TAGS = [1, 2, 0, 3, 0, 3, 4]  # B-PER I-PER O B-LOC O B-LOC I-LOC


def wordpiece() -> BertTokenizer:
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=90, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))  # fmt: skip
    return BertTokenizer(tokenizer_object=backend)


def byte_level_bpe() -> RobertaTokenizer:
    """As RoBERTa ships it: the space lives inside the token (`ĠTw`), no prefix space by default."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    backend.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=320, special_tokens=specials, initial_alphabet=alphabet))  # fmt: skip
    return RobertaTokenizer(tokenizer_object=backend)


def sentencepiece() -> XLMRobertaTokenizer:
    """A Unigram model with the `▁` word-start marker, as SentencePiece checkpoints convert to fast."""
    backend = Tokenizer(models.Unigram())
    backend.normalizer = normalizers.NFKC()
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    backend.train_from_iterator(CORPUS, trainers.UnigramTrainer(vocab_size=120, special_tokens=specials, unk_token="<unk>"))  # fmt: skip
    return XLMRobertaTokenizer(tokenizer_object=backend)


KINDS = {"wordpiece": wordpiece, "byte-level-bpe": byte_level_bpe, "sentencepiece": sentencepiece}


@pytest.fixture(params=list(KINDS))
def saved(request, tmp_path):
    KINDS[request.param]().save_pretrained(tmp_path)
    return request.param, str(tmp_path)


def pieces_in_sentence(tokenizer, words: list[str]) -> list[list[str]]:
    """Each word's sub-tokens when the words are tokenized as one running text (offsets give the word)."""
    text = " ".join(words)
    starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]
    encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    out: list[list[str]] = [[] for _ in words]
    for token, (start, end) in zip(tokens, encoded["offset_mapping"], strict=True):
        word = max(i for i, s in enumerate(starts) if s <= max(start, end - 1))
        out[word].append(token)
    return out


def test_pre_split_words_are_encoded_as_in_running_text(saved):
    kind, folder = saved
    tokenizer = load_word_tokenizer(ModelArguments(model_name_or_path=folder))
    encoded = tokenizer(WORDS, is_split_into_words=True, add_special_tokens=False)
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    word_ids = encoded.word_ids()
    by_word = [[t for t, w in zip(tokens, word_ids, strict=True) if w == i] for i in range(len(WORDS))]
    running = pieces_in_sentence(tokenizer, WORDS)
    # Every word after the first must match running text exactly; the first has no space before it in a
    # sentence, but with the prefix space a byte-level tokenizer gives it one in both encodings.
    assert by_word[1:] == running[1:], kind
    assert all(by_word), "a word lost all its sub-tokens"


def test_tags_go_on_each_words_first_sub_token(saved):
    _, folder = saved
    tokenizer = load_word_tokenizer(ModelArguments(model_name_or_path=folder))
    word_ids = tokenizer(WORDS, is_split_into_words=True).word_ids()
    labels = align_labels(word_ids, TAGS, False, {1: 2, 3: 4})
    firsts = [k for k, w in enumerate(word_ids) if w is not None and (k == 0 or word_ids[k - 1] != w)]
    assert [labels[k] for k in firsts] == TAGS
    assert all(labels[k] == IGNORE for k in range(len(labels)) if k not in firsts)


def test_byte_level_bpe_gets_its_prefix_space_and_keeps_it_when_saved(tmp_path):
    byte_level_bpe().save_pretrained(tmp_path / "checkpoint")
    raw = RobertaTokenizer.from_pretrained(tmp_path / "checkpoint")
    assert needs_prefix_space(raw)
    # Without the prefix space, "Twain" alone is not the pieces of "Twain" in a sentence (the bug this fixes).
    alone = raw.convert_ids_to_tokens(raw(["Twain"], is_split_into_words=True, add_special_tokens=False)["input_ids"])
    assert alone != pieces_in_sentence(raw, ["Mark", "Twain"])[1]
    tokenizer = load_word_tokenizer(ModelArguments(model_name_or_path=str(tmp_path / "checkpoint")))
    assert not needs_prefix_space(tokenizer)
    tokenizer.save_pretrained(tmp_path / "trained")  # what the run's output folder holds for the pipeline
    assert not needs_prefix_space(RobertaTokenizer.from_pretrained(tmp_path / "trained"))


@pytest.mark.parametrize("kind", ["wordpiece", "sentencepiece"])
def test_tokenizers_that_mark_words_themselves_are_left_alone(kind, tmp_path):
    KINDS[kind]().save_pretrained(tmp_path)
    assert not needs_prefix_space(load_word_tokenizer(ModelArguments(model_name_or_path=str(tmp_path))))


def test_a_tokenizer_without_word_ids_is_refused_in_one_line(tmp_path):
    """A pure-Python (slow) tokenizer: vocab.txt only, as older BERT checkpoints ship."""
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nmark\ntwain\n", encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text('{"tokenizer_class": "BertTokenizerLegacy"}', encoding="utf-8")
    with pytest.raises(UserError) as refusal:
        load_word_tokenizer(ModelArguments(model_name_or_path=str(tmp_path)))
    message = str(refusal.value)
    assert "\n" not in message and "BertTokenizerLegacy" in message and "word_ids()" in message
    assert "tokenizer.json" in message
