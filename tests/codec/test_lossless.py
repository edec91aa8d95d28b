"""Tests of tfvq.codec.lossless: a lossless file's pixels, coded after the codes under the model's p(x | z)."""

import numpy as np
import pytest

from tfvq import codec
from tfvq.codec import entropy, lossless
from tfvq.codec.errors import CodecError


def test_rrvq_lossless_gives_the_exact_pixels_back(rrvq, six_digits):
    data = codec.compress(six_digits, "rrvq_digits", lossless=True)
    np.testing.assert_array_equal(codec.decompress(data), six_digits)
    with pytest.raises(CodecError, match="no pixel likelihood"):
        codec.compress(six_digits, "hqa_digits", lossless=True)
    with pytest.raises(CodecError, match="pass uint8"):
        codec.compress(six_digits / 255.0, "rrvq_digits", lossless=True)


class _Likelihood:
    """A model whose p(x | z) is a discretised logistic at the codes' level (code / 4) with log-scale -3: codes
    [count, 1, 1] give each grid (an image, or a tile) its location, so the pixels' tables differ from grid to
    grid."""

    def __init__(self, grid):
        self.grid = grid

    def pixel_likelihood(self, codes, layer):
        level = np.asarray(codes[0], np.float32)[:, :1, :1, None] / 4
        loc = np.broadcast_to(level, (len(level),) + self.grid + (1,))
        return loc, np.full_like(loc, -3.0)


class _NoLikelihood:
    def pixel_likelihood(self, codes, layer):
        return None


@pytest.mark.parametrize("tile", [None, (2, 2)])
def test_pixels_round_trip_under_the_models_likelihood_in_groups_of_images(tile):
    """More images than a GROUP, of a size padded to 4x4 (whole, or in tiles of 2x2)."""
    n = lossless.GROUP + 2
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 3, 4, 1)).astype(np.uint8)
    per = 1 if tile is None else 4
    codes = [rng.integers(0, 4, (n * per, 1, 1))]
    model = _Likelihood((4, 4) if tile is None else tile)
    encoder = entropy.Encoder()
    lossless.code_pixels(encoder, model, codes, 1, images, (4, 4), tile)
    decoder = entropy.Decoder(encoder.bytes(), "test")
    out = lossless.decode_pixels(decoder, model, codes, 1, n, 1, (4, 4), tile, 3, 4, "toy")
    assert out.dtype == np.uint8 and out.shape == images.shape
    np.testing.assert_array_equal(out, images)
    # Pixels at the likelihood's location cost fewer bits than random ones.
    near = np.full_like(images, 0)
    cheap = entropy.Encoder()
    lossless.code_pixels(cheap, model, [np.zeros_like(codes[0])], 1, near, (4, 4), tile)
    assert cheap.bits < encoder.bits / 4


def test_a_model_without_a_pixel_likelihood_codes_and_decodes_no_pixels():
    images = np.zeros((1, 4, 4, 1), np.uint8)
    with pytest.raises(CodecError, match=r"no pixel likelihood p\(x \| z\).*drop --lossless"):
        lossless.code_pixels(entropy.Encoder(), _NoLikelihood(), [np.zeros((1, 1, 1))], 1, images, (4, 4), None)
    encoder = entropy.Encoder()
    encoder.flags(np.zeros(16, bool))
    with pytest.raises(CodecError, match="The file is lossless, but 'toy' has no pixel likelihood"):
        lossless.decode_pixels(entropy.Decoder(encoder.bytes(), "test"), _NoLikelihood(), [np.zeros((1, 1, 1))],
                               1, 1, 1, (4, 4), None, 4, 4, "toy")
