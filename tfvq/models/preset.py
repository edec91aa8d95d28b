"""A preset: a named model as data (`ZooEntry`: its family, configuration, training recipe and sources).

A family's `presets` module (e.g. `tfvq.models.hqa.presets`) holds a tuple
of these beside the family's code, and the zoo's registry
(`tfvq.zoo.registry`) holds them by name. Models never import the zoo: the
entry is defined here, below it.
"""

import dataclasses
from typing import Any, Mapping, Optional, Union

from tfvq.models.recipes import Recipe


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """One named model.

    Attributes:
      name: registry name, e.g. "hqa_mnist".
      family: model family key (a key of a presets module's `FAMILIES`), e.g. "hqa".
      config: constructor arguments of the family's model class.
      train: the training recipe (batch size, steps per stage, optimiser and
        schedule settings) that `model.training_stages` turns into stages and
        `tfvq.train` runs: a recipe of the family's `recipe_class` (e.g.
        `HQARecipe`, `HierarchicalVAERecipe`), or a mapping of its keys, read
        as one when the entry is registered (an unknown key raises, naming
        the keys the recipe knows).
      dataset: the `tfvq.data` dataset the entry is made for.
      paper: the paper the configuration comes from.
      table: where in the paper (e.g. "HQA Table 10").
      description: one line for `list_models` / `info`.
      bundled_weights: file name under `tfvq/zoo/weights/`, if weights ship
        with the package.
      weights_command: the command that produced the bundled weights.
      weights_recipe: the recipe the bundled weights were trained with, when
        it is not `train` (e.g. the paper's recipe scaled to a CPU budget):
        `tfvq train --bundled_recipe` trains it. Typed like `train`.
      weights_dataset: the dataset the bundled weights learned (and are
        evaluated and coded on), when it is not `dataset`.
    """

    name: str
    family: str
    config: Mapping[str, Any]
    train: Union[Recipe, Mapping[str, Any]]
    dataset: str
    paper: str
    table: str
    description: str
    bundled_weights: Optional[str] = None
    weights_command: Optional[str] = None
    weights_recipe: Optional[Union[Recipe, Mapping[str, Any]]] = None
    weights_dataset: Optional[str] = None

    def recipe_for(self, bundled=False):
        """The recipe to train: `weights_recipe` when `bundled` (and the entry has one), else `train`."""
        return self.weights_recipe if bundled and self.weights_recipe is not None else self.train

    def dataset_for(self, bundled=False):
        """The dataset of the bundled weights (`weights_dataset`) when `bundled`, else `dataset`."""
        return self.weights_dataset if bundled and self.weights_dataset else self.dataset
