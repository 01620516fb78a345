"""Token classification: file forms, BIO checks, sub-token alignment, seqeval scores, the fortunes NER rules.

Fast: the real MiniLM tokenizer, no training (the end-to-end run is in test_more_tasks_end_to_end.py).
"""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES, run_cli
from test_bad_input import assert_one_line_error

from hf_finetune.data.tags import IGNORE, align_labels, bio_problem, continuation_ids, iob1_to_iob2
from hf_finetune.errors import UserError
from hf_finetune.recipes import config_from_dict
from hf_finetune.tasks import TASKS

TINY_CONLL = FIXTURES / "tiny_ner.conll"
# What tiny_ner.conll holds, checked by hand: sentence words and tags (POS and chunk columns dropped).
TINY_SENTENCES = [
    (["Mark", "Twain", "left", "Hannibal", "for", "New", "York", "in", "June", "1853", "."],
     ["B-PER", "I-PER", "O", "B-LOC", "O", "B-LOC", "I-LOC", "O", "B-DATE", "I-DATE", "O"]),
    (["He", "later", "wrote", "for", "the", "San", "Francisco", "Call", "."],
     ["O", "O", "O", "O", "O", "B-ORG", "I-ORG", "I-ORG", "O"]),
    (["Einstein", "worked", "at", "Princeton", "on", "Mondays", "."],
     ["B-PER", "O", "O", "B-ORG", "O", "B-DATE", "O"]),
    (["The", "meeting", "was", "quiet", "."], ["O", "O", "O", "O", "O"]),
]  # fmt: skip


def token_task(minilm_dir, **values):
    cfg = config_from_dict(
        {"task": "token_classification", "model_name_or_path": minilm_dir, "output_dir": "unused", **values}
    )
    return TASKS.get("token_classification")(cfg)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --- The three file forms ---


def test_conll_text_file_is_read_sentence_by_sentence(minilm_dir):
    task = token_task(minilm_dir, train_file=str(TINY_CONLL), validation_file=str(TINY_CONLL))
    data = task.load_data()
    names = data.label_names
    assert names == ["O", "B-DATE", "I-DATE", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    train = data.splits["train"]
    got = [(row["tokens"], [names[i] for i in row["ner_tags"]]) for row in train]
    assert got == TINY_SENTENCES  # -DOCSTART- lines skipped, blank lines end sentences, tag = last column


def test_csv_with_whitespace_separated_words_and_tags(minilm_dir, tmp_path):
    rows = [{"words": " ".join(w), "tags": " ".join(t)} for w, t in TINY_SENTENCES]
    path = tmp_path / "ner.csv"
    pd.DataFrame(rows * 3).to_csv(path, index=False)
    data = token_task(minilm_dir, train_file=str(path), tokens_column="words", tags_column="tags").load_data()
    assert len(data.splits["train"]) + len(data.splits["validation"]) == 12
    first = next(r for r in data.splits["train"] if r["words"][0] == "Einstein")
    assert [data.label_names[i] for i in first["tags"]] == TINY_SENTENCES[2][1]


def test_iob1_file_needs_tag_scheme_iob1_and_is_converted(minilm_dir, tmp_path):
    iob1 = tmp_path / "iob1.conll"  # the original CoNLL-2003 files: I- starts an entity, B- only between two
    iob1.write_text("Mark I-PER\nTwain I-PER\nmet O\nHuck I-PER\nFinn I-PER\nTom B-PER\n\nin O\nParis I-LOC\n")
    with pytest.raises(UserError, match=r"row 0: tag 'I-PER' at word 1 \('Mark'\) starts the sentence.*iob1"):
        token_task(minilm_dir, train_file=str(iob1)).load_data()
    data = token_task(minilm_dir, train_file=str(iob1), validation_file=str(iob1), tag_scheme="iob1").load_data()
    names = data.label_names
    assert [names[i] for i in data.splits["train"][0]["ner_tags"]] == ["B-PER", "I-PER", "O", "B-PER", "I-PER", "B-PER"]
    assert iob1_to_iob2(["I-LOC", "I-PER", "B-PER", "O", "I-PER"]) == ["B-LOC", "B-PER", "B-PER", "O", "B-PER"]


# --- BIO checks: one line naming the row ---


def test_bio_problems_name_the_word():
    assert bio_problem(["B-PER", "I-PER", "O"], ["Ada", "Lovelace", "wrote"]) is None
    assert "follows 'O'" in bio_problem(["O", "I-LOC"], ["in", "York"])
    assert "follows 'B-PER'" in bio_problem(["B-PER", "I-LOC"], ["Ada", "York"])
    assert "is not O, B-TYPE or I-TYPE" in bio_problem(["PER"], ["Ada"])


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ({"tokens": ["in", "New", "York"], "ner_tags": ["O", "I-LOC", "I-LOC"]},
         r"bad tags in the train split .* row 2: tag 'I-LOC' at word 2 \('New'\) follows 'O', but an entity starts "
         r"with B-LOC"),
        ({"tokens": ["Ada", "Lovelace"], "ner_tags": ["B-PER"]}, r"row 2 has 2 words but 1 tags"),
        ({"tokens": ["Ada"], "ner_tags": ["PERSON"]}, r"row 2: tag 'PERSON' at word 1 \('Ada'\) is not O, B-TYPE"),
        ({"tokens": [], "ner_tags": []}, r"row 2 has no words"),
    ],
)  # fmt: skip
def test_malformed_tags_are_one_line_errors_naming_the_row(bad_row, message, tmp_path, capsys):
    good = [{"tokens": w, "ner_tags": t} for w, t in TINY_SENTENCES[:2]]
    path = write_jsonl(tmp_path / "ner.jsonl", [*good, bad_row, *good])
    out = tmp_path / "out"
    code, _, stderr = run_cli(["train", "--config", "fortunes_ner", "--train_file", str(path), "--output_dir", str(out)],
                              capsys)  # fmt: skip
    assert code == 2
    assert_one_line_error(stderr, message)
    assert not out.exists()


