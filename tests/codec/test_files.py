"""Tests of tfvq.codec.files: `compress` and `decompress` with any zoo model with discrete codes (the bundled
hqa_digits and rrvq_digits, the VQ-VAE baseline, a toy model registered here), their models and weights, and
images resized from the size a model's training images were resized from.

A toy `CodeModel` registered for these tests only (two cumulative layers, default layer 2, tapered K) and the
VQ-VAE baseline (fresh weights) compress and decompress as HQA and RRVQ-VAE do:
`decompress(compress(x, m, l)) == m.decode(m.encode(x, l), l)` as uint8.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq import codec, data, zoo
from tfvq.code_layout import CodeLayout
from tfvq.codec import container, files
from tfvq.codec.errors import CodecError
from tfvq.codec.images import resize_back
from tfvq.data import load_numpy
from tfvq.data.tfds_datasets import mnist_to_32
from tfvq.models.code_checks import check_codes
from tfvq.models.contract import CodeModel
from tfvq.models.pixels import like_input, output_is_uint8
from tfvq.models.stateless_seeds import fold_seeds

RRVQ = "rrvq_digits"
CODE_BITS = 1705
"""rrvq_digits' bits per image at layer 1: 16x16 + 8x8 + 4x4 + 2x2 + 1x1 codes of K = 32, 5 bits each."""
ALL_UNIFORM = {l: container.UNIFORM for l in range(1, 6)}
TOY = "toy_codes_for_codec_tests"


def _tag(weights_hash):
    """The tag of a file of uniform-coded layers only: D names the weights alone."""
    return container.file_digest(weights_hash)[:container.TAG_BYTES]


# ------------------------------------------------------------------------------------------------ hqa_digits


def test_layer5_file_is_header_plus_one_byte_and_holds_the_models_codes(hqa, digit, fixed_rate, uniform_stream,
                                                                        decoded_codes):
    data = codec.compress(digit, "hqa_digits", layer=5, coder="fixed")
    header = codec.read_header(data)
    assert (header.version, header.model, header.layers, header.coders, header.images, header.image_size) == (
        4, "hqa_digits", (5,), {5: container.UNIFORM}, 1, None)
    assert header.tag == container.file_digest(codec.weights_hash(hqa))[:container.TAG_BYTES]
    # The documented 21 bytes of container (a 10-character name, one layer, one image), and the 8-bit code.
    assert header.header == container.write_header("hqa_digits", header.tag, 5, {5: container.UNIFORM})
    assert len(header.header) + 4 == 21 and len(data) == 21 + len(header.stream)
    assert fixed_rate(len(header.stream), 8) and len(data) <= 22
    expected = hqa.encode(digit[None], 5).numpy()
    np.testing.assert_array_equal(decoded_codes(data)[5], expected)
    assert header.stream == uniform_stream({5: expected}, {5: 256})
    images = codec.decompress(data)
    assert images.shape == (1, 32, 32, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, hqa.decode(expected, 5, dtype="uint8").numpy())


def test_the_default_layer_is_the_top_layer(digit):
    assert codec.compress(digit, "hqa_digits", coder="fixed") == codec.compress(digit, "hqa_digits", 5, coder="fixed")
    assert codec.code_layout("hqa_digits").default_layer == 5


@pytest.mark.parametrize("layer", [1, 3, 5])
def test_round_trip_equals_decode_of_encode_with_and_without_a_seed(hqa, two_digits, layer):
    data = codec.compress(two_digits, "hqa_digits", layer, coder="fixed")
    codes = hqa.encode(two_digits, layer)
    np.testing.assert_array_equal(codec.decompress(data), hqa.decode(codes, layer, dtype="uint8").numpy())
    seeded = hqa.decode(codes, layer, stochastic=True, seed=11, dtype="uint8").numpy()
    np.testing.assert_array_equal(codec.decompress(data, seed=11), seeded)
    np.testing.assert_array_equal(codec.decompress(data, seed=(11, 0)), seeded)  # the pair the int stands for


