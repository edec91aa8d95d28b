"""The embedded digits for the tests of the autoencoders of today's quantizers (`tfvq.models.quantized_ae`)."""

import pytest

from tfvq import data


@pytest.fixture(scope="module")
def digits():
    """64 training digits, 32x32x1 floats in [0, 1]."""
    return data.load_numpy("digits", "train", limit=64)
