"""HQA's training recipes: `HQARecipe` (HQA App. C.1, Algorithm 2) and the VQ-VAE baseline's `VQVAERecipe` (HQA
App. C.3), both on the optimiser of HQA's greedy stages (`GreedyRecipe`, `tfvq.models.stages.greedy_stage`).

Frozen dataclasses of `tfvq.models.recipes.Recipe`, their defaults the paper's MNIST recipe (Table 10). The
autoencoders of today's quantizers (`tfvq.models.quantized_ae`) train under `VQVAERecipe` too.
"""

import dataclasses
import numbers
from typing import Optional, Tuple, Union

from tfvq.models.recipes import Recipe, real_number
from tfvq.models.stages import CODEBOOK_INITS

__all__ = ["GreedyRecipe", "HQARecipe", "VQVAERecipe"]


@dataclasses.dataclass(frozen=True)
class GreedyRecipe(Recipe):
    """A greedy stage's optimiser (HQA App. C.1): RAdam, constant, then cosine-annealed over the final
    `cosine_fraction` of each stage's steps."""

    learning_rate: float = 4e-4
    cosine_fraction: float = 1 / 3
    codebook_init: Union[str, Tuple[str, ...]] = "random"

    def __post_init__(self):
        super().__post_init__()
        self._set("cosine_fraction", real_number("cosine_fraction", self.cosine_fraction, 0.0, 1.0))
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
class VQVAERecipe(GreedyRecipe):
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
class HQARecipe(GreedyRecipe):
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
        self._set("initial_temperature", real_number("initial_temperature", self.initial_temperature, 0.0, low_open=True))
        self._set("final_temperature", real_number("final_temperature", self.final_temperature, 0.0, low_open=True))
        self._set("reset_fraction", real_number("reset_fraction", self.reset_fraction, 0.0, 1.0))
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
