"""Entropy-coded files: integer tables, round trips through every coder, any size, lossless, other kernels."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from tfvq import codec
from tfvq import cli
from tfvq.codec import coding, container, entropy
from tfvq.codec.errors import CodecError
from tfvq.losses.likelihoods import discretized_logistic_log_prob


# ---------------------------------------------------------------------------------------------- the rule
def test_frequencies_follow_the_documented_rule():
    w = np.array([[0, 5, 7, 0], [0, 0, 0, 0], [1 << 40, 1, 0, 3]], np.int64)
    f = entropy.frequencies(w)
    t, k = entropy.TOTAL, 4
    for row, wr in zip(f, w):
        assert row.sum() == t and row.min() >= 1
    # The closed form on the first row: 1 + floor(w (T - K) / sum w), the rest to the first largest weight.
    want = 1 + (w[0] * (t - k)) // 12
    want[2] += t - want.sum()
    np.testing.assert_array_equal(f[0], want)
    np.testing.assert_array_equal(f[1], [t // 4] * 4)  # all-zero weights: uniform


def test_log_probabilities_are_rounded_to_the_grid_and_ambiguous_values_flagged():
    step = entropy.LOG_STEP
    lp = np.log(np.array([[0.7, 0.2, 0.1], [0.5, 0.25, 0.25]]))
    f, ambiguous = entropy.quantise_log_probs(lp)
    q = np.floor(lp / step + 0.5)
    w = np.array([[round(math.exp(v * step) * 2 ** 40) for v in row] for row in q], np.int64)
    np.testing.assert_array_equal(f, entropy.frequencies(w))
    assert not ambiguous.any()
    # A value a hair from a rounding boundary (k + 1/2 steps) is ambiguous; one far below the lowest level is not.
    near = np.array([[-(3.5 * step) + 1e-6, -100.0, 0.0]])
    assert entropy.quantise_log_probs(near)[1].tolist() == [True]
    assert entropy.quantise_log_probs(np.array([[-100.0, 0.0]]))[1].tolist() == [False]


def test_pixel_tables_approximate_the_discretised_logistic():
    loc = np.array([0.5, 0.1, 0.93, -0.2], np.float32)
    log_scale = np.array([-3.0, -5.5, -1.0, -7.0], np.float32)
    f, _ = entropy.pixel_frequencies(loc, log_scale)
    assert (f.sum(-1) == entropy.TOTAL).all() and f.min() >= 1
    # The exact pmf of the rounded parameters (the table's target), within the tables' resolution.
    lq = np.floor(loc / entropy.LOC_STEP + 0.5) * entropy.LOC_STEP
    sq = np.floor(log_scale / entropy.SCALE_STEP + 0.5) * entropy.SCALE_STEP
    exact = np.exp(discretized_logistic_log_prob(np.arange(256)[None], lq[:, None].astype(np.float64),
                                                 sq[:, None].astype(np.float64)).numpy())
    assert np.abs(f / entropy.TOTAL - exact).max() < 0.02  # the sigmoid table's step is 1/64 logistic units
    np.testing.assert_array_equal(f.argmax(-1), exact.argmax(-1))


def test_range_coding_round_trips_with_escapes():
    rng = np.random.default_rng(0)
    tables = entropy.frequencies(rng.integers(0, 1000, size=(500, 7)))
    symbols = rng.integers(0, 7, size=500)
    ambiguous = rng.random(500) < 0.1
    fallback = entropy.frequencies(np.ones(7, np.int64))
    encoder = entropy.Encoder()
    encoder.flags(ambiguous)
    encoder.escaped(symbols, tables, ambiguous, fallback)
    decoder = entropy.Decoder(encoder.bytes(), "test")
    flags = decoder.flags(500)
    np.testing.assert_array_equal(flags, ambiguous)
    tables = tables.copy()
    tables[flags] = fallback
    np.testing.assert_array_equal(decoder.tables(tables), symbols)


# ---------------------------------------------------------------------------------------------- round trips
@pytest.fixture(scope="module")
def digits():
    from tfvq.data import embedded

    return np.asarray(embedded.digits("test")[:6])


@pytest.fixture(scope="module")
def hqa():
    return codec.load_model("hqa_digits")[0]


@pytest.fixture(scope="module")
def rrvq():
    return codec.load_model("rrvq_digits")[0]


@pytest.mark.parametrize("coder", ["auto", "static", "progressive"])
@pytest.mark.parametrize("layer", [1, 2, 4])
def test_hqa_files_decode_to_the_models_decode_of_its_codes(hqa, digits, coder, layer):
    data = codec.compress(digits, "hqa_digits", layer, coder=coder)
    header = codec.read_header(data)
    assert header.version == 4 and header.first_layer == layer and header.image_size is None
    want = hqa.decode(hqa.encode(digits, layer), layer, dtype="uint8").numpy()
    # the Keras model's images exactly (the TFLite decoders' are within a grey level: tests/codec/test_lite_model.py)
    np.testing.assert_array_equal(codec.decompress(data, backend="tensorflow"), want)
    if coder == "progressive":  # one file, every rate: stop after any layer
        assert header.layers == tuple(range(layer, 6))
        for j in header.layers:
            np.testing.assert_array_equal(codec.decompress(data, layer=j, backend="tensorflow"),
                                          hqa.decode(hqa.encode(digits, j), j, dtype="uint8").numpy())
    if coder == "static":
        assert header.coders == {layer: container.STATIC}


def test_auto_takes_the_coding_of_fewest_bits_for_each_layer(rrvq, digits):
    auto = codec.read_header(codec.compress(digits, "rrvq_digits", coder="auto"))
    codes = coding.encode_layers(rrvq, digits, set(range(1, 6)))
    prior = codec.load_prior("rrvq_digits", *codec.load_model("rrvq_digits"))
    for l in range(1, 6):
        bits = {}
        for coder in (container.UNIFORM, container.STATIC, container.MODEL):
            encoder = entropy.Encoder()
            assert coding.code_layer(encoder, rrvq, coder, codes, l, prior)
            bits[coder] = encoder.bits
        assert bits[auto.coders[l]] == min(bits.values())
    (h, w), k = rrvq.code_layout().grids[4], rrvq.code_layout().num_codes[4]
    assert bits[container.UNIFORM] == pytest.approx(len(digits) * h * w * np.log2(k))  # the top at the fixed rate


def test_rrvq_lossless_gives_the_exact_pixels_back(rrvq, digits):
    data = codec.compress(digits, "rrvq_digits", lossless=True)
    np.testing.assert_array_equal(codec.decompress(data), digits)
    with pytest.raises(CodecError, match="no pixel likelihood"):
        codec.compress(digits, "hqa_digits", lossless=True)
    with pytest.raises(CodecError, match="pass uint8"):
        codec.compress(digits / 255.0, "rrvq_digits", lossless=True)


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


_SCRIPT = """
import sys, numpy as np
from tfvq import codec
x = np.load(sys.argv[2] + "/x.npy")
for name, coder in (("rrvq_digits", "progressive"), ("hqa_digits", "progressive"), ("hqa_digits", "context")):
    path = f"{sys.argv[2]}/{name}_{coder}"
    if sys.argv[1] == "encode":
        data = codec.compress(x, name, coder=coder, lossless=name == "rrvq_digits", layer=1)
        open(path + ".tfvq", "wb").write(data)
    else:
        np.save(path + ".npy", codec.decompress(open(path + ".tfvq", "rb").read()))
