"""Tiny RRVQ-VAEs for the tests of the hierarchical VAEs (`tfvq.models.rrvq`): 8x8x1 images, latents 4x4, 2x2,
1x1, K = 8, d_e = 4, 8 channels; images on the 8-bit grid; the bottom-up features of any of them. The
paper-sized configurations are checked in test_presets.py."""

import numpy as np
import pytest
import tensorflow as tf

from tfvq.models.rrvq import RRVQVAE


@pytest.fixture(scope="session")
def tiny():
    """`tiny(**changes)`: a seeded tiny RRVQ-VAE, its configuration changed by `changes`."""
    def build(**changes):
        config = dict(image_shape=(8, 8, 1), latent_sizes=[4, 2, 1], num_codes=8, code_dim=4, channels=8, seed=0)
        return RRVQVAE(**{**config, **changes})

    return build


@pytest.fixture(scope="session")
def images():
    """`images(n=3, shape=(8, 8, 1), seed=0)`: float images on the 8-bit grid, with both edge values 0 and 255."""
    def draw(n=3, shape=(8, 8, 1), seed=0):
        v = np.random.default_rng(seed).integers(0, 256, size=(n,) + tuple(shape))
        v.flat[0], v.flat[1] = 0, 255
        return (v / 255.0).astype(np.float32)

    return draw


@pytest.fixture(scope="session")
def deterministic_features():
    """`deterministic_features(model, x)`: d^_1..d^_L of a hierarchical VAE's bottom-up chain (RRVQ eq. 4),
    recomputed from the model's sublayers."""
    def features(model, x):
        h = model.stem(2.0 * tf.constant(x) - 1.0)
        hats = []
        for enc in model.enc:
            h = enc(h)
            hats.append(h)
        return hats

    return features


@pytest.fixture(scope="module")
def plain(tiny):
    """A tiny model the tests only read (never assign to)."""
    return tiny()