def test_tags_unseen_in_train_are_an_error(minilm_dir, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [{"tokens": ["Ada"], "ner_tags": ["B-PER"]}] * 4)
    validation = write_jsonl(tmp_path / "val.jsonl", [{"tokens": ["Rome"], "ner_tags": ["B-LOC"]}])
    with pytest.raises(UserError, match="tags in validation not seen in train: B-LOC"):
        token_task(minilm_dir, train_file=str(train), validation_file=str(validation)).load_data()


# --- Alignment of word tags with sub-tokens ---


def test_align_labels_first_subtoken_or_all():
    # [CLS] w0 w1 w1 w1 w2 [SEP]; tags: B-PER(1) I-PER(2) O(0) with B-PER -> I-PER for continuations
    word_ids = [None, 0, 1, 1, 1, 2, None]
    assert align_labels(word_ids, [1, 1, 0], False, {1: 2}) == [IGNORE, 1, 1, IGNORE, IGNORE, 0, IGNORE]
    assert align_labels(word_ids, [1, 1, 0], True, {1: 2}) == [IGNORE, 1, 1, 2, 2, 0, IGNORE]
    assert continuation_ids(["O", "B-PER", "I-PER", "B-LOC"]) == {1: 2}  # B-LOC has no I-LOC: stays B-LOC


def test_words_split_into_several_subtokens_get_one_label(minilm_dir, tmp_path):
    """Through the task's own encoding with the real WordPiece tokenizer: `Wittgenstein` is several sub-tokens."""
    rows = [
        {"tokens": ["Ludwig", "Wittgenstein", "visited", "Cambridge"], "ner_tags": ["B-PER", "I-PER", "O", "B-LOC"]}
    ]
    path = write_jsonl(tmp_path / "ner.jsonl", rows)
    for label_all in (False, True):
        task = token_task(minilm_dir, train_file=str(path), validation_file=str(path), label_all_subtokens=label_all)
        data = task.load_data()
        tokenizer = task.load_processor()
        encoded = task.encode(data, tokenizer)
        names = data.label_names
        pieces = tokenizer.convert_ids_to_tokens(encoded["train"][0]["input_ids"])
        assert pieces[:7] == ["[CLS]", "ludwig", "wit", "##t", "##gens", "##tein", "visited"], pieces
        tags = {split: [names[i] if i != IGNORE else None for i in encoded[split][0]["labels"]] for split in encoded}
        n_wittgenstein = pieces.index("visited") - 2  # its sub-tokens: from "wit" up to "visited"
        rest = ["I-PER"] * (n_wittgenstein - 1) if label_all else [None] * (n_wittgenstein - 1)
        assert tags["train"] == [None, "B-PER", "I-PER", *rest, "O", "B-LOC", None]
        # evaluation always scores one tag per word, whatever training does
        assert tags["validation"] == [None, "B-PER", "I-PER", *[None] * (n_wittgenstein - 1), "O", "B-LOC", None]


