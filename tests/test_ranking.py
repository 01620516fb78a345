"""`hf-finetune rank`: candidates measured on the same sample, ranked deterministically, refused when unfit.

Candidates are tiny checkpoints built locally from configs (random init, with the packaged MiniLM's
tokenizer, or the suite's ViT image processor); the data is real (fortunes, digits).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from conftest import read_json, run_cli
from transformers import AutoTokenizer, BertConfig, BertModel

from hf_finetune.analysis.ranking import leep

TINY_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)


def test_leep_is_zero_when_the_source_labels_determine_the_target():
    labels = np.array([0, 1, 2, 0, 1, 2])
    theta = np.eye(3)[labels]  # the source head predicts a class that maps one-to-one onto the target
    assert leep(theta, labels) == pytest.approx(0.0, abs=1e-9)


def test_leep_of_an_uninformative_head_is_the_label_log_likelihood():
    labels = np.array([0, 0, 0, 1])
    theta = np.full((4, 5), 0.2)  # the same prediction for every input: only the marginal P(y) is learnt
    expected = np.mean(np.log([0.75, 0.75, 0.75, 0.25]))
    assert leep(theta, labels) == pytest.approx(expected)
    informative = np.array([[0.9, 0.1], [0.8, 0.2], [0.9, 0.1], [0.1, 0.9]])
    assert leep(informative, labels) > leep(theta[:, :2], labels)


def tiny_bert(folder, minilm_dir, seed: int):
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, **TINY_BERT)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_text_candidates(tmp_path_factory, minilm_dir) -> list[str]:
    root = tmp_path_factory.mktemp("candidates")
    return [tiny_bert(root / "b", minilm_dir, 1), tiny_bert(root / "a", minilm_dir, 2)]


def rank_argv(models, fortunes_csv, out) -> list[str]:
    data = ["--config", "fortunes_topics", "--data", str(fortunes_csv["train"]), "--text_column", "review",
            "--label_column", "topic"]  # fmt: skip
    return ["rank", "--models", ",".join(models), *data, "--sample", "60", "--out", str(out)]


def test_rank_measures_every_candidate_and_orders_them_the_same_way_twice(tiny_text_candidates, fortunes_csv,
                                                                          tmp_path, capsys):  # fmt: skip
    first, second = tmp_path / "one" / "r.yaml", tmp_path / "two" / "r.yaml"
    code, out, err = run_cli(rank_argv(tiny_text_candidates, fortunes_csv, first), capsys)
    assert code == 0, err
    code, _, err = run_cli(rank_argv(tiny_text_candidates, fortunes_csv, second), capsys)
    assert code == 0, err
    a, b = read_json(first.with_suffix(".json")), read_json(second.with_suffix(".json"))
    assert [c["model"] for c in a["candidates"]] == [c["model"] for c in b["candidates"]]
    assert [c["probe"] for c in a["candidates"]] == [c["probe"] for c in b["candidates"]]
    for c in a["candidates"]:
        assert 0 <= c["probe"] <= 1 and 0 <= c["knn"] <= 1 and np.isfinite(c["logme"])
        assert c["leep"] is None and "no classifier head" in c["leep_note"]  # BertModel: no head of its own
        assert c["num_blocks"] == 2 and c["reasons"]
    probes = [c["probe"] for c in a["candidates"]]
    assert probes == sorted(probes, reverse=True) and [c["rank"] for c in a["candidates"]] == [1, 2]
    recipe = yaml.safe_load(first.read_text())
    assert recipe["model_name_or_path"] == a["candidates"][0]["model"] and recipe["strategy"]
    assert first.read_text().startswith("# Recommended by `hf-finetune rank`")
    assert "| rank | checkpoint |" in out and first.with_suffix(".md").is_file()
    assert "reused from the cache" not in err  # the second run (another --out) used its own cache folder


def test_rank_reuses_cached_features(tiny_text_candidates, fortunes_csv, tmp_path, capsys):
    out = tmp_path / "r.yaml"
    assert run_cli(rank_argv(tiny_text_candidates, fortunes_csv, out), capsys)[0] == 0
    code, _, err = run_cli(rank_argv(tiny_text_candidates, fortunes_csv, out), capsys)
    assert code == 0 and err.count("reused from the cache") == 2


def test_vision_candidates_with_a_head_get_leep(tmp_path, digit_folder, capsys):
    from hf_finetune.assets.models import write_init_checkpoint

    models = [str(write_init_checkpoint(tmp_path / f"vit{s}", ["a", "b", "c", "d", "e"], seed=s)) for s in (0, 1)]
    out = tmp_path / "r.yaml"
    argv = ["rank", "--models", ",".join(models), "--data", str(digit_folder), "--sample", "60", "--out", str(out)]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    ranking = read_json(out.with_suffix(".json"))
    assert all(c["leep"] is not None and c["leep"] <= 0 for c in ranking["candidates"])
    assert yaml.safe_load(out.read_text())["task"] == "image_classification"


@pytest.mark.parametrize("problem", ["image candidate for text", "no tokenizer or processor", "one candidate"])
def test_rank_refuses_unfit_candidates_before_any_work(problem, tiny_text_candidates, fortunes_csv, tmp_path,
                                                       capsys):  # fmt: skip
    from hf_finetune.assets.models import write_init_checkpoint

    models = {
        "image candidate for text": [tiny_text_candidates[0], str(write_init_checkpoint(tmp_path / "vit", ["a", "b"]))],
        "no tokenizer or processor": [tiny_text_candidates[0], str(tmp_path / "bare")],
        "one candidate": [tiny_text_candidates[0]],
    }[problem]
    if problem == "no tokenizer or processor":
        BertModel(BertConfig(**TINY_BERT)).save_pretrained(tmp_path / "bare")
    out = tmp_path / "out" / "r.yaml"
    capsys.readouterr()  # what building the candidates printed
    code, _, err = run_cli(rank_argv(models, fortunes_csv, out), capsys)
    expected = {"image candidate for text": "is an image checkpoint", "no tokenizer or processor": "neither a tokenizer",
                "one candidate": "at least two"}[problem]  # fmt: skip
    assert code == 2 and expected in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.parent.exists()
