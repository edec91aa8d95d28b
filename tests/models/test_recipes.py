"""Training recipes are typed data (`tfvq.models.recipes`): one frozen dataclass per family, unknown keys refused,
every entry's recipe its family's; the families' own defaults are tested beside them (hqa/test_hqa_recipes.py,
rrvq/test_rrvq_recipe.py)."""

import dataclasses
import importlib
import inspect
import pkgutil

import pytest

import tfvq.models
from tfvq import zoo
from tfvq.models.hqa import HQA, HQARecipe, VQVAERecipe
from tfvq.models.recipes import Recipe, UnknownRecipeKeyError, as_recipe
from tfvq.models.rrvq import HierarchicalVAERecipe

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


def test_a_mapping_recipe_is_read_when_the_entry_is_registered():
    entry = zoo.get("vqvae_mnist")
    fields = dict(entry.__dict__, name="test_recipes_mapping", train={"steps": (3,), "batch_size": 4})
    registered = zoo.register(zoo.ZooEntry(**fields))
    assert registered.train == VQVAERecipe(steps=(3,), batch_size=4) and zoo.get(registered.name) == registered
    bad = dict(fields, name="test_recipes_bad_key", train={"steps": (3,), "learning_rat": 1e-3})
    with pytest.raises(ValueError, match="Unknown recipe key 'learning_rat' for VQVAERecipe.*Known keys"):
        zoo.register(zoo.ZooEntry(**bad))
    assert "test_recipes_bad_key" not in zoo.list_models()


def test_no_model_keeps_a_default_of_its_own():
    """A recipe's fields are read as attributes, never with .get(key, default), in every module of tfvq.models."""
    modules = [m.name for m in pkgutil.walk_packages(tfvq.models.__path__, "tfvq.models.")]
    assert {"tfvq.models.contract", "tfvq.models.stages", "tfvq.models.hqa.hqa_model"} <= set(modules)
    for name in modules:
        assert "recipe.get(" not in inspect.getsource(importlib.import_module(name)), name
