"""Recipe + command-line precedence, unknown keys, and reproducing a run from its folder."""

import dataclasses

import pytest
import transformers
import yaml

from hf_finetune.errors import UserError
from hf_finetune.recipes import config_from_dict, list_recipes, load_recipe, parse_config, resolve_recipe_path
from hf_finetune.settings.arguments import OWN_TRAINING_FIELDS, FinetuneTrainingArguments, write_run_config

BASE = {"model_name_or_path": "packaged:all-MiniLM-L6-v2", "dataset_name": "packaged:fortunes-topics"}


def write_recipe(tmp_path, values, name="my_recipe.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


def test_recipe_sets_values_and_command_line_wins(tmp_path):
    recipe = write_recipe(tmp_path, {**BASE, "learning_rate": 3e-4, "num_train_epochs": 2, "text_column": "review"})
    cfg = parse_config(["--config", str(recipe), "--num_train_epochs", "5"])
    assert cfg.training.learning_rate == 3e-4  # from the recipe
    assert cfg.training.num_train_epochs == 5  # the command line wins
    assert cfg.data.text_column == "review"
    assert cfg.training.per_device_train_batch_size == 32  # our default, untouched


def test_hyphen_and_underscore_spellings_are_the_same_flag(tmp_path):
    recipe = write_recipe(tmp_path, BASE)
    a = parse_config(["--config", str(recipe), "--max-train-samples", "7"])
    b = parse_config(["--config", str(recipe), "--max_train_samples", "7"])
    assert a.data.max_train_samples == b.data.max_train_samples == 7


def test_unknown_recipe_key_is_named(tmp_path):
    recipe = write_recipe(tmp_path, {**BASE, "learning_rat": 1e-3})
    with pytest.raises(UserError, match="learning_rat"):
        parse_config(["--config", str(recipe)])


def test_unknown_command_line_option_is_named(tmp_path):
    recipe = write_recipe(tmp_path, BASE)
    with pytest.raises(UserError, match="--no_such_option"):
        parse_config(["--config", str(recipe), "--no_such_option", "1"])


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("task: text_classification\nlearning_rate: [1e-4\n", encoding="utf-8")
    with pytest.raises(UserError, match="not valid YAML at line"):
        load_recipe(path)


def test_strategy_list_in_yaml_composes_with_plus(tmp_path):
    recipe = write_recipe(tmp_path, {**BASE, "strategy": ["full", "other"]})
    assert load_recipe(recipe)["strategy"] == "full+other"


def test_default_output_dir_is_deterministic_from_recipe(tmp_path):
    recipe = write_recipe(tmp_path, BASE, name="topics.yaml")
    first = parse_config(["--config", str(recipe)]).training.output_dir
    second = parse_config(["--config", str(recipe)]).training.output_dir
    assert first == second == "outputs/topics-full"
    given = parse_config(["--config", str(recipe), "--output_dir", str(tmp_path / "x")]).training.output_dir
    assert given == str(tmp_path / "x")


def test_run_config_yaml_reproduces_the_run(tmp_path):
    recipe = write_recipe(
        tmp_path,
        {
            **BASE,
            "learning_rate": 1e-4,
            "eval_strategy": "steps",
            "eval_steps": 5,
            "save_strategy": "steps",
            "save_steps": 5,
            "report_to": "tensorboard",
        },
    )
    cfg = parse_config(["--config", str(recipe), "--seed", "7", "--output_dir", str(tmp_path / "out")])
    saved = tmp_path / "run_config.yaml"
    write_run_config(cfg, saved)
    again = parse_config(["--config", str(saved)])
    assert again.to_recipe() == cfg.to_recipe()
    assert again.training.seed == 7 and again.training.eval_steps == 5
    assert again.training.output_dir == str(tmp_path / "out")


def test_secrets_never_reach_run_config(tmp_path):
    recipe = write_recipe(tmp_path, BASE)
    cfg = parse_config(["--config", str(recipe), "--hub_token", "hf_SECRETsecretSECRET"])
    saved = tmp_path / "run_config.yaml"
    write_run_config(cfg, saved)
    assert "hf_SECRET" not in saved.read_text()


def test_overridden_training_defaults_are_real_trainingarguments_fields():
    """A default set on a field TrainingArguments no longer has (5.x dropped warmup_ratio) does nothing."""
    parent = {f.name for f in dataclasses.fields(transformers.TrainingArguments)}
    ours = set(FinetuneTrainingArguments.__annotations__)
    assert ours - OWN_TRAINING_FIELDS <= parent, ours - OWN_TRAINING_FIELDS - parent
    assert OWN_TRAINING_FIELDS <= ours and not OWN_TRAINING_FIELDS & parent, "an own field shadows a Trainer field"


@pytest.mark.parametrize("name", sorted(list_recipes()))
def test_every_shipped_recipe_resolves(name):
    cfg = parse_config(["--config", name])
    assert cfg.model.model_name_or_path and (cfg.data.dataset_name or cfg.data.train_file)
    fixed = load_recipe(resolve_recipe_path(name)).get("output_dir")  # one cached path (the pretrained ViT)
    assert cfg.training.output_dir == fixed if fixed else cfg.training.output_dir.startswith(f"outputs/{name}-")


def test_dict_config_for_the_python_api():
    cfg = config_from_dict({**BASE, "strategy": ["full"], "num_train_epochs": 1}, recipe="tasks/recipes/x.yaml")
    assert cfg.strategy.strategy_names == ["full"]
    assert cfg.training.output_dir == "outputs/x-full"
    with pytest.raises(UserError, match="bogus"):
        config_from_dict({**BASE, "bogus": 1})
