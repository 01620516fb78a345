"""`hf-finetune train` on checkpoints of families other than BERT and ViT, as a user brings them: a folder
with a bare base model (as sentence encoders and backbones ship) and its tokenizer or image processor.
Each run must finish and leave a folder that the matching `transformers.pipeline` loads and runs.

The checkpoints are tiny random models of the real architectures (built offline from their configs)
with real tokenizers trained here; the data is real (fortunes text, NER fortunes, digit images).
"""

from __future__ import annotations

import pytest
from conftest import csv_recipe_args, read_json
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoConfig, AutoModel, pipeline

from hf_finetune.analysis import conformance
from hf_finetune.cli import main

pytestmark = pytest.mark.slow
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
SMALL = ["--max_train_samples", "64", "--max_eval_samples", "32", "--num_train_epochs", "1",
         "--per_device_train_batch_size", "16", "--max_seq_length", "32"]  # fmt: skip


def save_base_model(family: str, folder, **config):
    """The family's tiny config, saved as a bare base model (no task head), as Hub encoders ship."""
    values = {**conformance.BY_TYPE[family].config, "max_position_embeddings": 80, **config}
    AutoModel.from_config(AutoConfig.for_model(family, **values)).save_pretrained(folder)


def texts(fortunes, n=300) -> list[str]:
    return list(fortunes["train"]["text"][:n])


@pytest.fixture(scope="module")
def mpnet_dir(tmp_path_factory, fortunes):
    """MPNet (all-mpnet-base-v2's architecture): its shared relative-attention table used to stop `full`."""
    from transformers import MPNetTokenizer

    folder = tmp_path_factory.mktemp("mpnet")
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))  # MPNet's unknown token; its others are RoBERTa's
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.train_from_iterator(
        texts(fortunes), trainers.WordPieceTrainer(vocab_size=400, special_tokens=[*SPECIALS, "[UNK]"])
    )
    tokenizer = MPNetTokenizer(tokenizer_object=backend)
    tokenizer.save_pretrained(folder)
    save_base_model("mpnet", folder, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    return folder


@pytest.fixture(scope="module")
def roberta_dir(tmp_path_factory, fortunes):
    """RoBERTa with a byte-level BPE tokenizer saved without add_prefix_space, as roberta-base ships."""
    from transformers import RobertaTokenizer

    folder = tmp_path_factory.mktemp("roberta")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    backend.train_from_iterator(
        texts(fortunes), trainers.BpeTrainer(vocab_size=500, special_tokens=SPECIALS, initial_alphabet=alphabet)
    )
    tokenizer = RobertaTokenizer(tokenizer_object=backend)
    tokenizer.save_pretrained(folder)
    save_base_model("roberta", folder, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    return folder


@pytest.fixture(scope="module")
def convnext_dir(tmp_path_factory):
    """A staged CNN: ConvNeXt with depths [1, 2] (3 blocks counted by layer)."""
    from transformers import ConvNextImageProcessor

    folder = tmp_path_factory.mktemp("convnext")
    save_base_model("convnext", folder, max_position_embeddings=None)
    ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=1.0).save_pretrained(folder)
    return folder


def test_mpnet_full_fine_tuning_loads_in_the_text_pipeline(mpnet_dir, fortunes_csv, tmp_path):
    out = tmp_path / "mpnet-topics"
    argv = ["train", *csv_recipe_args(fortunes_csv["train"]), "--model_name_or_path", str(mpnet_dir), *SMALL]
    assert main([*argv, "--strategy", "full", "--output_dir", str(out)]) == 0
    labels = set(read_json(out / "config.json")["id2label"].values())
    prediction = pipeline("text-classification", model=str(out))("Computers are faster than ever.")[0]
    assert prediction["label"] in labels and len(labels) == 4


def test_roberta_token_classification_with_llrd_loads_in_the_ner_pipeline(roberta_dir, tmp_path):
    out = tmp_path / "roberta-ner"
    argv = ["train", "--config", "fortunes_ner", "--model_name_or_path", str(roberta_dir), *SMALL]
    assert main([*argv, "--strategy", "llrd", "--output_dir", str(out)]) == 0
    assert read_json(out / "tokenizer_config.json").get("add_prefix_space") is True
    tagger = pipeline("token-classification", model=str(out), aggregation_strategy="first")
    entities = tagger("Mark Twain left Hannibal for New York in June 1853.")
    tags = {name.split("-", 1)[-1] for name in read_json(out / "config.json")["id2label"].values()}
    assert isinstance(entities, list) and all(e["entity_group"] in tags for e in entities)


def test_convnext_freeze_bottom_loads_in_the_image_pipeline(convnext_dir, digit_folder, digits_data, tmp_path):
    out = tmp_path / "convnext-digits"
    argv = ["train", "--config", "image_folder", "--model_name_or_path", str(convnext_dir), "--dataset_name",
            str(digit_folder), "--num_train_epochs", "1", "--strategy", "freeze_bottom", "--freeze_num_layers", "1"]  # fmt: skip
    assert main([*argv, "--output_dir", str(out)]) == 0
    blocks = {row["block"]: row for row in read_json(out / "metrics.json")["blocks"]}
    assert set(blocks) == {"embeddings", "block.0", "block.1", "block.2", "head"}
    assert blocks["block.0"]["trainable"] == 0 and blocks["block.1"]["trainable"] > 0
    scores = pipeline("image-classification", model=str(out))(digits_data["test"][0]["image"].convert("RGB"))
    assert {s["label"] for s in scores} <= {"0", "1", "7"}


def test_vit_best_model_reload_prints_no_unexpected_keys(vit_init_dir, digit_folder, tmp_path, caplog, capsys):
    """ViT checkpoints are saved under legacy weight names; reloading the best one is correct and silent."""
    out = tmp_path / "vit-digits"
    argv = ["train", "--config", "image_folder", "--model_name_or_path", str(vit_init_dir), "--dataset_name",
            str(digit_folder), "--num_train_epochs", "1", "--output_dir", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert read_json(out / "trainer_state.json")["best_model_checkpoint"]
    messages = [record.getMessage().lower() for record in caplog.records]
    assert not [m for m in messages if "unexpected keys" in m or "missing keys" in m]
    assert "reloaded the best checkpoint" in capsys.readouterr().err  # our log: stderr, not propagated
