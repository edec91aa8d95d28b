"""Training recipes: what every family's recipe is (`Recipe`), its keys checked, its defaults the papers'.

A recipe says how a model is trained: the batch, the steps of each stage,
the optimiser, its schedules and the quantizers' schedules. A zoo entry holds
one (`tfvq.models.preset.ZooEntry.train`); a model turns it into its training
stages (`model.training_stages(recipe)`); `tfvq.train` runs them. Each model
family names its recipe class (`model_class.recipe_class`), a frozen
dataclass beside its code that extends `Recipe`:

    HQARecipe               HQA (HQA App. C.1, Algorithm 2)        tfvq.models.hqa
    VQVAERecipe             the VQ-VAE baseline (HQA App. C.3)     tfvq.models.hqa
    HierarchicalVAERecipe   RRVQ-VAE, rVQ-VAE, Spatial-VAE         tfvq.models.rrvq
                            (RRVQ App. C)

Recipes are data: `recipe.replace(learning_rate=1e-3)` gives a changed copy
(`dataclasses.replace`), `Recipe.from_dict(mapping)` reads one, and
`recipe.to_dict()` writes one (`from_dict(to_dict())` gives it back). An
unknown key is refused everywhere (`UnknownRecipeKeyError`, a `ValueError` and
a `TypeError`), naming the key and the keys the recipe knows, so a misspelt
setting never passes silently.
"""

import dataclasses
import difflib
import math
import numbers
from typing import Mapping, Tuple

__all__ = ["OPTIMIZER_NAMES", "Recipe", "UnknownRecipeKeyError", "as_recipe", "positive_int", "real_number"]

OPTIMIZER_NAMES = ("radam", "adamax", "adam")
"""The optimisers a recipe may name (`tfvq.train.optimizers.OPTIMIZERS` builds them)."""


class UnknownRecipeKeyError(ValueError, TypeError):
    """A recipe key the recipe's class does not have (the message names the key and the known keys)."""


def positive_int(name, value):
    """`value` as an int if it is a positive integer (not a bool); a `ValueError` naming `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def real_number(name, value, low=None, high=None, low_open=False):
    """`value` as a float if it is a finite number within [low, high] (`low_open`: above `low`); a `ValueError`
    naming `name` and the bound otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    value = float(value)
    if low is not None and (value < low or (low_open and value == low)):
        bound = "positive" if (low, low_open) == (0.0, True) else f"{'>' if low_open else '>='} {low}"
        raise ValueError(f"{name} must be {bound}, got {value}.")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}.")
    return value


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What every family's recipe has (the base of the families' recipes; a family with no recipe of its own
    gets this one).

    Attributes:
      batch_size: the global batch size.
      steps: the steps of each stage, cycled over the stages (HQA: one per layer; one number for an end-to-end
        model). `tfvq.train --steps N` sets every stage's.
      learning_rate: every stage's initial learning rate.
      clip_norm: gradients are clipped to this global norm (neither paper names one).
      eval_examples: test images for the final metrics and PNG grids of a run (and for each evaluation of a stage
        that has one).
    """

    batch_size: int = 64
    steps: Tuple[int, ...] = (1000,)
    learning_rate: float = 1e-3
    clip_norm: float = 1.0
    eval_examples: int = 512

    def __post_init__(self):
        steps = (self.steps,) if isinstance(self.steps, numbers.Integral) else self.steps
        if isinstance(steps, (str, bytes)) or not hasattr(steps, "__iter__") or not len(tuple(steps)):
            raise ValueError(f"steps must be a positive integer or a non-empty sequence of them, got {self.steps!r}.")
        self._set("steps", tuple(positive_int("steps", n) for n in steps))
        self._set("batch_size", positive_int("batch_size", self.batch_size))
        self._set("eval_examples", positive_int("eval_examples", self.eval_examples))
        self._set("learning_rate", real_number("learning_rate", self.learning_rate, 0.0, low_open=True))
        self._set("clip_norm", real_number("clip_norm", self.clip_norm, 0.0, low_open=True))

    def _set(self, name, value):
        object.__setattr__(self, name, value)  # normalising a frozen dataclass's own field in __post_init__

    # ---------------------------------------------------------------- data
    @classmethod
    def keys(cls):
        """The recipe's keys (its fields), in order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def check_keys(cls, keys, where="recipe"):
        """Raises `UnknownRecipeKeyError` naming the first key of `keys` that `cls` does not have."""
        known = cls.keys()
        for key in keys:
            if key not in known:
                near = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
                hint = f" Did you mean {near[0]!r}?" if near else ""
                raise UnknownRecipeKeyError(
                    f"Unknown {where} key {key!r} for {cls.__name__}.{hint} Known keys: {', '.join(known)}.")

    @classmethod
    def from_dict(cls, mapping):
        """The recipe of a mapping of its keys (the others take the defaults); an unknown key raises."""
        if not isinstance(mapping, Mapping):
            raise TypeError(f"A {cls.__name__} is read from a mapping of its keys, got {type(mapping).__name__}.")
        cls.check_keys(mapping)
        return cls(**mapping)

    def to_dict(self):
        """{key: value} of every field (tuples stay tuples): `type(r).from_dict(r.to_dict()) == r`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes):
        """A copy with `changes` (`dataclasses.replace`); an unknown key raises `UnknownRecipeKeyError`."""
        self.check_keys(changes, where="recipe override")
        return dataclasses.replace(self, **changes)

    def stage_steps(self, index, steps=None):
        """Steps of stage `index` (0-based): `steps` if given, else the recipe's (cycled) list."""
        if steps is not None:
            return positive_int("steps", steps)
        return self.steps[index % len(self.steps)]


def as_recipe(recipe_class, recipe=None):
    """`recipe` as a `recipe_class`: None gives the defaults, a mapping is read (`from_dict`), a recipe of the
    class (or a subclass) is returned as it is; a recipe of another family raises `TypeError`."""
    if recipe is None:
        return recipe_class()
    if isinstance(recipe, recipe_class):
        return recipe
    if isinstance(recipe, Recipe):
        raise TypeError(f"This model trains with a {recipe_class.__name__}, got a {type(recipe).__name__}.")
    return recipe_class.from_dict(recipe)
