"""Word-level tags for token classification: BIO checks, IOB1 conversion, sub-token alignment, entity spans.

Pure functions on lists, so each rule is tested on its own (`tests/test_token_classification.py`).
Tags follow BIO, also called IOB2: `O` outside entities, `B-TYPE` on an entity's first word,
`I-TYPE` on its other words. IOB1 (the original CoNLL-2003 files) uses `B-` only where two
entities of one type touch; `iob1_to_iob2` converts it.
"""

from __future__ import annotations

import re

IGNORE = -100  # the label PyTorch's cross-entropy skips: special tokens, padding, non-first sub-tokens
TAG = re.compile(r"([BI])-(.+)")


def parse_tag(tag: str) -> tuple[str, str | None]:
    """`B-PER` -> ("B", "PER"), `O` -> ("O", None); anything else -> ("?", None)."""
    if tag == "O":
        return "O", None
    match = TAG.fullmatch(tag)
    return (match.group(1), match.group(2)) if match else ("?", None)


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """An `I-X` that does not continue an entity of type X starts one: it becomes `B-X`."""
    out = []
    previous = "O"
    for tag in tags:
        prefix, kind = parse_tag(tag)
        if prefix == "I" and previous not in (f"B-{kind}", f"I-{kind}"):
            tag = f"B-{kind}"
        out.append(tag)
        previous = tag
    return out


def bio_problem(tags: list[str], words: list[str]) -> str | None:
    """What breaks BIO/IOB2 in one sentence (the first problem), or None."""
    previous = "O"
    for position, (tag, word) in enumerate(zip(tags, words, strict=True), start=1):
        prefix, kind = parse_tag(tag)
        where = f"at word {position} ({word!r})"
        if prefix == "?":
            return f"tag {tag!r} {where} is not O, B-TYPE or I-TYPE"
        if prefix == "I" and previous not in (f"B-{kind}", f"I-{kind}"):
            after = "starts the sentence" if position == 1 else f"follows {previous!r}"
            return (
                f"tag {tag!r} {where} {after}, but an entity starts with B-{kind} in BIO/IOB2 "
                "(for IOB1 files such as the original CoNLL-2003 ones, pass --tag_scheme iob1)"
            )
        previous = tag
    return None


def tag_label_names(tags_seen: set[str]) -> list[str]:
    """`O`, then for each entity type its B- and I- tag (both, even if train only shows one), types sorted."""
    kinds = sorted({parse_tag(t)[1] for t in tags_seen} - {None})
    return ["O", *(f"{p}-{k}" for k in kinds for p in ("B", "I"))]


def continuation_ids(label_names: list[str]) -> dict[int, int]:
    """Label id of `B-X` -> id of `I-X`: the tag of a word's later sub-tokens under `label_all_subtokens`."""
    index = {name: i for i, name in enumerate(label_names)}
    out = {}
    for name, i in index.items():
        prefix, kind = parse_tag(name)
        if prefix == "B" and f"I-{kind}" in index:
            out[i] = index[f"I-{kind}"]
    return out


def align_labels(
    word_ids: list[int | None], word_labels: list[int], label_all_subtokens: bool, continuation: dict[int, int]
) -> list[int]:
    """One label per sub-token: the word's label on its first sub-token; on the others -100, or (with
    `label_all_subtokens`) the word's label with B- turned into I-; -100 on special tokens."""
    labels, previous = [], None
    for word in word_ids:
        if word is None:
            labels.append(IGNORE)
        elif word != previous:
            labels.append(word_labels[word])
        elif label_all_subtokens:
            labels.append(continuation.get(word_labels[word], word_labels[word]))
        else:
            labels.append(IGNORE)
        previous = word
    return labels


def entity_spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """(type, first word, last word + 1) of each entity in a BIO sequence (seqeval's reading, as scored)."""
    from seqeval.metrics.sequence_labeling import get_entities

    return [(kind, start, end + 1) for kind, start, end in get_entities(list(tags))]
