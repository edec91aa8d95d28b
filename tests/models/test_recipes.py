"""Training recipes are typed data: one frozen dataclass per family, defaults in one place, unknown keys refused."""

import dataclasses

import pytest

from tfvq import zoo
from tfvq.models import HQA, VQVAE, HierarchicalVAE, RRVQVAE, SpatialVAE
from tfvq.models.recipes import (HQARecipe, HierarchicalVAERecipe, Recipe, UnknownRecipeKeyError, VQVAERecipe,
                                 as_recipe)

RECIPES = (HQARecipe, VQVAERecipe, HierarchicalVAERecipe)


@pytest.mark.parametrize("cls", RECIPES)
def test_a_misspelt_key_raises_and_names_the_known_keys(cls):
    with pytest.raises(UnknownRecipeKeyError) as err:
        cls.from_dict({"learning_rat": 1e-3})
    message = str(err.value)
    assert "'learning_rat'" in message and "Did you mean 'learning_rate'" in message
    assert all(key in message for key in cls.keys())
    assert isinstance(err.value, ValueError) and isinstance(err.value, TypeError)
    with pytest.raises(ValueError, match=r"Unknown recipe override key 'batchsize'.*Known keys: batch_size"):
        cls().replace(batchsize=8)


def test_a_key_of_another_family_is_refused():
    with pytest.raises(ValueError, match="Unknown recipe key 'initial_temperature' for HierarchicalVAERecipe"):
        HierarchicalVAERecipe.from_dict({"initial_temperature": 0.5})
    with pytest.raises(ValueError, match="Unknown recipe key 'plateau_factor' for HQARecipe"):
        HQA((16, 16, 1), [dict(num_codes=8, code_dim=4)]).training_stages({"plateau_factor": 0.5})
    with pytest.raises(TypeError, match="trains with a HQARecipe, got a HierarchicalVAERecipe"):
        as_recipe(HQARecipe, HierarchicalVAERecipe())


def test_each_family_names_its_recipe_and_the_defaults_live_in_the_dataclass():
    assert HQA.recipe_class is HQARecipe and VQVAE.recipe_class is VQVAERecipe
    assert HierarchicalVAE.recipe_class is RRVQVAE.recipe_class is SpatialVAE.recipe_class is HierarchicalVAERecipe
    # The defaults are the papers' (HQA App. C.1, Table 10; RRVQ App. C, CIFAR-10), and the stages a model builds
    # from an empty recipe are built from them.
    hqa = HQARecipe()
    assert (hqa.batch_size, hqa.steps, hqa.learning_rate, hqa.cosine_fraction) == (512, (18000,), 4e-4, 1 / 3)
    assert (hqa.initial_temperature, hqa.final_temperature, hqa.reset_fraction) == (0.66, 0.01, 0.75)
    rrvq = HierarchicalVAERecipe()
    assert (rrvq.optimizer, rrvq.batch_size, rrvq.learning_rate, rrvq.plateau_factor, rrvq.min_learning_rate) == (
        "adamax", 64, 8e-4, 0.8, 5e-5)
    assert HierarchicalVAERecipe.for_epochs(50000, 500, 20) == rrvq  # 500 epochs of CIFAR-10, patience 20
    assert zoo.recipe("hqa_mnist") == HQARecipe(steps=(18000,) * 5) and zoo.recipe("vqvae_mnist") == VQVAERecipe()
    model = HQA((16, 16, 1), [dict(num_codes=8, code_dim=4)])
    stage = model.training_stages()[0]
    assert stage.steps == hqa.steps[0]
    assert (stage.optimizer.name, stage.optimizer.learning_rate, stage.optimizer.cosine_fraction,
            stage.optimizer.clip_norm) == ("radam", hqa.learning_rate, hqa.cosine_fraction, hqa.clip_norm)
    assert float(stage.before_step(0)["temperature"]) == pytest.approx(hqa.initial_temperature)
    # No model keeps a default of its own: a recipe's fields are read as attributes, never with .get(key, default).
    import inspect

    from tfvq.models import contract, hierarchical_vae, hqa as hqa_module, stages, vqvae
    for module in (contract, hierarchical_vae, hqa_module, stages, vqvae):
        assert "recipe.get(" not in inspect.getsource(module), module.__name__


