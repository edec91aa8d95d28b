"""Tests of tfvq.models.quantized_ae.composed_ae (any quantizer, residual and grouped, in HQA layer 1's network)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers.bsq import BinarySphericalQuantizer
from tfvq.layers.fsq import FiniteScalarQuantizer
from tfvq.models.quantized_ae import ComposedAutoencoder, quantized_autoencoder

SHAPE = (8, 8, 1)
VQ = {"name": "vq", "num_codes": 4, "code_dim": 3}


def _model(**kwargs):
    keras.utils.set_random_seed(0)
    return ComposedAutoencoder(SHAPE, encoder_hidden=4, decoder_hidden=4, seed=1, **kwargs)


def test_the_layout_has_one_cumulative_layer_per_slot_and_every_layer_is_a_rate():
    model = _model(quantizer=VQ, num_quantizers=2, groups=2)
    layout = model.code_layout()
    assert layout.num_layers == 4 and layout.cumulative and layout.num_codes == (4,) * 4
    assert [model.bits(l) for l in (1, 2, 3, 4)] == [128, 96, 64, 32]  # a 4x4 grid, 2 bits per slot
    assert [model.slots_sent(l) for l in (1, 2, 3, 4)] == [4, 3, 2, 1]
    assert model.code_dim == 6
    default = quantized_autoencoder(SHAPE, "composed")  # FSQ (8, 5, 5, 5): 1000 codes, 10 bits per position
    assert default.get_config()["quantizer"] == {"name": "fsq", "levels": [8, 5, 5, 5]} and default.bits() == 160


def test_one_stage_of_one_group_is_the_inner_quantizer_itself():
    model = _model(quantizer={"name": "fsq", "levels": [5, 3]})
    x = np.random.default_rng(0).random((3,) + SHAPE).astype(np.float32)
    fsq = FiniteScalarQuantizer(levels=(5, 3))
    np.testing.assert_array_equal(model.encode(x).numpy(), fsq.nearest_codes(model.encoder(x)).numpy())
    np.testing.assert_allclose(model.decode(model.encode(x)).numpy(),
                               model.decoder(fsq.lookup(fsq.nearest_codes(model.encoder(x)))).numpy(), atol=1e-6)


def _group_vectors(model, slot_codes):
    """NumPy oracle: each group's sum of its sent stages' code vectors (VQ stages, gain 1), side by side."""
    out = []
    for g, group in enumerate(model.stack.groups_):
        total = np.zeros(slot_codes.shape[:-1] + (model.code_dim // model.groups,), np.float32)
        for s, stage in enumerate(group.stages):
            slot = s * model.groups + g
            if slot < slot_codes.shape[-1]:
                total = total + stage.codebook.numpy()[slot_codes[..., slot]]
        out.append(total)
    return np.concatenate(out, axis=-1)


def test_a_file_with_part_of_a_stage_decodes_the_missing_groups_as_nothing():
    model = _model(quantizer=VQ, num_quantizers=2, groups=2)
    x = np.random.default_rng(1).random((2,) + SHAPE).astype(np.float32)
    full = model.stack.nearest_codes(model.encoder(x)).numpy()  # [2, 4, 4, 4], slot order
    for layer in (1, 2, 3, 4):
        codes = model.encode(x, layer)
        codes = codes if isinstance(codes, list) else [codes]
        n = model.slots_sent(layer)
        assert len(codes) == n
        for i, c in enumerate(codes):  # layer `layer` (slot n - 1) first, slot 0 last
            np.testing.assert_array_equal(c.numpy(), full[..., n - 1 - i])
        expected = model.decoder(_group_vectors(model, full[..., :n]).astype(np.float32)).numpy()
        np.testing.assert_allclose(model.decode(codes, layer).numpy(), expected, atol=1e-5)
        np.testing.assert_allclose(model.reconstruct(x, layer).numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("spec, stages, groups", [
    ({"name": "simvq", "num_codes": 8, "code_dim": 2}, 2, 2),
    ({"name": "bsq", "code_dim": 3, "entropy_weight": 1e-3}, 2, 1),
    ({"name": "lfq", "code_dim": 3, "codebook_entropy": "exact"}, 1, 2),
    ({"name": "fsq", "levels": [4]}, 2, 1),
    (dict(VQ, rotation_trick=True, codebook_init="kmeans"), 2, 2),
])
def test_every_inner_quantizer_trains_saves_and_encodes_for_tflite_alike(spec, stages, groups, tmp_path):
    model = _model(quantizer=spec, num_quantizers=stages, groups=groups)
    x = tf.constant(np.random.default_rng(2).random((4,) + SHAPE).astype(np.float32))
    with tf.GradientTape() as tape:
        terms = model.training_loss(x)
    grads = tape.gradient(terms["loss"], model.trainable_variables)
    assert np.isfinite(float(terms["loss"])) and all(g is not None for g in grads[:2])  # the encoder learns
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config() == model.get_config() and loaded.get_config()["quantizer"] == dict(spec)
    for layer in range(1, model.code_layout().num_layers + 1):
        codes = tf.nest.flatten(model.encode(x, layer))
        for a, b in zip(codes, tf.nest.flatten(loaded.encode(x, layer))):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        served = tf.function(model.tflite_encoder(layer))(x)
        for a, b in zip(codes, [served[k] for k in sorted(served, key=lambda k: (len(k), k))]):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_bsq_codes_are_the_signs_of_the_unit_vector():
    model = _model(quantizer={"name": "bsq", "code_dim": 3})
    x = np.random.default_rng(3).random((2,) + SHAPE).astype(np.float32)
    z = model.encoder(x).numpy()
    bits = (z / np.linalg.norm(z, axis=-1, keepdims=True) > 0).astype(np.int64)
    np.testing.assert_array_equal(model.encode(x).numpy(), (bits * [1, 2, 4]).sum(-1))
    assert isinstance(model.stack.groups_[0].stages[0], BinarySphericalQuantizer)


@pytest.mark.parametrize("kwargs, message", [
    (dict(quantizer={"name": "pq"}), "'name' is one of vq, simvq, fsq, lfq, bsq"),
    (dict(quantizer="fsq"), "must be a dict"),
    (dict(quantizer=dict(VQ, seed=3)), "takes no 'seed'"),
    (dict(quantizer=dict(VQ, colour=1)), "colour"),
    (dict(quantizer=VQ, quantizer_dropout=True), "needs num_quantizers > 1"),
    (dict(quantizer=VQ, groups=0), "groups"),
    (dict(quantizer={"name": "vq", "num_codes": 1, "code_dim": 2}), "one code carries nothing"),
])
def test_bad_configurations_are_refused_in_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        _model(**kwargs)
    assert "\n" not in str(info.value)
