"""HQA's recipes (`tfvq.models.hqa.hqa_recipes`): the paper's defaults live in the dataclasses (HQA App. C.1,
Table 10; App. C.3), and the stages a model builds from an empty recipe are built from them."""

import pytest

from tfvq.models.hqa import HQA, VQVAE, GreedyRecipe, HQARecipe, VQVAERecipe


def test_each_model_names_its_recipe_and_the_defaults_are_the_papers():
    assert HQA.recipe_class is HQARecipe and VQVAE.recipe_class is VQVAERecipe
    assert issubclass(HQARecipe, GreedyRecipe) and issubclass(VQVAERecipe, GreedyRecipe)
    hqa = HQARecipe()
    assert (hqa.batch_size, hqa.steps, hqa.learning_rate, hqa.cosine_fraction) == (512, (18000,), 4e-4, 1 / 3)
    assert (hqa.initial_temperature, hqa.final_temperature, hqa.reset_fraction) == (0.66, 0.01, 0.75)
    assert (hqa.codebook_init, hqa.keep_codes, hqa.clip_norm) == ("random", None, 1.0)
    vqvae = VQVAERecipe()
    assert (vqvae.batch_size, vqvae.steps, vqvae.learning_rate, vqvae.cosine_fraction) == (512, (18000,), 4e-4, 1 / 3)
    model = HQA((16, 16, 1), [dict(num_codes=8, code_dim=4)])
    stage = model.training_stages()[0]
    assert stage.steps == hqa.steps[0]
    assert (stage.optimizer.name, stage.optimizer.learning_rate, stage.optimizer.cosine_fraction,
            stage.optimizer.clip_norm) == ("radam", hqa.learning_rate, hqa.cosine_fraction, hqa.clip_norm)
    assert float(stage.before_step(0)["temperature"]) == pytest.approx(hqa.initial_temperature)


def test_per_layer_keys_cycle_over_the_stages_and_are_checked():
    recipe = HQARecipe(steps=[3, 4], codebook_init=["kmeans++", "random"], keep_codes=[20, None])
    assert recipe.steps == (3, 4) and recipe.codebook_init == ("kmeans++", "random")  # lists become tuples
    assert [recipe.stage_steps(i) for i in range(3)] == [3, 4, 3]
    assert [recipe.layer_codebook_init(i) for i in range(3)] == ["kmeans++", "random", "kmeans++"]
    assert [recipe.layer_keep_codes(i) for i in range(3)] == [20, None, 20]
    assert HQARecipe(codebook_init="kmeans++").layer_codebook_init(4) == "kmeans++"
    for bad, match in [(dict(codebook_init=()), "at least one of"), (dict(codebook_init="zeros"), "must be one of"),
                       (dict(keep_codes=0), "keep_codes must be at least 1"),
                       (dict(reset_fraction=1.5), "reset_fraction must be <= 1"),
                       (dict(final_temperature=0.0), "final_temperature must be positive")]:
        with pytest.raises(ValueError, match=match):
            HQARecipe(**bad)