"""


@pytest.mark.slow
def test_files_decode_with_other_kernels_onednn_on_then_off(tmp_path, digits, hqa):
    np.save(tmp_path / "x.npy", digits)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for step, onednn in (("encode", "1"), ("decode", "0")):
        subprocess.run([sys.executable, "-c", _SCRIPT, step, str(tmp_path)],
                       env={**env, "TF_ENABLE_ONEDNN_OPTS": onednn}, check=True)
    # Lossless RRVQ: every layer's codes (coded under the prior p(z_l | z_>l)) and the pixels passed their CRCs.
    np.testing.assert_array_equal(np.load(tmp_path / "rrvq_digits_progressive.npy"), digits)
    # HQA: layers 5..1, each coded under layer l+1's prediction (progressive) or under the context priors,
    # passed their CRCs (the decoder raises otherwise).
    for coder, kind in (("progressive", container.MODEL), ("context", container.CONTEXT)):
        header = codec.read_header((tmp_path / f"hqa_digits_{coder}.tfvq").read_bytes())
        assert header.layers == (1, 2, 3, 4, 5) and kind in header.coders.values()
        assert np.load(tmp_path / f"hqa_digits_{coder}.npy").shape == digits.shape


# ---------------------------------------------------------------------------------------------- the command
def test_info_prints_the_header_and_each_layers_coder(tmp_path, digits, capsys):
    path = tmp_path / "d.tfvq"
    data = codec.compress(digits[:1], "rrvq_digits", lossless=True)
    path.write_bytes(data)
    assert cli.main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    f = codec.read_header(data)
    assert "version 4, model rrvq_digits" in out and "1 image(s) of the model's own size" in out
    assert f"{len(data)} bytes in all: header {len(f.header)}, stream {len(f.stream)}, CRC 4" in out
    assert "lossless" in out
    for l in range(1, 6):
        assert f"  layer {l}: {container.CODER_TEXT[f.coders[l]]}" in out


def test_cli_compresses_a_directory_of_any_images_and_back(tmp_path, capsys):
    from PIL import Image

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (20, 30), dtype=np.uint8)).save(src / "a.png")
    Image.fromarray(rng.integers(0, 256, (33, 17, 3), dtype=np.uint8)).save(src / "sub" / "b.jpg")
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(src / "c.webp", lossless=True)
    Image.fromarray(rng.integers(0, 256, (9, 9), dtype=np.uint8)).save(src / "d.bmp")
    Image.fromarray(rng.integers(0, 256, (9, 9), dtype=np.uint8)).save(src / "e.gif")
    assert cli.main(["compress", str(src), "--model=hqa_digits", "--layer=2", "-o", str(tmp_path / "z")]) == 1
    assert "Pass --grayscale" in capsys.readouterr().err
    assert cli.main(["compress", str(src), "--model=rrvq_digits", "--grayscale", "--lossless",
                     "-o", str(tmp_path / "z")]) == 0
    assert sorted(p.name for p in (tmp_path / "z").rglob("*.tfvq")) == ["a.tfvq", "b.tfvq", "c.tfvq", "d.tfvq",
                                                                         "e.tfvq"]
    assert cli.main(["decompress", str(tmp_path / "z"), "-o", str(tmp_path / "png")]) == 0
    back = np.asarray(Image.open(tmp_path / "png" / "sub" / "b.png"))
    np.testing.assert_array_equal(back, np.asarray(Image.open(src / "sub" / "b.jpg").convert("L")))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "png" / "a.png")),
                                  np.asarray(Image.open(src / "a.png")))


def test_integer_logit_tables_follow_the_rounded_softmax_with_integers_only():
    rng = np.random.default_rng(4)
    unit = 12
    logits = rng.integers(-20 << unit, 3 << unit, size=(500, 24)).astype(np.int64)
    tables = entropy.integer_logit_tables(logits, unit)
    assert tables.dtype == np.int64 and (tables.sum(-1) == entropy.TOTAL).all() and (tables >= 1).all()
    # Independently: d rounded to 1/8 nat, exp, dropped below -14 nats, scaled to the free counts.
    step = 2.0 ** -entropy.INTEGER_STEP_BITS
    d = (logits - logits.max(-1, keepdims=True)) / 2.0 ** unit
    q = np.floor(d / step + 0.5)
    w = np.where(q >= -entropy.INTEGER_LEVELS, np.exp(q * step), 0.0)
    want = 1 + w / w.sum(-1, keepdims=True) * (entropy.TOTAL - 24)
    top = np.argmax(w, -1)
    mask = np.ones_like(want, bool)
    mask[np.arange(len(top)), top] = False  # the largest also takes what flooring left over
    assert np.abs(tables - want)[mask].max() < 1.0 + 1e-6
    # Adding a constant to every logit changes nothing; the grid's unit must be finer than the step.
    np.testing.assert_array_equal(entropy.integer_logit_tables(logits + 12345, unit), tables)
    with pytest.raises(ValueError, match="coarser"):
        entropy.integer_logit_tables(logits, entropy.INTEGER_STEP_BITS)
