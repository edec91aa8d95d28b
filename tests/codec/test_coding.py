"""Tests of tfvq.codec.coding: which layers a file stores and how each is coded (the coders, `auto`'s choice,
rate-chosen codes), images of any size, and files that do not fit the model."""

import numpy as np
import pytest

from tfvq import codec
from tfvq.codec import coding, container, entropy
from tfvq.codec.errors import CodecError
from tfvq.codec.prior import StaticPrior


@pytest.fixture(scope="module")
def rrvq_mnist():
    return codec.Compressor("rrvq_mnist")


@pytest.mark.parametrize("coder", ["auto", "static", "progressive"])
@pytest.mark.parametrize("layer", [1, 2, 4])
def test_hqa_files_decode_to_the_models_decode_of_its_codes(hqa, six_digits, coder, layer):
    data = codec.compress(six_digits, "hqa_digits", layer, coder=coder)
    header = codec.read_header(data)
    assert header.version == 4 and header.first_layer == layer and header.image_size is None
    want = hqa.decode(hqa.encode(six_digits, layer), layer, dtype="uint8").numpy()
    # the Keras model's images exactly (the TFLite decoders' are within a grey level: tests/codec/test_lite_model.py)
    np.testing.assert_array_equal(codec.decompress(data, backend="tensorflow"), want)
    if coder == "progressive":  # one file, every rate: stop after any layer
        assert header.layers == tuple(range(layer, 6))
        for j in header.layers:
            np.testing.assert_array_equal(codec.decompress(data, layer=j, backend="tensorflow"),
                                          hqa.decode(hqa.encode(six_digits, j), j, dtype="uint8").numpy())
    if coder == "static":
        assert header.coders == {layer: container.STATIC}


def test_auto_takes_the_coding_of_fewest_bits_for_each_layer(rrvq, six_digits):
    auto = codec.read_header(codec.compress(six_digits, "rrvq_digits", coder="auto"))
    codes = coding.encode_layers(rrvq, six_digits, set(range(1, 6)))
    prior = codec.load_prior("rrvq_digits", *codec.load_model("rrvq_digits"))
    for l in range(1, 6):
        bits = {}
        for coder in (container.UNIFORM, container.STATIC, container.MODEL):
            encoder = entropy.Encoder()
            assert coding.code_layer(encoder, rrvq, coder, codes, l, prior)
            bits[coder] = encoder.bits
        assert bits[auto.coders[l]] == min(bits.values())
    (h, w), k = rrvq.code_layout().grids[4], rrvq.code_layout().num_codes[4]
    assert bits[container.UNIFORM] == pytest.approx(len(six_digits) * h * w * np.log2(k))  # the top at the fixed rate


def test_images_of_any_size_are_padded_or_tiled_and_cropped_back(hqa, rrvq):
    from tfvq.codec.images import pad_reflect, to_tiles

    x = np.random.default_rng(5).integers(0, 256, size=(1, 45, 37, 1)).astype(np.uint8)
    y = codec.decompress(codec.compress(x, "hqa_digits", 2))
    big = hqa.with_image_shape((64, 64, 1))
    padded = pad_reflect(x, 64, 64)
    assert y.shape == (1, 45, 37, 1)
    np.testing.assert_array_equal(y, big.decode(big.encode(padded, 2), 2, dtype="uint8").numpy()[:, :45, :37])
    # RRVQ-VAE takes 32x32 images only: the codec tiles.
    y = codec.decompress(codec.compress(x, "rrvq_digits"))
    tiles = to_tiles(pad_reflect(x, 64, 64), (32, 32))
    want = rrvq.decode(rrvq.encode(tiles), dtype="uint8").numpy()
    np.testing.assert_array_equal(y[0, :32, :32], want[0])
    np.testing.assert_array_equal(codec.decompress(codec.compress(x, "rrvq_digits", lossless=True)), x)


