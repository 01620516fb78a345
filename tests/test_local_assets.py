"""The one loader of the real fortunes topic set: deterministic, filtered, no leakage."""

from collections import Counter

from hf_finetune.local_assets import FORTUNE_MAX_CHARS, FORTUNE_MIN_CHARS, FORTUNE_TOPICS, fortunes_topics


def test_fortunes_topics_shape_and_filter(fortunes):
    assert set(fortunes) == {"train", "test"}
    assert fortunes["train"].features["label"].names == list(FORTUNE_TOPICS)
    total = len(fortunes["train"]) + len(fortunes["test"])
    assert 2500 < total < 3000  # ~2,760 entries of 20-600 characters in the four categories
    for text in fortunes["train"]["text"][:500]:
        assert FORTUNE_MIN_CHARS <= len(text) <= FORTUNE_MAX_CHARS
        assert "\n" not in text and "  " not in text
    assert len(Counter(fortunes["test"]["label"])) == 4


def test_fortunes_split_is_fixed_and_disjoint(fortunes):
    again = fortunes_topics()
    assert again["test"]["text"] == fortunes["test"]["text"]
    assert not set(fortunes["train"]["text"]) & set(fortunes["test"]["text"])
