"""A preset (`tfvq.models.preset.ZooEntry`): the recipe and dataset of the paper or of the bundled weights, and
the entry defined below the zoo, so that no model imports the zoo."""

import ast
import pathlib

import tfvq.models
from tfvq.models.hqa import HQARecipe
from tfvq.models.preset import ZooEntry

MODELS = pathlib.Path(tfvq.models.__file__).parent


def entry(**changes):
    fields = dict(name="a", family="hqa", config={}, train=HQARecipe(), dataset="mnist", paper="p", table="t",
                  description="d")
    return ZooEntry(**{**fields, **changes})


def test_the_bundled_weights_take_their_own_recipe_and_dataset_when_the_entry_has_them():
    plain = entry()
    assert plain.recipe_for() is plain.recipe_for(bundled=True) is plain.train
    assert plain.dataset_for() == plain.dataset_for(bundled=True) == "mnist"
    cpu = HQARecipe(batch_size=128)
    bundled = entry(weights_recipe=cpu, weights_dataset="mnist10k")
    assert bundled.recipe_for() is bundled.train and bundled.recipe_for(bundled=True) is cpu
    assert (bundled.dataset_for(), bundled.dataset_for(bundled=True)) == ("mnist", "mnist10k")


def test_no_module_of_the_models_imports_the_zoo():
    """Imports point down (zoo -> models): a family's presets name `ZooEntry` from here, never from the zoo."""
    for path in sorted(MODELS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "tfvq.zoo" or n.startswith("tfvq.zoo.") for n in names), path.relative_to(MODELS)
            if isinstance(node, ast.ImportFrom) and node.module == "tfvq":
                assert "zoo" not in [a.name for a in node.names], path.relative_to(MODELS)