def test_decompression_is_deterministic_by_default_and_repeatable_with_a_seed(digit):
    data = codec.compress(digit, "hqa_digits", layer=3, coder="fixed")
    np.testing.assert_array_equal(codec.decompress(data), codec.decompress(data))
    np.testing.assert_array_equal(codec.decompress(data, seed=4), codec.decompress(data, seed=4))


def test_compression_consistent_with_encode_at_every_layer_for_float_and_uint8_batches(hqa, fixed_rate,
                                                                                       uniform_stream, decoded_codes):
    images = load_numpy("digits", "test", limit=3)
    for layer in range(1, hqa.num_layers + 1):
        data = codec.compress(images, "hqa_digits", layer, coder="fixed")
        header = codec.read_header(data)
        assert header.images == 3 and header.layers == (layer,) and header.coders == {layer: container.UNIFORM}
        assert fixed_rate(len(header.stream), 3 * hqa.bits(layer))
        expected = hqa.encode(images, layer).numpy()
        np.testing.assert_array_equal(decoded_codes(data)[layer], expected)
        assert header.stream == uniform_stream({layer: expected}, {layer: 256})
    assert codec.decompress(data).shape == (3, 32, 32, 1)
    pixels = np.round(images * 255).astype(np.uint8)
    assert decoded_codes(codec.compress(pixels, "hqa_digits", 2, coder="fixed"))[2].shape == (3, 8, 8)


def test_other_weights_are_refused(digit, old_weights, retag):
    data = retag(codec.compress(digit, "hqa_digits", 5, coder="fixed"), tag=b"\0\0")
    with pytest.raises(CodecError, match="made with other weights.*--weights=PATH"):
        codec.decompress(data)
    # A file made with other weights (the hqa_digits weights of the version 1 files) needs them back.
    data = codec.compress(digit, "hqa_digits", 5, coder="fixed", weights=old_weights)
    with pytest.raises(CodecError, match="made with other weights.*--weights=PATH"):
        codec.decompress(data)
    old_model = codec.load_model("hqa_digits", old_weights)[0]
    np.testing.assert_array_equal(codec.decompress(data, weights=old_weights), old_model.decode(
        old_model.encode(digit[None], 5), 5, dtype="uint8").numpy())


def test_unknown_model_is_refused(retag, digit):
    data = retag(codec.compress(digit, "hqa_digits", 5, coder="fixed"), model="hqa_imagenet")
    with pytest.raises(CodecError, match="'hqa_imagenet' is not in this tfvq's zoo"):
        codec.decompress(data)


def test_bad_images_layers_and_seeds_are_refused(digit):
    with pytest.raises(CodecError, match=r"images \[H, W, 1\] or \[N, H, W, 1\] of any size with 1 channel"):
        codec.compress(np.zeros((28, 28, 3), np.uint8), "hqa_digits", 5, coder="fixed")
    with pytest.raises(CodecError, match=r"values in \[0, 1\], got values in \[2, 2\]"):
        codec.compress(np.full((32, 32, 1), 2.0, np.float32), "hqa_digits", 5, coder="fixed")
    with pytest.raises(CodecError, match="got dtype int32"):
        codec.compress(np.zeros((32, 32, 1), np.int32), "hqa_digits", 5, coder="fixed")
    with pytest.raises(CodecError, match="1..65535 images, got 0"):
        codec.compress(np.zeros((0, 32, 32, 1), np.uint8), "hqa_digits", 5, coder="fixed")
    for layer in (6, 0, "2", 2.0, True):
        with pytest.raises(CodecError, match=r"code layers 1..5 .*omit the layer for the model's default, layer 5"):
            codec.compress(digit, "hqa_digits", layer, coder="fixed")
    with pytest.raises(ValueError, match="seed must be None, an int or a pair of ints"):
        codec.decompress(codec.compress(digit, "hqa_digits", 5, coder="fixed"), seed="7")


# ----------------------------------------------------------------------------------------------- rrvq_digits


