"""`auto`'s budget of context-network work (`tfvq.codec.budget`): which layers it admits, and the files it
makes against `smallest`'s."""

import os

import numpy as np
import pytest

from tfvq.codec import budget, context, read_header
from tfvq.codec.container import CONTEXT
from tfvq.codec.lite_model import BUNDLED_WEIGHTS


@pytest.fixture(scope="module")
def hqa_mnist_priors():
    return context.ContextPriors.load(os.path.join(BUNDLED_WEIGHTS, "hqa_mnist.context.npz"))


def test_a_networks_multiply_adds_are_its_kernels_sizes():
    """Each weight of a convolution kernel is one multiply-add per position; the embeddings are lookups."""
    for config in ({"num_codes": 256, "above_codes": 256, "factor": 2, "width": 48, "depth": 2, "embed": 16,
                    "mix": 64},
                   {"num_codes": 16, "above_codes": None, "factor": 1, "width": 8, "depth": 3, "embed": 4, "mix": 6},
                   {"num_codes": 5, "above_codes": 7, "factor": 2, "width": 3, "depth": 0, "embed": 2, "mix": 4}):
        kernels = [s for s in context.weight_shapes(config) if len(s) == 4]
        assert context.multiply_adds(config) == sum(int(np.prod(s)) for s in kernels)


def test_hqa_mnists_layer_1_costs_13504_multiply_adds_per_pixel(hqa_mnist_priors):
    # 3x3 over 2 x 16 embeddings into 48, 3x3 48 -> 48, 1x1 48 -> 64, 1x1 64 -> 256 logits; four pixels a code
    assert hqa_mnist_priors.multiply_adds(1) == 9 * 32 * 48 + 9 * 48 * 48 + 48 * 64 + 64 * 256 == 54016


def _admitted(priors, grids, count, pixels):
    """The rule by hand: top down, a layer's work within what is left, else it and every layer below stop."""
    left = max(2 ** 31, 2048 * pixels)
    out = set()
    for layer in sorted(priors.configs, reverse=True):
        work = priors.multiply_adds(layer) * grids[layer - 1][0] * grids[layer - 1][1] * count
        if work > left:
            break
        left -= work
        out.add(layer)
    return out


@pytest.mark.parametrize("side", [32, 256, 512, 1024, 2048, 4096])
def test_auto_admits_the_coarse_layers_first_within_the_budget(hqa_mnist_priors, side):
    grids = [(side // s, side // s) for s in (2, 4, 8, 16, 32)]
    admitted = budget.context_layers(hqa_mnist_priors, grids, 1, side * side)
    assert admitted == _admitted(hqa_mnist_priors, grids, 1, side * side)
    assert admitted == ({1, 2, 3, 4} if side <= 256 else {2, 3, 4} if side <= 512 else {3, 4})


def test_many_small_images_count_like_one_large_one(hqa_mnist_priors):
    grids = [(16 // (2 ** i),) * 2 for i in range(5)]
    assert budget.context_layers(hqa_mnist_priors, grids, 100, 100 * 1024) == {1, 2, 3, 4}
    big = [(2048 // s, 2048 // s) for s in (2, 4, 8, 16, 32)]  # 4096 digits' pixels in one image
    assert budget.context_layers(hqa_mnist_priors, grids, 4096, 4096 * 1024) == budget.context_layers(
        hqa_mnist_priors, big, 1, 2048 * 2048) == {3, 4}


def test_no_priors_admit_no_layer():
    assert budget.context_layers(None, [(16, 16)], 1, 1024) == frozenset()


def test_the_budget_is_the_floor_or_the_pixels():
    assert budget.budget(1) == budget.FLOOR
    assert budget.budget(10 ** 7) == budget.PER_PIXEL * 10 ** 7


@pytest.fixture(scope="module")
def mosaic(six_digits):
    """uint8 [1, 384, 384, 1]: the six digits tiled, a large image (coded in bands, `Geometry.big`)."""
    tiles = six_digits[np.arange(144) % 6].reshape(12, 12, 32, 32)
    return tiles.transpose(0, 2, 1, 3).reshape(1, 384, 384, 1)


@pytest.fixture(scope="module")
def mosaic_files(mosaic):
    """hqa_digits files of the mosaic at layer 1: `smallest`'s, `auto`'s, and `auto`'s with a budget of nothing."""
    from tfvq import codec

    files = {coder: codec.compress(mosaic, "hqa_digits", layer=1, coder=coder) for coder in ("smallest", "auto")}
    floor, per_pixel = budget.FLOOR, budget.PER_PIXEL
    try:
        for name, value in (("broke", 0), ("rich", 1 << 62)):
            budget.FLOOR, budget.PER_PIXEL = value, 0
            files[name] = codec.compress(mosaic, "hqa_digits", layer=1, coder="auto")
    finally:
        budget.FLOOR, budget.PER_PIXEL = floor, per_pixel
    return files


def test_small_images_have_no_budget_auto_writes_smallests_file(six_digits, monkeypatch):
    from tfvq import codec

    smallest = codec.compress(six_digits, "hqa_digits", layer=1, coder="smallest")
    assert CONTEXT in read_header(smallest).coders.values()
    monkeypatch.setattr(budget, "FLOOR", 0)
    monkeypatch.setattr(budget, "PER_PIXEL", 0)
    assert codec.compress(six_digits, "hqa_digits", layer=1) == smallest


def test_a_large_image_within_the_budget_gets_smallests_file(mosaic_files):
    assert mosaic_files["rich"] == mosaic_files["smallest"]
    assert read_header(mosaic_files["smallest"]).coders[1] == CONTEXT


def test_a_large_images_finest_layers_past_the_budget_keep_other_coders(mosaic_files):
    """384x384: 2^31 multiply-adds admit hqa_digits' layers 2-4 (653M), not layer 1 as well (1.99G more)."""
    from tfvq import codec

    priors = context.ContextPriors.load(os.path.join(BUNDLED_WEIGHTS, "hqa_digits.context.npz"))
    grids = [(384 // s, 384 // s) for s in (2, 4, 8, 16, 32)]
    assert budget.context_layers(priors, grids, 1, 384 * 384) == {2, 3, 4}
    coders = read_header(mosaic_files["auto"]).coders
    assert coders.get(1) != CONTEXT and len(mosaic_files["auto"]) >= len(mosaic_files["smallest"])
    np.testing.assert_array_equal(codec.decompress(mosaic_files["auto"]), codec.decompress(mosaic_files["smallest"]))


def test_past_the_budget_a_large_images_auto_codes_no_layer_with_a_context_network(mosaic_files):
    from tfvq import codec

    assert CONTEXT not in read_header(mosaic_files["broke"]).coders.values()
    assert len(mosaic_files["broke"]) > len(mosaic_files["smallest"])
    np.testing.assert_array_equal(codec.decompress(mosaic_files["broke"]), codec.decompress(mosaic_files["auto"]))
