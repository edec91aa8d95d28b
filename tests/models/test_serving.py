"""What a model serves (`tfvq.models.serving`): the names of a discrete model's code signatures, and signatures that
compute what the model does, on uint8 pixels."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.models import HQA
from tfvq.models.serving import code_endpoints, served_images

METHODS = ("encode", "decode", "decode_seeded", "reconstruct")


@pytest.fixture(scope="module")
def model():
    """A two-layer HQA: layers each decode alone, the top (2) by default, stochastic decoding."""
    keras.utils.set_random_seed(0)
    cfg = dict(num_codes=8, code_dim=4, encoder_hidden=8, decoder_hidden=8)
    return HQA((8, 8, 1), [cfg, cfg])


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(0).integers(0, 256, size=(3, 8, 8, 1)).astype(np.uint8)


def names(endpoints):
    return {e.name: tuple(e.aliases) for e in endpoints}


def test_every_layer_is_suffixed_and_the_default_layer_also_takes_the_plain_names(model):
    got = names(code_endpoints(model))
    assert set(got) == {f"{m}_layer_{l}" for m in METHODS for l in (1, 2)}
    assert {n: a for n, a in got.items() if a} == {"encode_layer_2": ("encode",), "decode_layer_2": ("decode",),
                                                   "decode_seeded_layer_2": ("decode_seeded",),
                                                   "reconstruct_layer_2": ("reconstruct", "serving_default")}
    # serving_default may belong to another signature (RRVQ-VAE: bits_per_dim).
    assert "serving_default" not in str(names(code_endpoints(model, serving_default=False)))
    # The default layer alone: the plain names only.
    assert names(code_endpoints(model, layers=[2])) == {"encode": (), "decode": (), "decode_seeded": (),
                                                        "reconstruct": ("serving_default",)}
    # Another layer alone keeps its suffix and is the default of what is exported; a default layer not among
    # `layers` is added to them.
    assert names(code_endpoints(model, layers=[1])) == {
        "encode_layer_1": ("encode",), "decode_layer_1": ("decode",), "decode_seeded_layer_1": ("decode_seeded",),
        "reconstruct_layer_1": ("reconstruct", "serving_default")}
    assert names(code_endpoints(model, layers=[1], default_layer=2)) == got
    with pytest.raises(ValueError, match="at least one layer"):
        code_endpoints(model, layers=[])


def test_the_signatures_compute_the_models_encode_decode_and_reconstruct_on_pixels(model, pixels):
    endpoints = {e.name: e for e in code_endpoints(model)}
    x = pixels.astype(np.float32) / 255.0
    for layer in (1, 2):
        codes = endpoints[f"encode_layer_{layer}"](images=pixels)["codes"]
        np.testing.assert_array_equal(codes.numpy(), model.encode(x, layer).numpy())
        decoded = endpoints[f"decode_layer_{layer}"](codes=codes)["images"]
        assert decoded.dtype == tf.uint8
        np.testing.assert_array_equal(decoded.numpy(), model.decode(codes, layer, dtype="uint8").numpy())
        both = endpoints[f"reconstruct_layer_{layer}"](images=pixels)
        np.testing.assert_array_equal(both["images"].numpy(), decoded.numpy())
    # decode_seeded: row i is a stochastic decode of row i's codes under the seed (seed[i], 0).
    codes = model.encode(x, 2)
    seeded = endpoints["decode_seeded_layer_2"](codes=codes, seed=tf.constant([5, 6, 7]))["images"].numpy()
    for i, s in enumerate((5, 6, 7)):
        np.testing.assert_array_equal(
            seeded[i], model.decode(codes[i:i + 1], 2, stochastic=True, seed=(s, 0), dtype="uint8").numpy()[0])


def test_the_signatures_check_their_inputs(model, pixels):
    endpoints = {n: e for e in code_endpoints(model) for n in (e.name, *e.aliases)}
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"layer 2 codes must be in \[0, 7\]"):
        endpoints["decode"](codes=tf.fill([1, 2, 2], 8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="one seed per row"):
        endpoints["decode_seeded"](codes=tf.zeros([2, 2, 2], tf.int32), seed=tf.constant([1]))
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="8, 8, 1|shape"):
        served_images(tf.zeros([1, 4, 4, 1], tf.uint8), (8, 8, 1))
    np.testing.assert_allclose(served_images(tf.constant(pixels), (8, 8, 1)).numpy(), pixels / 255.0, rtol=1e-6)


def test_warmup_requests_are_batches_of_one_that_the_signatures_take(model, pixels):
    for endpoint in code_endpoints(model):
        inputs = endpoint.warmup(pixels[:1])
        assert set(inputs) == {s.name for s in endpoint.input_signature}
        assert all(v.shape[0] == 1 for v in inputs.values())
        endpoint(**{k: tf.constant(v) for k, v in inputs.items()})