# --- seqeval scores ---


def test_entity_scores_on_a_known_prediction():
    from hf_finetune.evaluation.metrics import entity_report, entity_scores, make_token_compute_metrics

    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["O", "B-ORG", "O", "O"]]
    # gold entities: PER(0-1), LOC(3), ORG(1-2); predicted: PER(0-1) right, ORG(1) wrong span
    scores = entity_scores(gold, predicted)
    assert (
        scores["precision"] == 0.5 and scores["recall"] == pytest.approx(1 / 3) and scores["f1"] == pytest.approx(0.4)
    )
    assert scores["accuracy"] == 0.75  # 6 of 8 words
    assert (scores["PER_f1"], scores["LOC_f1"], scores["ORG_f1"]) == (1.0, 0.0, 0.0)
    assert entity_report(gold, predicted)["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}

    # The same through Trainer's arrays: logits per sub-token, -100 where nothing is scored.
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    ids = [[names.index(t) for t in row] for row in predicted]
    gold_ids = [[names.index(t) for t in row] for row in gold]
    label_ids = np.full((2, 7), -100)
    logits = np.zeros((2, 7, len(names)))
    for row in range(2):
        positions = [1, 2, 4, 5]  # 0: [CLS], 3: a continuation sub-token, 6: padding
        label_ids[row, positions] = gold_ids[row]
        logits[row, positions, ids[row]] = 5.0
        logits[row, 3, names.index("B-LOC")] = 9.0  # an unscored position must not count

    class EvalPrediction:
        predictions, label_ids = logits, None

    EvalPrediction.label_ids = label_ids
    assert make_token_compute_metrics(names)(EvalPrediction) == pytest.approx(scores)


# --- The offline NER data set: rules on real fortunes text ---


@pytest.mark.parametrize(
    ("text", "entities"),
    [
        ("Never trust a computer you can't lift. -- Stan Masor",
         [("PER", "Stan Masor")]),
        ("Dr. Harold Urey taught in Chicago on Monday, July 4, 1955.",
         [("PER", "Harold Urey"), ("LOC", "Chicago"), ("DATE", "Monday"), ("DATE", "July 4 , 1955")]),
        ("The Lord Chief Justice of Orbury worked for IBM in New York. -- H. L. Mencken, \"Prejudices\"",
         [("ORG", "IBM"), ("LOC", "New York"), ("PER", "H. L. Mencken")]),
        ("Will you marry me in May? Mark my words.", []),
        ("What we cannot speak about we must pass over in silence. -- Wittgenstein", [("PER", "Wittgenstein")]),
    ],
)  # fmt: skip
def test_ner_rules_on_hand_checked_sentences(text, entities):
    from hf_finetune.assets.fortunes_ner import tag_text
    from hf_finetune.data.tags import bio_problem, entity_spans

    tokens, tags = tag_text(text)
    assert bio_problem(tags, tokens) is None
    assert [(kind, " ".join(tokens[a:b])) for kind, a, b in entity_spans(tags)] == entities


def test_fortunes_ner_loader_is_fixed_valid_bio_and_disjoint():
    from hf_finetune.assets.fortunes import fortunes_ner
    from hf_finetune.data.tags import bio_problem

    data = fortunes_ner()
    names = data["train"].features["ner_tags"].feature.names
    assert names == ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-DATE", "I-DATE"]
    assert 13000 < len(data["train"]) + len(data["test"]) < 15000 and len(data["test"]) == 2833
    for row in data["test"].select(range(500)):
        assert bio_problem([names[i] for i in row["ner_tags"]], row["tokens"]) is None
    with_entity = sum(any(row) for row in data["test"]["ner_tags"]) / len(data["test"])
    assert 0.4 < with_entity < 0.6
    train_texts = {" ".join(t) for t in data["train"]["tokens"]}
    assert not train_texts & {" ".join(t) for t in data["test"]["tokens"]}
    assert fortunes_ner()["test"]["tokens"][:50] == data["test"]["tokens"][:50]