def test_default_file_holds_every_layer_and_is_header_plus_code_bits(rrvq, rrvq_file, three_digits, fixed_rate,
                                                                     uniform_stream):
    layout = rrvq.code_layout()
    assert layout.default_layer == 1 and layout.bits(1) == CODE_BITS == 1705
    header = codec.read_header(rrvq_file)
    assert (header.version, header.model, header.first_layer, header.layers, header.images, header.image_size,
            header.lossless) == (4, RRVQ, 1, (1, 2, 3, 4, 5), 3, None, False)
    assert header.coders == ALL_UNIFORM  # every layer at the fixed rate, log2 32 = 5 bits per code
    assert header.tag == _tag(codec.weights_hash(rrvq))
    # The header is what the container writes for it: 2 + 1 + 1 + 11 + 2 + 1 + 2 (layer word 1 << 10) + 1 (3 images).
    assert header.header == container.write_header(RRVQ, header.tag, 1, ALL_UNIFORM, images=3)
    assert len(header.header) == 20
    assert len(rrvq_file) == len(header.header) + len(header.stream) + 4
    assert fixed_rate(len(header.stream), 3 * CODE_BITS) and math.ceil(3 * CODE_BITS / 8) == 640
    codes = rrvq.encode(three_digits)
    assert header.stream == uniform_stream({l: c for l, c in zip(range(1, 6), codes)}, dict.fromkeys(range(1, 6), 32))
    one = codec.compress(three_digits[0], RRVQ, coder="fixed")
    f = codec.read_header(one)
    assert f.header == container.write_header(RRVQ, f.tag, 1, ALL_UNIFORM) and len(f.header) == 19
    assert len(one) == 19 + len(f.stream) + 4 and fixed_rate(len(f.stream), CODE_BITS)  # about 214 bytes of codes


def test_round_trip_equals_decode_of_encode_exactly(rrvq, three_digits, rrvq_file):
    images = codec.decompress(rrvq_file)
    assert images.shape == (3, 32, 32, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, rrvq.decode(rrvq.encode(three_digits), dtype="uint8").numpy())
    np.testing.assert_array_equal(images, rrvq.reconstruct(three_digits).numpy())  # uint8 in, uint8 out
    np.testing.assert_array_equal(codec.decompress(rrvq_file), images)  # deterministic


def test_a_seed_changes_nothing_when_every_layer_is_stored(rrvq_file):
    np.testing.assert_array_equal(codec.decompress(rrvq_file, seed=1), codec.decompress(rrvq_file))


def test_a_file_of_layer_3_holds_layers_3_to_5_and_the_prior_fills_in_below(rrvq, three_digits, fixed_rate,
                                                                            uniform_stream, decoded_codes):
    x = three_digits[:2]
    data = codec.compress(x, RRVQ, layer=3, coder="fixed")
    header = codec.read_header(data)
    assert (header.first_layer, header.layers, header.coders) == (3, (3, 4, 5), {3: 0, 4: 0, 5: 0})
    assert rrvq.code_layout().bits(3) == 105 and fixed_rate(len(header.stream), 2 * 105)
    assert header.header == container.write_header(RRVQ, header.tag, 3, {3: 0, 4: 0, 5: 0}, images=2)
    assert len(data) == len(header.header) + len(header.stream) + 4
    codes = rrvq.encode(x, 3)
    decoded = decoded_codes(data)
    for l, want in zip((3, 4, 5), codes):
        np.testing.assert_array_equal(decoded[l], want)
    assert header.stream == uniform_stream(dict(zip((3, 4, 5), codes)), dict.fromkeys((3, 4, 5), 32))
    np.testing.assert_array_equal(codec.decompress(data), rrvq.decode(codes, 3, dtype="uint8").numpy())
    sampled = codec.decompress(data, seed=5)
    np.testing.assert_array_equal(sampled, rrvq.decode(codes, 3, stochastic=True, seed=5, dtype="uint8").numpy())
    np.testing.assert_array_equal(codec.decompress(data, seed=5), sampled)  # repeatable
    assert not np.array_equal(codec.decompress(data, seed=6), sampled)  # the prior is sampled below layer 3


