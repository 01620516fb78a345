"""The 2x2 advice on constructed measurements, one per quadrant, and the recipe it writes."""

import pytest

from hf_finetune.analysis.advisor import (
    LITTLE_DATA_PER_CLASS,
    LP_FT_MAX_PER_CLASS,
    SCRATCH_MIN_PER_CLASS,
    Measurements,
    recipe_values,
    recommend,
    write_recipe,
)
from hf_finetune.errors import UserError
from hf_finetune.recipes import load_recipe, parse_config, resolve_recipe_path


def measured(per_class: int, probe: float, pad: float | None = None, logme_gain: float = 0.5) -> Measurements:
    return Measurements(
        examples_per_class={"a": per_class, "b": per_class, "c": per_class + 7, "d": per_class},
        sample_size=400,
        chance_accuracy=0.25,
        probe_accuracy=probe,
        knn_accuracy=probe - 0.05,
        logme=-0.5 + logme_gain,
        logme_shuffled=-0.5,
        pad=pad,
        num_blocks=6,
    )


LITTLE, MUCH = LITTLE_DATA_PER_CLASS // 2, LITTLE_DATA_PER_CLASS * 5


@pytest.mark.parametrize(
    "m, quadrant, strategy, params",
    [
        (measured(LITTLE, 0.9), "little data, similar domain", "linear_probe", {"learning_rate": 1e-3}),
        (measured(LITTLE, 0.5), "little data, dissimilar domain", "freeze_bottom", {"freeze_num_layers": 3}),
        (measured(MUCH, 0.9), "much data, similar domain", "full", {"learning_rate": 1e-4}),
        # Much data but under LP_FT_MAX_PER_CLASS per class, similar features: the head is fitted first (measured).
        (measured(LP_FT_MAX_PER_CLASS - 20, 0.9), "much data, similar domain", "lp_ft", {"learning_rate": 1e-4}),
        (measured(LP_FT_MAX_PER_CLASS - 20, 0.6), "much data, dissimilar domain", "full", {"learning_rate": 1e-4}),
        (measured(MUCH, 0.6), "much data, dissimilar domain", "full", {"learning_rate": 1e-4}),
        (measured(SCRATCH_MIN_PER_CLASS, 0.3), "much data, dissimilar domain", "scratch", {"learning_rate": 1e-3}),
        # Useless features but too little data to learn from random init: full, never scratch (measured).
        (measured(MUCH, 0.3), "much data, dissimilar domain", "full", {"learning_rate": 1e-4}),
        # A probe above the "similar" line, but disjoint domains and not a strong probe: dissimilar.
        (measured(LITTLE, 0.75, pad=1.98), "little data, dissimilar domain", "freeze_bottom", {}),
        # The same probe on a nearby domain stays similar; a very strong probe outweighs a large PAD.
        (measured(LITTLE, 0.75, pad=0.8), "little data, similar domain", "linear_probe", {}),
        (measured(LITTLE, 0.95, pad=1.98), "little data, similar domain", "linear_probe", {}),
        # A good probe score whose LogME is no better than shuffled labels is not trusted.
        (measured(LITTLE, 0.9, logme_gain=-0.1), "little data, dissimilar domain", "freeze_bottom", {}),
    ],
)
def test_each_quadrant_gives_its_strategy(m, quadrant, strategy, params):
    advice = recommend(m, base_learning_rate=1e-4)
    assert (advice.quadrant, advice.strategy) == (quadrant, strategy)
    assert params.items() <= advice.hyperparameters.items()
    text = " ".join(advice.reasons)
    assert f"{m.probe_accuracy:.3f}" in text and f"{m.median_per_class:.0f}" in text  # reasons quote the numbers
    assert (m.pad is None) == ("proxy A-distance" not in text)


def test_written_recipe_runs_as_a_recipe_and_keeps_the_base(tmp_path):
    base = load_recipe(resolve_recipe_path("fortunes_topics"))
    advice = recommend(measured(LITTLE, 0.5), base_learning_rate=base["learning_rate"])
    path = tmp_path / "advised.yaml"
    write_recipe(path, recipe_values(base, advice), advice)
    cfg = parse_config(["--config", str(path)])
    assert cfg.strategy.strategy_names == ["freeze_bottom"]
    assert cfg.model.model_name_or_path == base["model_name_or_path"]
    assert cfg.training.learning_rate == base["learning_rate"]
    assert cfg.training.output_dir.endswith("advised-freeze_bottom")
    assert "little data, dissimilar domain" in path.read_text().splitlines()[0]


def test_a_recipe_that_would_not_run_is_not_written(tmp_path):
    advice = recommend(measured(MUCH, 0.9))
    path = tmp_path / "advised.yaml"
    with pytest.raises(UserError, match="no checkpoint"):
        write_recipe(path, recipe_values({"task": "text_classification", "dataset_name": "x"}, advice), advice)
    assert not path.exists()


def test_a_tuned_recipe_beside_the_base_supplies_the_strategys_hyper_parameters(tmp_path):
    """`fortunes_topics_linear_probe` (the recipe compare runs for linear_probe) wins over the generic head LR."""
    base = load_recipe(resolve_recipe_path("fortunes_topics"))
    advice = recommend(measured(LITTLE, 0.95))
    values = recipe_values(base, advice, base_name="fortunes_topics")
    tuned = load_recipe(resolve_recipe_path("fortunes_topics_linear_probe"))
    assert values["learning_rate"] == tuned["learning_rate"] != 1e-3
    assert values["num_train_epochs"] == tuned["num_train_epochs"]
    assert "fortunes_topics_linear_probe" in advice.reasons[-1]


def test_useless_features_on_a_small_set_say_why_not_scratch():
    text = " ".join(recommend(measured(MUCH, 0.3)).reasons)
    assert f"< {SCRATCH_MIN_PER_CLASS} is too little to learn from random init" in text
    assert "random init" not in " ".join(recommend(measured(MUCH, 0.6)).reasons)
