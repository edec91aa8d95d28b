"""A zoo entry: a named model as data (its family, configuration, training recipe and sources).

A leaf of the zoo: the presets (`tfvq.zoo.presets`) are tuples of these, and
the registry (`tfvq.zoo.registry`) holds them by name.
"""

import dataclasses
from typing import Any, Mapping, Optional, Union

from tfvq.models.recipes import Recipe


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """One named model.

    Attributes:
      name: registry name, e.g. "hqa_mnist".
      family: model family key (see `register_family`), e.g. "hqa".
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
