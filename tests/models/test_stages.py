"""The greedy stage of HQA's recipe (`tfvq.models.stages`, HQA Algorithm 2, App. C.1, C.4): its optimiser's cosine
tail, its temperature anneal and reset window, and its retired codes (the k-means++ seeds it takes are tested
with `tfvq.layers.kmeans`)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers import StochasticVectorQuantizer
from tfvq.models.hqa import HQARecipe
from tfvq.models.stages import greedy_stage, retire_codes
from tfvq.train.optimizers import make_optimizer


def stage_of(quantizer, steps, recipe=HQARecipe(), **kw):
    return greedy_stage("layer_1", "a layer", steps, list, lambda x, seed: {"loss": x}, quantizer, recipe, **kw)


@pytest.fixture
def quantizer():
    q = StochasticVectorQuantizer(10, 3)
    q.build((None, 3))
    return q


def test_the_learning_rate_is_constant_then_a_cosine_over_the_final_fraction(quantizer):
    """HQA App. C.1: "a learning rate of 4e-4 which is cosine annealed in the final third of training"."""
    recipe = HQARecipe(learning_rate=4e-4, cosine_fraction=0.25, clip_norm=2.0)
    stage = stage_of(quantizer, 400, recipe)
    assert (stage.optimizer.name, stage.optimizer.clip_norm) == ("radam", 2.0)
    optimizer = make_optimizer(stage.optimizer, stage.steps)
    knee = 300  # (1 - 1/4) of 400 steps
    for step in (0, 150, 300, 301, 350, 399, 400, 500):
        optimizer.iterations.assign(step)
        want = 4e-4 if step <= knee else 4e-4 * 0.5 * (1 + math.cos(math.pi * min(step - knee, 100) / 100))
        assert float(optimizer.learning_rate) == pytest.approx(want, rel=1e-5, abs=1e-12), step


def test_the_temperature_falls_linearly_and_codes_reset_in_the_first_fraction_only(quantizer):
    stage = stage_of(quantizer, 200, temperatures=(0.66, 0.01), reset_fraction=0.75)
    for step in (0, 50, 149, 150, 199, 200):
        shown = stage.before_step(tf.constant(step, tf.int64))
        want = 0.66 + (0.01 - 0.66) * step / 200  # HQA §5.1's linear anneal
        assert float(shown["temperature"]) == pytest.approx(want, rel=1e-5)
        assert float(quantizer.temperature) == pytest.approx(want, rel=1e-5)
        assert bool(quantizer.reset_enabled.numpy()) is (step < 150), step
    assert stage_of(quantizer, 10).before_step(0) == {}  # no schedule asked for: nothing runs


@pytest.mark.parametrize("spread,scale", [(1e-4, 1.0), (1.0, 0.5), (30.0, 2.0)])
def test_retired_codes_are_200_nats_below_the_nearest_kept_code_at_any_spread(spread, scale):
    """Nearly constant z_e (spread 1e-4) as well as wide: the retired codes' logits -s d^2 stay at least 200
    below the best kept code's for every point, so neither the argmin nor a Gumbel sample reaches them."""
    quantizer = StochasticVectorQuantizer(10, 3, distance_scale=scale)
    quantizer.build((None, 3))
    rng = np.random.default_rng(3)
    z_e = (rng.normal(size=(200, 3)) * spread + 5.0).astype(np.float32)
    quantizer.codebook.assign(z_e[:10] + rng.normal(size=(10, 3)).astype(np.float32) * spread)
    kept = retire_codes(quantizer, z_e, keep=4)
    logits = quantizer.logits(tf.constant(z_e)).numpy().astype(np.float64)
    retired = np.setdiff1d(np.arange(10), kept)
    assert len(kept) == 4 and (logits[:, kept].max(1) - logits[:, retired].max(1)).min() >= 200 * (1 - 1e-4)


def test_codes_are_retired_when_the_resets_end_and_only_with_a_reset_window(quantizer):
    encode = lambda images: images  # noqa: E731  (the stage's data are z_e already)
    stage = stage_of(quantizer, 9, encode=encode, reset_fraction=0.5, keep_codes=4)
    assert list(stage.at_steps) == [5]  # ceil(0.5 * 9)
    assert stage_of(quantizer, 9, encode=encode, reset_fraction=0.5, keep_codes=10).at_steps == {}  # K: all stay
    with pytest.raises(ValueError, match="needs a reset_fraction"):
        stage_of(quantizer, 9, encode=encode, keep_codes=4)
    with pytest.raises(ValueError, match="codebook_init must be one of"):
        stage_of(quantizer, 9, codebook_init="zeros")