def test_recipes_are_frozen_and_replace_gives_a_checked_copy():
    recipe = zoo.recipe("hqa_digits")
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.learning_rate = 1.0
    changed = recipe.replace(learning_rate=1e-3)
    assert changed.learning_rate == 1e-3 and recipe.learning_rate == 2e-3
    assert changed == dataclasses.replace(recipe, learning_rate=1e-3)
    with pytest.raises(ValueError, match="learning_rate must be positive"):
        recipe.replace(learning_rate=0.0)
    with pytest.raises(ValueError, match="codebook_init must be one of"):
        recipe.replace(codebook_init="zeros")
    assert HQARecipe(steps=[3, 4], codebook_init=["kmeans++", "random"]).steps == (3, 4)  # lists become tuples


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_entry_holds_its_familys_recipe_and_round_trips(name):
    entry = zoo.get(name)
    recipe = entry.train
    assert isinstance(recipe, Recipe) and type(recipe) is zoo.build(name).recipe_class
    assert type(recipe).from_dict(recipe.to_dict()) == recipe
    assert type(recipe).from_dict(dict(recipe.to_dict())) is not recipe
    info = zoo.info(name) if name in ("hqa_digits", "vqvae_mnist", "rrvq_digits") else None
    if info is not None:
        assert info["recipe"] == type(recipe).__name__ and info["train"] == recipe.to_dict()
        assert set(info["train"]) == set(type(recipe).keys())


def test_the_pinned_values_of_the_entries_stay():
    digits = zoo.recipe("hqa_digits")
    assert digits.batch_size == 64 and digits.steps == (1200, 400, 800, 800, 2400) and digits.learning_rate == 2e-3
    assert digits.codebook_init == ("kmeans++", "random", "random", "random", "random")
    assert digits.keep_codes == (20, None, None, None, None) and digits.initial_temperature == 0.66
    celeba = zoo.recipe("hqa_celeba64")
    assert celeba.batch_size == 1024 and celeba.initial_temperature == 0.4 and celeba.steps[-1] == 30000
    rrvq = zoo.recipe("rrvq_digits")
    assert (rrvq.steps, rrvq.eval_every, rrvq.eval_examples, rrvq.plateau_patience, rrvq.clip_norm) == (
        (3000,), 100, 297, 5, 200.0)
    assert zoo.recipe("rrvq_celeba64").steps == (160 * 2544,) and zoo.recipe("rrvq_celeba64").eval_every == 2544


def test_a_mapping_recipe_is_read_when_the_entry_is_registered():
    entry = zoo.get("vqvae_mnist")
    fields = dict(entry.__dict__, name="test_recipes_mapping", train={"steps": (3,), "batch_size": 4})
    registered = zoo.register(zoo.ZooEntry(**fields))
    assert registered.train == VQVAERecipe(steps=(3,), batch_size=4) and zoo.get(registered.name) == registered
    bad = dict(fields, name="test_recipes_bad_key", train={"steps": (3,), "learning_rat": 1e-3})
    with pytest.raises(ValueError, match="Unknown recipe key 'learning_rat' for VQVAERecipe.*Known keys"):
        zoo.register(zoo.ZooEntry(**bad))
    assert "test_recipes_bad_key" not in zoo.list_models()


def test_the_recipe_of_bundled_weights_is_typed_and_pinned_beside_the_papers():
    hqa, vqvae = zoo.get("hqa_mnist"), zoo.get("vqvae_mnist")
    assert hqa.train == HQARecipe(steps=(18000,) * 5)  # the paper's recipe stays the entry's own
    assert isinstance(hqa.weights_recipe, HQARecipe) and isinstance(vqvae.weights_recipe, VQVAERecipe)
    assert hqa.weights_recipe.steps == (4000, 2000, 2000, 3000, 12000) and hqa.weights_recipe.batch_size == 128
    assert sum(hqa.weights_recipe.steps) == sum(vqvae.weights_recipe.steps)  # the baseline gets as many updates
    assert hqa.weights_dataset == vqvae.weights_dataset == "mnist10k"
    assert zoo.info("vqvae_mnist")["weights_recipe"] == vqvae.weights_recipe.to_dict()
    fields = dict(vqvae.__dict__, name="test_recipes_bad_weights_key", weights_recipe={"stepz": (3,)})
    with pytest.raises(ValueError, match="Unknown recipe key 'stepz' for VQVAERecipe"):
        zoo.register(zoo.ZooEntry(**fields))
    assert "test_recipes_bad_weights_key" not in zoo.list_models()
