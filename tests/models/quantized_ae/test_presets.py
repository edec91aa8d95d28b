"""The presets of today's quantizers (`tfvq.models.quantized_ae.presets`): the entries' codes and rates come from
their layouts, their recipe, and their bundled weights explain the test digits (residual VQ's files shrink with
depth)."""

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from tfvq import codec, data, zoo
from tfvq.models.hqa import VQVAERecipe
from tfvq.models.quantized_ae import FSQAutoencoder, LFQAutoencoder, VQAutoencoder

Q = 4  # rvq_digits' stages


def test_the_entries_codes_and_rates_come_from_the_layout(digits):
    x = digits[:2]
    fsq = zoo.build("fsq_digits")
    assert isinstance(fsq, FSQAutoencoder) and fsq.levels == (8, 5, 5, 5)
    layout = fsq.code_layout()
    assert (layout.grids, layout.num_codes, layout.default_layer, layout.cumulative) == (((16, 16),), (1000,), 1,
                                                                                        False)
    assert fsq.bits() == 16 * 16 * 10 == 2560
    codes = fsq.encode(x)
    assert codes.dtype == tf.int32 and codes.shape == (2, 16, 16)
    assert 0 <= int(tf.reduce_min(codes)) and int(tf.reduce_max(codes)) < 1000
    assert fsq.decode(codes).shape == x.shape

    for name, cls, num_codes in (("lfq_digits", LFQAutoencoder, 1024), ("vq_digits", VQAutoencoder, 1024)):
        model = zoo.build(name)
        assert type(model) is cls and model.code_layout().num_codes == (num_codes,)
        assert model.bits() == fsq.bits() == 2560  # FSQ's rate: 10 bits per position
        codes = model.encode(x)
        assert codes.dtype == tf.int32 and codes.shape == (2, 16, 16)
        assert 0 <= int(tf.reduce_min(codes)) and int(tf.reduce_max(codes)) < num_codes
    assert zoo.build("vq_digits").vq.rotation_trick

    rvq = zoo.build("rvq_digits")
    layout = rvq.code_layout()
    assert layout.cumulative and layout.default_layer == 1 and layout.grids == ((16, 16),) * Q
    assert layout.num_codes == (32,) * Q
    # Layer l carries stages 1..Q-l+1: the bits fall with l, 5 bits per position per stage.
    assert [rvq.bits(l) for l in range(1, Q + 1)] == [256 * 5 * (Q - l + 1) for l in range(1, Q + 1)]
    assert [rvq.bits(l) for l in range(1, Q + 1)] == [5120, 3840, 2560, 1280]
    assert rvq.bits(3) == fsq.bits()  # two stages of 32 codes: FSQ's rate
    assert zoo.info("rvq_digits")["stages_per_layer"] == {1: 4, 2: 3, 3: 2, 4: 1}
    every = rvq.encode(x, 1)
    assert len(every) == Q and all(c.dtype == tf.int32 and c.shape == (2, 16, 16) for c in every)
    stages = every[::-1]  # layer Q (stage 1) last
    for layer in range(2, Q + 1):
        codes = tf.nest.flatten(rvq.encode(x, layer))
        assert len(codes) == len(layout.layers_sent(layer)) == Q - layer + 1
        # a lower rate sends a prefix of the stages: the residual chain does not depend on the stages after it
        for got, want in zip(codes[::-1], stages):
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert not isinstance(rvq.encode(x, Q), list)  # one layer sent: one tensor

def test_every_entry_trains_under_the_cpu_recipe():
    recipe = VQVAERecipe(batch_size=64, steps=(3000,), learning_rate=2e-3)
    assert all(zoo.recipe(name) == recipe for name in ("fsq_digits", "lfq_digits", "rvq_digits", "vq_digits"))


def test_bundled_weights_explain_the_test_digits_and_rvq_files_shrink_with_depth():
    test = data.load_numpy("digits", "test", limit=64)
    blank = float(np.mean((test - test.mean()) ** 2))  # the mean-pixel predictor
    fsq = zoo.load("fsq_digits", weights="bundled")
    assert float(np.mean((fsq.reconstruct(test).numpy() - test) ** 2)) < 0.05 * blank
    rvq = zoo.load("rvq_digits", weights="bundled")
    mse = [float(np.mean((rvq.reconstruct(test, l).numpy() - test) ** 2)) for l in range(1, Q + 1)]
    assert mse[Q - 1] < 0.05 * blank and mse[0] <= mse[Q - 1]  # every depth decodes; the deepest is no worse
    pixels = np.round(test[:4] * 255).astype(np.uint8)
    sizes = [len(codec.compress(pixels, "rvq_digits", layer=l)) for l in range(1, Q + 1)]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == Q  # with their static priors
    for name in ("lfq_digits", "vq_digits"):
        model = zoo.load(name, weights="bundled")
        assert float(np.mean((model.reconstruct(test).numpy() - test) ** 2)) < 0.05 * blank, name
        blob = codec.compress(pixels, name)
        np.testing.assert_array_equal(codec.decompress(blob), model.reconstruct(pixels).numpy())


REAL_DIGIT_ROWS = {"fsq_mnist": "fsq_2048", "vq_mnist": "vq_rotation_2048", "simvq_mnist": "simvq_2048",
                   "rfsq_mnist": "rfsq_2048"}
"""The bundled real-digit entries and the rows of `python -m tfvq.experiments.quantizers --dataset=mnist10k` whose
seed-0 weights they ship."""
RECORD = pathlib.Path(__file__).resolve().parents[3] / "docs" / "quantizer_runs"


@pytest.mark.parametrize("name", sorted(REAL_DIGIT_ROWS))
def test_bundled_real_digit_weights_are_the_kept_runs_of_the_comparison(name):
    kept = json.loads((RECORD / REAL_DIGIT_ROWS[name] / "seed0.json").read_text())
    entry = zoo.get(name)
    assert {k: entry.config[k] for k in kept["config"]} == kept["config"] and entry.dataset == "mnist10k"
    model = zoo.load(name, weights="bundled")
    test = data.load_numpy("mnist10k", "test")
    recon = np.clip(np.concatenate([model.reconstruct(test[i:i + 500]).numpy() for i in range(0, len(test), 500)]),
                    0, 1)
    assert float(np.mean((recon - test) ** 2)) == pytest.approx(kept["mse"], rel=1e-4)
    pixels = np.round(test * 255).astype(np.uint8)
    stream = codec.read_header(codec.compress(pixels, name)).stream  # under the bundled static prior
    assert 8 * len(stream) / len(test) == pytest.approx(kept["coded_bits_per_image"])
