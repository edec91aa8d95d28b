"""Training recipes: one frozen dataclass per model family, its defaults the papers' (one place for them).

A recipe says how a model is trained: the batch, the steps of each stage,
the optimiser, its schedules and the quantizers' schedules. A zoo entry holds
one (`tfvq.zoo.ZooEntry.train`); a model turns it into its training stages
(`model.training_stages(recipe)`); `tfvq.train` runs them. Each model family
names its recipe class (`model_class.recipe_class`):

    HQARecipe               HQA (HQA App. C.1, Algorithm 2)
    VQVAERecipe             the VQ-VAE baseline (HQA App. C.3)
    HierarchicalVAERecipe   RRVQ-VAE, rVQ-VAE, Spatial-VAE (RRVQ App. C)

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
from typing import Mapping, Optional, Tuple, Union

__all__ = ["CODEBOOK_INITS", "HQARecipe", "HierarchicalVAERecipe", "OPTIMIZER_NAMES", "Recipe",
           "UnknownRecipeKeyError", "VQVAERecipe", "as_recipe"]

CODEBOOK_INITS = ("random", "kmeans++")
"""How a greedy stage starts a layer's codebook (`HQARecipe.codebook_init`)."""
OPTIMIZER_NAMES = ("radam", "adamax", "adam")
"""The optimisers a recipe may name (`tfvq.train.optimizers.OPTIMIZERS` builds them)."""


class UnknownRecipeKeyError(ValueError, TypeError):
    """A recipe key the recipe's class does not have (the message names the key and the known keys)."""


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _real(name, value, low=None, high=None, low_open=False):
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
        self._set("steps", tuple(_positive_int("steps", n) for n in steps))
        self._set("batch_size", _positive_int("batch_size", self.batch_size))
        self._set("eval_examples", _positive_int("eval_examples", self.eval_examples))
        self._set("learning_rate", _real("learning_rate", self.learning_rate, 0.0, low_open=True))
        self._set("clip_norm", _real("clip_norm", self.clip_norm, 0.0, low_open=True))

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
            return _positive_int("steps", steps)
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


@dataclasses.dataclass(frozen=True)
class _GreedyRecipe(Recipe):
    """A greedy stage's optimiser (HQA App. C.1): RAdam, constant, then cosine-annealed over the final
    `cosine_fraction` of each stage's steps."""

    learning_rate: float = 4e-4
    cosine_fraction: float = 1 / 3
    codebook_init: Union[str, Tuple[str, ...]] = "random"

    def __post_init__(self):
        super().__post_init__()
        self._set("cosine_fraction", _real("cosine_fraction", self.cosine_fraction, 0.0, 1.0))
        inits = self.codebook_init if isinstance(self.codebook_init, (tuple, list)) else (self.codebook_init,)
        if not inits:
            raise ValueError(f"codebook_init needs at least one of {CODEBOOK_INITS}, got an empty sequence.")
        for init in inits:
            if init not in CODEBOOK_INITS:
                raise ValueError(f"codebook_init must be one of {CODEBOOK_INITS}, got {init!r}.")
        if isinstance(self.codebook_init, list):
            self._set("codebook_init", tuple(self.codebook_init))

    def layer_codebook_init(self, index):
        """Stage `index`'s (0-based) `codebook_init`."""
        inits = self.codebook_init
        return inits if isinstance(inits, str) else inits[index % len(inits)]


@dataclasses.dataclass(frozen=True)
class VQVAERecipe(_GreedyRecipe):
    """The VQ-VAE baseline's recipe (HQA App. C.3, Table 14, MNIST): HQA's optimiser over every variable.

    The defaults are the paper's MNIST column: batch 512, RAdam at 4e-4 cosine-annealed over the final third
    (App. C.1), and the 18000 steps of an HQA MNIST layer (`hqa_mnist`); gradients clipped to 1.0.

    Attributes: those of `Recipe`, and
      cosine_fraction: the final fraction of the steps over which the learning rate is cosine-annealed to 0.
      codebook_init: "random" (the quantizer's initializer, as the paper) or "kmeans++" (seeded from the
        encoder's z_e on a sample of training images when training starts, `kmeans_plus_plus_codebook`).
    """

    batch_size: int = 512
    steps: Tuple[int, ...] = (18000,)


