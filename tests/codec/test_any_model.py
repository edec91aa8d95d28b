"""The codec works for any zoo model that follows the model contract, asking it only for its codes.

A toy `CodeModel` registered for these tests only (two cumulative layers, default layer 2,
tapered K) and the VQ-VAE baseline (fresh weights) compress and decompress as HQA and
RRVQ-VAE do: `decompress(compress(x, m, l)) == m.decode(m.encode(x, l), l)` as uint8.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq import codec, zoo
from tfvq.code_layout import CodeLayout
from tfvq.codec import container
from tfvq.codec.errors import CodecError
from tfvq.models.code_checks import check_codes
from tfvq.models.contract import CodeModel
from tfvq.models.pixels import like_input, output_is_uint8
from tfvq.models.stateless_seeds import fold_seeds

TOY = "toy_codes_for_codec_tests"


class ToyCodes(CodeModel):
    """4x4x1 images; layer 1: the 2x2 block means in 5 levels (K=5), layer 2: the image mean in 3 levels (K=3).

    `encode(x, l)` gives layers l..2 (cumulative). Without layer 1, `decode`
    takes every block as the image mean, plus a random 0 or 1 level if
    `stochastic`. `scale` is a weight, so the weights hash means something.
    """

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = (4, 4, 1)
        self.scale = self.add_weight(shape=(), initializer=keras.initializers.Constant(scale), name="scale")
        self._layout = CodeLayout(((2, 2), (1, 1)), (5, 3), default_layer=2, cumulative=True)
        self.built = True

    def code_layout(self):
        return self._layout

    def encode(self, images, layer=None, stochastic=False, seed=None):
        layer = self._layout.check_layer(layer)
        x, _ = self.check_images(images)
        blocks = tf.cast(tf.round(tf.nn.avg_pool2d(x, 2, 2, "VALID")[..., 0] * 4), tf.int32)
        mean = tf.cast(tf.round(tf.reduce_mean(x, axis=[1, 2, 3]) * 2), tf.int32)[:, None, None]
        return self._codes_out([blocks, mean][layer - 1:])

    def decode(self, codes, layer=None, stochastic=False, seed=None, dtype="float32"):
        layer = self._layout.check_layer(layer)
        codes = check_codes(codes, self._layout, layer)
        if layer == 1:
            blocks = codes[0]
        else:
            blocks = tf.tile(codes[-1] * 2, [1, 2, 2])
            if stochastic:
                (s,) = fold_seeds(seed, 1)
                blocks += tf.random.stateless_uniform(tf.shape(blocks), s, 0, 2, dtype=tf.int32)
        x = tf.repeat(tf.repeat(tf.cast(blocks, tf.float32) / 4, 2, axis=1), 2, axis=2)[..., None] * self.scale
        return like_input(x, output_is_uint8(dtype))

    def get_config(self):
        return {"scale": float(self.scale.numpy())}


@pytest.fixture(scope="module")
def toy_weights(tmp_path_factory):
    """ToyCodes registered in the zoo for this module (removed afterwards), and two weights files."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(zoo.registry._FAMILIES, TOY, ToyCodes)
        mp.setitem(zoo.registry._REGISTRY, TOY, zoo.ZooEntry(
            name=TOY, family=TOY, config={}, train={}, dataset="digits", paper="none", table="none",
            description="a toy model for the codec tests"))
        folder = tmp_path_factory.mktemp("toy")
        paths = []
        for scale in (1.0, 0.5):
            path = folder / f"scale{scale}.weights.h5"
            ToyCodes(scale=scale).save_weights(str(path))
            paths.append(path)
        yield paths


@pytest.fixture(scope="module")
def toy_images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(3, 4, 4, 1)).astype(np.uint8)


def test_a_model_the_codec_has_never_heard_of_round_trips_at_every_layer(toy_weights, toy_images, decoded_codes,
                                                                         uniform_stream):
    model, _ = codec.load_model(TOY, toy_weights[0])
    assert codec.code_layout(TOY) == model.code_layout()
    layout = model.code_layout()
    for layer, layers in [(None, (2,)), (2, (2,)), (1, (1, 2))]:
        data = codec.compress(toy_images, TOY, layer, weights=toy_weights[0], coder="fixed")
        header = codec.read_header(data)
        assert (header.version, header.model, header.layers, header.images) == (4, TOY, layers, 3)
        assert header.coders == {l: container.UNIFORM for l in layers}
        assert header.tag == container.file_digest(codec.weights_hash(model))[:container.TAG_BYTES]
        # Ks 5 and 3 are not powers of 2: the uniform table spends log2 K bits, no more than the fixed rate.
        assert len(header.stream) <= math.ceil(3 * layout.bits(layer) / 8) + 2
        codes = model.encode(toy_images, layer)
        decoded = decoded_codes(data, toy_weights[0])
        assert sorted(decoded) == list(layers)
        for l, want in zip(layers, tf.nest.flatten(codes)):
            np.testing.assert_array_equal(decoded[l], want)
        assert header.stream == uniform_stream(decoded, {1: 5, 2: 3})  # each code under the uniform table of its K
        at = layers[0]
        np.testing.assert_array_equal(codec.decompress(data, weights=toy_weights[0]),
                                      model.decode(codes, at, dtype="uint8").numpy())
        np.testing.assert_array_equal(codec.decompress(data, seed=3, weights=toy_weights[0]),
                                      model.decode(codes, at, stochastic=True, seed=3, dtype="uint8").numpy())
    rows = codec.rate_table(TOY)
    assert [(r["layer"], r["layers"], r["bits"], r["default"]) for r in rows] == [
        (1, (1, 2), 4 * 3 + 2, False), (2, (2,), 2, True)]
    header = container.write_header(TOY, bytes(2), 1, {1: container.UNIFORM, 2: container.UNIFORM})
    assert len(header) == 2 + 1 + 1 + len(TOY) + 2 + 1 and rows[0]["file_bytes"] == len(header) + 4 + 2


def test_a_file_needs_the_weights_it_was_made_with(toy_weights, toy_images):
    data = codec.compress(toy_images, TOY, 1, weights=toy_weights[0], coder="fixed")
    with pytest.raises(CodecError, match="made with other weights"):
        codec.decompress(data, weights=toy_weights[1])
    with pytest.raises(CodecError, match="Cannot load weights.*no bundled weights"):
        codec.decompress(data)


def test_the_vqvae_baseline_round_trips(tmp_path, two_digits, decoded_codes, uniform_stream):
    path = tmp_path / "vqvae.weights.h5"
    zoo.build("vqvae_mnist").save_weights(str(path))
    model, _ = codec.load_model("vqvae_mnist", path)
    data = codec.compress(two_digits, "vqvae_mnist", weights=path, coder="fixed")
    header = codec.read_header(data)
    assert (header.layers, header.coders, header.images) == ((1,), {1: container.UNIFORM}, 2)
    assert model.code_layout().grids == ((1, 1),) and model.code_layout().num_codes == (256,)
    assert model.code_layout().bits(1) == 8 and len(header.stream) <= 2 + 2
    codes = model.encode(two_digits)
    decoded = decoded_codes(data, path)
    np.testing.assert_array_equal(decoded[1], tf.nest.flatten(codes)[0])
    assert decoded[1].shape == (2, 1, 1) and header.stream == uniform_stream(decoded, {1: 256})
    expected = model.decode(model.encode(two_digits), dtype="uint8").numpy()
    np.testing.assert_array_equal(codec.decompress(data, weights=path), expected)
    np.testing.assert_array_equal(codec.decompress(data, seed=1, weights=path), expected)  # nothing to sample
