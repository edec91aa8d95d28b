"""What a model tells the trainer: its `Stage`s, each with its variables, loss and `OptimizerRecipe`.

`model.training_stages(recipe)` returns a list of `Stage`s (HQA: one greedy
stage per layer, HQA Algorithm 2; the hierarchical VAEs: one, end to end) and
`tfvq.train` runs them; `tfvq.train.optimizers.make_optimizer` builds a
stage's optimiser from its `OptimizerRecipe`.
"""

import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence


@dataclasses.dataclass(frozen=True)
class OptimizerRecipe:
    """How a stage's optimiser is made (`tfvq.train.optimizers.make_optimizer` builds it).

    Attributes:
      name: "radam", "adamax" or "adam".
      learning_rate: the initial learning rate.
      cosine_fraction: if set, the learning rate is constant, then
        cosine-annealed to 0 over this final fraction of the stage's steps.
      plateau: if set, a dict of `tfvq.train.ReduceOnPlateau` arguments
        (factor, patience, min_value): the stage's `evaluate` drives it.
      clip_norm: gradients are clipped to this global norm after the
        cross-replica all-reduce.
    """

    name: str
    learning_rate: float
    cosine_fraction: Optional[float] = None
    plateau: Optional[Mapping[str, float]] = None
    clip_norm: float = 1.0


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of training.

    Attributes:
      name: a short name, also the TensorBoard prefix ("layer_3", "train").
      title: one line for the log.
      steps: the number of steps.
      variables: `() -> list` of the variables the stage updates.
      loss: `(float images [B, H, W, C], seed [2]) -> dict` of scalars with
        a "loss" to minimise (runs in replica context, relaxed samples).
      optimizer: its `OptimizerRecipe`.
      before_step: `(step) -> dict` of scalars to show: per-step hooks
        (temperature annealing, dead-code reset window), run in replica
        context before the loss.
      shown: the scalars shown on the progress bar.
      evaluate: `(float images [N, H, W, C], batch_size, seed) -> float`, a
        test metric to minimise (the plateau schedule's input), or None.
      eval_every: steps between evaluations (when `evaluate` is set).
      eval_name: what `evaluate` measures (a progress-bar and TensorBoard name).
      setup: `(float images [N, H, W, C]) -> None`, run once when the stage
        starts (not when a run resumes inside it), on a sample of training
        images: data-dependent initialisation (e.g. a codebook from k-means++).
      at_steps: {step: `(float images [N, H, W, C]) -> None`}: data-dependent
        changes run just before that step, on a sample of training images, when
        the run gets there (a run that resumes at that step runs it; one that
        resumes past it does not: the change is in the checkpoint).
    """

    name: str
    title: str
    steps: int
    variables: Callable[[], List[Any]]
    loss: Callable[..., Dict[str, Any]]
    optimizer: OptimizerRecipe
    before_step: Callable[[Any], Dict[str, Any]] = lambda step: {}
    shown: Sequence[str] = ("loss",)
    evaluate: Optional[Callable[..., float]] = None
    eval_every: Optional[int] = None
    eval_name: str = "test_metric"
    setup: Optional[Callable[[Any], None]] = None
    at_steps: Mapping[int, Callable[[Any], None]] = dataclasses.field(default_factory=dict)