@dataclasses.dataclass(frozen=True)
class HQARecipe(_GreedyRecipe):
    """HQA's greedy recipe (HQA App. C.1, Algorithm 2, Table 10): one stage per layer, bottom first.

    The defaults are HQA App. C.1's MNIST recipe (Table 10): batch 512, 18000 steps per layer, RAdam at 4e-4
    cosine-annealed over the final third, the Gumbel-softmax temperature annealed linearly from 0.66 to 0.01
    (App. C.1; 0.4 for CelebA), dead codes reset during the first 75% of each layer's steps (App. C.4),
    random codebooks; gradients clipped to 1.0 (the paper names no clip).

    Attributes: those of `Recipe` and `VQVAERecipe`, and
      initial_temperature, final_temperature: the linear Gumbel-softmax temperature anneal of each stage
        (HQA §5.1, App. C.1).
      reset_fraction: dead codes are reset during this first fraction of each stage's steps (App. C.4).
      codebook_init: "random" (the layer's initializer, as the paper) or "kmeans++" (seeded from the layer's
        z_e on a sample of training images when the stage starts); one for every layer, or one per layer
        (cycled, as `steps`).
      keep_codes: None (every code), or a number of codes to keep when the resets end (`retire_codes`); one for
        every layer, or one per layer (cycled).
    """

    batch_size: int = 512
    steps: Tuple[int, ...] = (18000,)
    initial_temperature: float = 0.66
    final_temperature: float = 0.01
    reset_fraction: float = 0.75
    keep_codes: Union[None, int, Tuple[Optional[int], ...]] = None

    def __post_init__(self):
        super().__post_init__()
        self._set("initial_temperature", _real("initial_temperature", self.initial_temperature, 0.0, low_open=True))
        self._set("final_temperature", _real("final_temperature", self.final_temperature, 0.0, low_open=True))
        self._set("reset_fraction", _real("reset_fraction", self.reset_fraction, 0.0, 1.0))
        keeps = self.keep_codes if isinstance(self.keep_codes, (tuple, list)) else (self.keep_codes,)
        for keep in keeps:
            if keep is not None and (isinstance(keep, bool) or not isinstance(keep, numbers.Integral) or keep < 1):
                raise ValueError(f"keep_codes must be at least 1 (or None: every code), got {keep}.")
        if isinstance(self.keep_codes, list):
            self._set("keep_codes", tuple(self.keep_codes))

    def layer_keep_codes(self, index):
        """Stage `index`'s (0-based) `keep_codes`."""
        keeps = self.keep_codes
        return keeps[index % len(keeps)] if isinstance(keeps, tuple) else keeps


@dataclasses.dataclass(frozen=True)
class HierarchicalVAERecipe(Recipe):
    """The end-to-end recipe of the hierarchical VAEs (RRVQ App. C): RRVQ-VAE, rVQ-VAE and Spatial-VAE.

    RRVQ App. C: "We train using AdaMax with batch size 64 and an initial learning rate that we decay on
    plateau, multiplying by 0.8 when there has been no decrease in the test set ELBO for 20 (SVHN + CIFAR-10)/5
    (CelebA) epochs, down to a minimum of 5e-5. The initial learning rate is 8e-4. We train for up to 500 (SVHN +
    CIFAR-10)/160 (CelebA) epochs". The defaults are the CIFAR-10 column: one evaluation period is one epoch
    of CIFAR-10 at batch 64 (782 steps), 500 of them; 2048 test images per evaluation; gradients clipped to 200
    (the paper names no clip). `for_epochs` gives the recipe of another dataset.

    Attributes: those of `Recipe`, and
      optimizer: "adamax" (the paper's), "adam" or "radam".
      plateau_factor: the learning rate is multiplied by this when the test bits per dim has not improved
        for `plateau_patience` evaluations, down to `min_learning_rate`.
      plateau_patience: evaluations without improvement before the learning rate is reduced.
      min_learning_rate: the floor of the plateau schedule.
      eval_every: steps between evaluations of the test bits per dim (the paper's epoch).
    """

    batch_size: int = 64
    steps: Tuple[int, ...] = (500 * 782,)
    learning_rate: float = 8e-4
    clip_norm: float = 200.0
    eval_examples: int = 2048
    optimizer: str = "adamax"
    plateau_factor: float = 0.8
    plateau_patience: int = 20
    min_learning_rate: float = 5e-5
    eval_every: int = 782

    def __post_init__(self):
        super().__post_init__()
        if self.optimizer not in OPTIMIZER_NAMES:
            raise ValueError(f"Unknown optimizer {self.optimizer!r}; known: {', '.join(OPTIMIZER_NAMES)}.")
        self._set("plateau_factor", _real("plateau_factor", self.plateau_factor, 0.0, 1.0, low_open=True))
        self._set("plateau_patience", _positive_int("plateau_patience", self.plateau_patience))
        self._set("min_learning_rate", _real("min_learning_rate", self.min_learning_rate, 0.0))
        self._set("eval_every", _positive_int("eval_every", self.eval_every))

    @classmethod
    def for_epochs(cls, train_size, epochs, patience, **changes):
        """RRVQ App. C's recipe for a training set of `train_size` images: up to `epochs` epochs at the batch
        size, the learning rate reduced after `patience` epochs without improvement; one evaluation per epoch.
        `changes` are further keys (checked as `from_dict` checks them)."""
        cls.check_keys(changes)
        epoch = -(-int(train_size) // 64)  # an epoch at the paper's batch of 64 (whatever `changes` sets)
        fields = dict(steps=(int(epochs) * epoch,), plateau_patience=int(patience), eval_every=epoch)
        fields.update(changes)
        return cls(**fields)