@pytest.mark.parametrize("name", ["hqa_digits", "vqvae_mnist", "fsq_digits", "rrvq_digits"])
def test_the_code_grids_of_any_size_are_known_without_building_the_model(name):
    from tfvq import zoo

    model = zoo.build(name)
    for height, width in ((32, 32), (20, 30), (45, 37), (64, 96)):
        geometry = coding.Geometry(model, height, width)
        assert geometry.layout == geometry.sized.code_layout()  # what decoding a file's codes needs
        if model.code_stride() is None:  # tiles of the model's own size
            assert geometry.sized is model and geometry.tiles == -(-height // 32) * -(-width // 32)


def test_stream_is_the_models_codes_range_coded_top_layer_first(rrvq, three_digits, rrvq_file, uniform_stream,
                                                                decoded_codes):
    codes = [c.numpy() for c in rrvq.encode(three_digits)]
    decoded = decoded_codes(rrvq_file)
    assert sorted(decoded) == [1, 2, 3, 4, 5]
    for l, want in zip(range(1, 6), codes):
        assert decoded[l].dtype == np.int32 and decoded[l].shape == (3, 16 >> (l - 1), 16 >> (l - 1))
        np.testing.assert_array_equal(decoded[l], want)
    # The stream is exactly the codes under the uniform table of K = 32, layer 5 first.
    stream = entropy.Encoder()
    for want in reversed(codes):
        stream.static(want.ravel(), entropy.uniform_table(32))
    assert codec.read_header(rrvq_file).stream == stream.shortest() == uniform_stream(decoded, dict.fromkeys(
        range(1, 6), 32))


def test_a_file_that_does_not_fit_the_model_is_refused(retag, hqa, two_digits, decoded_codes, fixed_file):
    data = codec.compress(two_digits, "hqa_digits", 5, coder="fixed")
    digest = container.file_digest(codec.weights_hash(hqa))
    codes = decoded_codes(data)
    assert fixed_file("hqa_digits", codes, 5, {5: 256}, digest) == data  # the helper writes what compress writes
    with pytest.raises(CodecError, match=r"holds the codes of layer 6, but 'hqa_digits' has code layers 1..5"):
        codec.decompress(retag(data, first_layer=6, coders={6: container.UNIFORM}))
    # Version 4 stores no grids or Ks (they follow from the model): a layer 5 stream read as layer 4's 2x2 grid,
    # or codes coded for another K, decode to other codes, which the CRC refuses (or the range decoder before it).
    with pytest.raises(CodecError, match="CRC-32|could not be decoded"):
        codec.decompress(retag(data, first_layer=4, coders={4: container.UNIFORM}))
    layer3 = hqa.encode(two_digits, 3).numpy()
    assert np.array_equal(decoded_codes(fixed_file("hqa_digits", {3: layer3}, 3, {3: 256}, digest))[3], layer3)
    with pytest.raises(CodecError, match="CRC-32|could not be decoded"):
        codec.decompress(fixed_file("hqa_digits", {3: layer3}, 3, {3: 300}, digest))
    # A layer coded by the model given the layer above, which the file does not hold, is refused before decoding.
    with pytest.raises(CodecError, match="codes layer 3 with the model's probabilities given layer 4, which it does "
                                         "not hold"):
        codec.decompress(retag(fixed_file("hqa_digits", {3: layer3}, 3, {3: 256}, digest),
                                coders={3: container.MODEL}))
    # A file of layers 4..5 holds what a file of layer 4 needs: it decodes at layer 4, and at 5.
    four = hqa.encode(two_digits, 4).numpy()
    both = fixed_file("hqa_digits", {4: four, 5: codes[5]}, 4, {4: 256, 5: 256}, digest)
    np.testing.assert_array_equal(codec.decompress(both), hqa.decode(four, 4, dtype="uint8").numpy())
    np.testing.assert_array_equal(codec.decompress(both, layer=5), codec.decompress(data))
    with pytest.raises(CodecError, match="cannot be decoded at layer 4, which needs layer 4\\."):
        codec.decompress(data, layer=4)


def test_files_that_do_not_fit_the_model_are_refused(rrvq, rrvq_file, decoded_codes, rrvq_fixed_file):
    codes = decoded_codes(rrvq_file)
    # The file's own codes, written again by hand: the same file (the helper writes what compress writes).
    assert rrvq_fixed_file(codes, 1) == rrvq_file
    with pytest.raises(CodecError, match="made with other weights of 'rrvq_digits'"):
        codec.decompress(rrvq_fixed_file(codes, 1, weights_hash=b"\0" * 8))
    # Version 4 stores no grids or Ks (they follow from the model): codes coded for another K or another grid
    # decode to other codes, which the CRC refuses (or the range decoder, before it).
    with pytest.raises(CodecError, match="CRC-32|could not be decoded"):
        codec.decompress(rrvq_fixed_file(codes, 1, ks=(33,) + (32,) * 4))
    with pytest.raises(CodecError, match="CRC-32|could not be decoded"):
        codec.decompress(rrvq_fixed_file({**codes, 5: np.arange(12).reshape(3, 2, 2) % 32}, 1))
    with pytest.raises(CodecError, match="holds layers 1..4, but decoding layer 1 of 'rrvq_digits' needs layers "
                                         "1..5"):
        codec.decompress(rrvq_fixed_file({l: codes[l] for l in range(1, 5)}, 1))
    with pytest.raises(CodecError, match="holds layer 2, but decoding layer 2 of 'rrvq_digits' needs layers "
                                         "2..5"):
        codec.decompress(rrvq_fixed_file({2: codes[2]}, 2))
    with pytest.raises(CodecError, match="holds the codes of layers 6..10, but 'rrvq_digits' has code layers 1..5"):
        codec.decompress(rrvq_fixed_file({l + 5: codes[l] for l in codes}, 6, ks=(32,) * 10))
    # A file of layers 2..5 is what encode(x, 2) gives: it fits, and decodes as the model decodes those codes.
    two = rrvq_fixed_file({l: codes[l] for l in range(2, 6)}, 2)
    np.testing.assert_array_equal(codec.decompress(two), rrvq.decode([codes[l] for l in range(2, 6)], 2,
                                                                      dtype="uint8").numpy())
    assert codec.decompress(two).shape == (3, 32, 32, 1)


def test_bundled_rrvq_mnist_files_send_the_rate_chosen_top_codes_and_decode_exactly(rrvq_mnist, mnist_digits,
                                                                                    decoded_codes):
    prior = rrvq_mnist.prior
    assert prior.rate_weights == {5: 2.0}
    data = bytes(rrvq_mnist.compress(mnist_digits, None, "auto", True))
    decoded = codec.decompress(data)
    np.testing.assert_array_equal(decoded, mnist_digits)
    codes = coding.encode_layers(rrvq_mnist.model, mnist_digits, {1, 2, 3, 4, 5}, prior.code_bias())
    plain = coding.encode_layers(rrvq_mnist.model, mnist_digits, {1, 2, 3, 4, 5})
    top = np.log(prior.table(5) / prior.table(5).sum())
    # the sent top codes cost fewer bits under the table than q's modes
    assert -top[codes[5]].sum() < -top[plain[5]].sum()
    sent = decoded_codes(data)
    for l in range(1, 6):
        np.testing.assert_array_equal(sent[l], codes[l])


def test_a_prior_with_rate_weights_is_refused_for_a_model_without_q(monkeypatch):
    hqa = codec.Compressor("vq_digits")
    monkeypatch.setattr(hqa, "prior", StaticPrior(hqa.prior.model, hqa.prior.weights_hash, hqa.prior.counts,
                                                  hqa.prior.source, rate_weights={1: 1.0}))
    with pytest.raises(CodecError, match="no q to choose codes by rate"):
        hqa.compress(np.zeros((1, 32, 32, 1), np.uint8))
