"""Tests of tfvq.codec.context_net: the Keras network of a context prior (`ContextNet`)."""

import keras
import numpy as np

from tfvq.codec.context_net import ContextNet

SIZES = dict(width=4, depth=2, embed=3, mix=5)


def _built(**kwargs):
    net = ContextNet(**kwargs)
    h = 2 * net.factor
    net((np.full((1, h, h), net.num_codes, np.int32), np.zeros((1, 2, 2), np.int32)))
    return net


def test_the_logits_are_of_every_code_at_every_position():
    top = _built(num_codes=7, **SIZES)  # the top layer: its own known codes only
    known = np.random.default_rng(0).integers(0, 8, (2, 3, 5)).astype(np.int32)  # 7 = unknown
    assert np.asarray(top((known, np.zeros((2, 1, 1), np.int32)))).shape == (2, 3, 5, 7)
    assert top.above_embedding is None and len(top.convs) == 2
    below = _built(num_codes=7, above_codes=4, factor=2, **SIZES)
    out = np.asarray(below((np.full((2, 6, 4), 7, np.int32), np.zeros((2, 3, 2), np.int32))))
    assert out.shape == (2, 6, 4, 7) and np.isfinite(out).all()


def test_the_layer_above_is_repeated_factor_times_in_each_axis():
    net = _built(num_codes=5, above_codes=3, factor=2, **SIZES)
    known = np.full((1, 8, 8), 5, np.int32)
    above = np.zeros((1, 4, 4), np.int32)
    base = np.asarray(net((known, above)))
    changed = above.copy()
    changed[0, 0, 0] = 2  # one code above: its 2x2 block of positions below, and what the 3x3 convolutions reach
    diff = np.abs(np.asarray(net((known, changed))) - base).max(-1)[0]
    assert diff[:2, :2].max() > 0
    assert diff[4:].max() == 0 and diff[:, 4:].max() == 0  # beyond two 3x3 convolutions of rows and columns 0..1


def test_the_configuration_rebuilds_the_same_network():
    net = _built(num_codes=6, above_codes=4, factor=2, **SIZES)
    config = net.get_config()
    assert {k: config[k] for k in ("num_codes", "above_codes", "factor", "width", "depth", "embed", "mix")} == dict(
        num_codes=6, above_codes=4, factor=2, **SIZES)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(net))
    assert isinstance(again, ContextNet) and again.get_config() == config
    inputs = (np.random.default_rng(1).integers(0, 7, (2, 4, 4)).astype(np.int32), np.ones((2, 2, 2), np.int32))
    again(inputs)
    again.set_weights(net.get_weights())
    np.testing.assert_allclose(np.asarray(again(inputs)), np.asarray(net(inputs)), rtol=1e-6, atol=1e-6)
