"""The hierarchical VAEs' training recipe: `HierarchicalVAERecipe` (RRVQ App. C), end to end under AdaMax with a
learning rate reduced on plateau of the test bits per dim.

A frozen dataclass of `tfvq.models.recipes.Recipe`, its defaults the paper's CIFAR-10 column; `for_epochs` gives
another dataset's.
"""

import dataclasses
from typing import Tuple

from tfvq.models.recipes import OPTIMIZER_NAMES, Recipe, positive_int, real_number

__all__ = ["HierarchicalVAERecipe"]


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
        self._set("plateau_factor", real_number("plateau_factor", self.plateau_factor, 0.0, 1.0, low_open=True))
        self._set("plateau_patience", positive_int("plateau_patience", self.plateau_patience))
        self._set("min_learning_rate", real_number("min_learning_rate", self.min_learning_rate, 0.0))
        self._set("eval_every", positive_int("eval_every", self.eval_every))

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