def test_a_bad_layer_is_refused(three_digits):
    for layer in (0, 6, -1):
        with pytest.raises(CodecError, match=r"'rrvq_digits' has code layers 1..5 .*default, layer 1"):
            codec.compress(three_digits, RRVQ, layer, coder="fixed")


def test_spatial_vae_has_no_codes(rrvq_fixed_file):
    assert codec.model_spec("spatial_vae_cifar10").layout is None
    with pytest.raises(CodecError, match="'spatial_vae_cifar10' has no discrete codes.*code_layout"):
        codec.compress(np.zeros((32, 32, 3), np.uint8), "spatial_vae_cifar10", coder="fixed")
    with pytest.raises(CodecError, match="no discrete codes"):
        codec.rate_table("spatial_vae_cifar10")
    with pytest.raises(CodecError, match="no discrete codes"):
        codec.code_layout("spatial_vae_cifar10")
    with pytest.raises(CodecError, match="no discrete codes"):
        codec.decompress(rrvq_fixed_file({1: np.zeros((1, 1, 1), int)}, 1, ks=(2,), model="spatial_vae_cifar10"))


# --------------------------------------------------------------------------------- any model with codes


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


# ------------------------------------------------------------------ images of a model's native size, resized


def test_mnist_datasets_name_the_size_they_were_resized_from():
    assert data.info("mnist").resized_from == data.info("mnist10k").resized_from == (28, 28)
    assert data.info("digits").resized_from is None and data.info("cifar10").resized_from is None
    assert files.native_size("hqa_mnist") == files.native_size("vqvae_mnist") == (28, 28)
    assert files.native_size("hqa_digits") is None  # the 8x8 digits: not resized (docs/compression.md)


def test_a_28x28_digit_is_coded_at_32x32_and_decodes_to_28x28(digits28, resized_file):
    f = codec.read_header(resized_file)
    assert (f.image_size, f.resized, f.lossless, f.first_layer) == ((28, 28), True, False, 2)
    assert resized_file[2] == 0x40 | container.SIZED | container.RESIZED
    decoded = codec.decompress(resized_file)
    assert decoded.dtype == np.uint8 and decoded.shape == (1, 28, 28, 1)
    # The model's images of the digit as it learned them (mnist_to_32), resized back.
    model = codec.load_model("hqa_mnist")[0]
    x32 = mnist_to_32(digits28[:1]).numpy()
    np.testing.assert_array_equal(decoded, resize_back(model.reconstruct(x32, 2).numpy(), 28, 28))
    seeded = codec.decompress(resized_file, seed=3)
    assert seeded.shape == (1, 28, 28, 1)
    np.testing.assert_array_equal(seeded, codec.decompress(resized_file, seed=3))


def test_resize_off_writes_the_files_of_before(digits28, old_files):
    kept = (old_files / "hqa_mnist_layer2_v4_28x28.tfvq").read_bytes()
    off = codec.compress(digits28, "hqa_mnist", layer=2, resize="off")
    assert off == kept and not codec.read_header(off).resized
    both = codec.compress(digits28, "hqa_mnist", layer=2)
    f = codec.read_header(both)
    assert f.resized and f.images == 2 and codec.decompress(both).shape == (2, 28, 28, 1)


def test_only_lossy_images_of_the_native_size_are_resized(digits28):
    other = codec.compress(digits28[:1, :27], "hqa_mnist", layer=5)  # 27x28: coded at its size, padded
    assert (codec.read_header(other).image_size, codec.read_header(other).resized) == ((27, 28), False)
    own = codec.compress(mnist_to_32(digits28[:1]).numpy(), "hqa_mnist", layer=5)
    assert (codec.read_header(own).image_size, codec.read_header(own).resized) == (None, False)
    with pytest.raises(ValueError, match="resize must be one of auto, off"):
        codec.compress(digits28[:1], "hqa_mnist", resize="on")
