"""The fused Mish (`tfvq.layers.activations`) against a NumPy oracle, and how models get it."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers import activations
from tfvq.layers.precision import precision_scope

BF16_REL = 2.0**-8  # bfloat16 keeps 8 significant bits: rounding is within half of this, relative


def np_mish(x):
    """Mish and its derivative in float64 from the definition x tanh(softplus(x)) (Misra 2019)."""
    x = np.asarray(x, np.float64)
    softplus = np.logaddexp(0.0, x)
    t = np.tanh(softplus)
    sigmoid = 0.5 * (1.0 + np.tanh(0.5 * x))
    return x * t, t + x * (1.0 - t * t) * sigmoid


# Both signs, the region around the minimum (x = -1.19), the switch to the linear branch at 20, and the far
# tails, where exp(x) underflows (x < -103) or e^2 would overflow (x > 44).
X = np.concatenate([np.linspace(-8.0, 8.0, 161), [-200.0, -104.0, -60.0, -1.19, 0.0, 19.9, 20.0, 20.1, 45.0, 90.0,
                                                   1e4]])


def value_and_grad(x, upstream):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = activations.mish(x)
        loss = tf.reduce_sum(tf.cast(y, tf.float64) * upstream)
    return y, tape.gradient(loss, x)


@pytest.mark.parametrize("dtype,tol", [(tf.float64, 1e-12), (tf.float32, 3e-6)])
def test_mish_and_its_gradient_match_the_numpy_oracle(dtype, tol):
    upstream = np.random.default_rng(0).normal(size=X.shape)
    y, g = value_and_grad(tf.constant(X, dtype), upstream)
    want_y, want_slope = np_mish(tf.cast(tf.constant(X, dtype), tf.float64).numpy())
    assert y.dtype == g.dtype == dtype
    np.testing.assert_allclose(y.numpy(), want_y, rtol=tol, atol=tol)
    np.testing.assert_allclose(g.numpy(), upstream * want_slope, rtol=tol, atol=tol)


def test_mish_equals_keras_mish_to_float32_rounding():
    x = tf.constant(np.linspace(-30.0, 30.0, 1201), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours, theirs = activations.mish(x), keras.activations.mish(x)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(tape.gradient(ours, x).numpy(), tape.gradient(theirs, x).numpy(), rtol=2e-6, atol=4e-6)


def test_bfloat16_mish_is_computed_in_float32_and_rounded_once():
    """A bfloat16 input gives the oracle's value (and slope times the upstream) rounded to bfloat16."""
    x16 = tf.constant(X[np.abs(X) < 50], tf.bfloat16)
    x = tf.cast(x16, tf.float64).numpy()
    upstream = tf.constant(np.linspace(-1.0, 1.0, x.size), tf.bfloat16)
    with tf.GradientTape() as tape:
        tape.watch(x16)
        y = activations.mish(x16)
    g = tape.gradient(y, x16, output_gradients=upstream)
    assert y.dtype == g.dtype == tf.bfloat16
    want_y, want_slope = np_mish(x)
    want_g = tf.cast(upstream, tf.float64).numpy() * want_slope
    for got, want in ((y, want_y), (g, want_g)):
        np.testing.assert_array_less(np.abs(tf.cast(got, tf.float64).numpy() - want), BF16_REL * np.abs(want) + 1e-30)


def test_no_non_finite_values_in_the_tails():
    y, g = value_and_grad(tf.constant([-1e30, -1e4, 1e4, 1e30], tf.float32), np.ones(4))
    assert np.isfinite(y.numpy()).all() and np.isfinite(g.numpy()).all()
    np.testing.assert_array_equal(g.numpy()[2:], [1.0, 1.0])


def test_models_built_in_precision_scope_get_it_and_others_keep_keras_mish():
    with precision_scope("float32"):
        assert activations.mish_activation() is activations.mish
        inside = keras.layers.Conv2D(2, 3, activation=activations.mish_activation())
    outside = keras.layers.Conv2D(2, 3, activation=activations.mish_activation())
    assert inside.activation is activations.mish
    assert outside.activation is keras.activations.mish
    model = keras.Sequential([inside])  # symbolic build (Keras tensors) and a real call
    model.build((None, 6, 6, 1))
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 6, 6, 1)), tf.float32)
    outside.build((None, 6, 6, 1))
    outside.set_weights(inside.get_weights())
    np.testing.assert_allclose(model(x).numpy(), outside(x).numpy(), rtol=1e-5, atol=1e-6)
    restored = keras.layers.Conv2D.from_config(inside.get_config())
    assert restored.activation is activations.mish
    assert keras.layers.Conv2D.from_config(outside.get_config()).activation is keras.activations.mish


def test_keras_own_mish_identifier_is_never_swapped():
    """The fused Mish is passed as an object: the Keras identifier "mish" is Keras's Mish inside the scope too."""
    with precision_scope("mixed_bfloat16"):
        assert keras.activations.get("mish") is keras.activations.mish
        assert keras.layers.Conv2D(2, 3, activation="mish").activation is keras.activations.mish
    assert activations.mish_activation() is keras.activations.mish


def test_the_choice_is_restored_after_nested_scopes_and_does_not_leak_to_other_threads():
    import threading

    seen = []
    with precision_scope("float32"):
        with activations.fused_activations():
            pass
        assert activations.mish_activation() is activations.mish
        thread = threading.Thread(target=lambda: seen.append(activations.mish_activation()))
        thread.start()
        thread.join()
    assert seen == [keras.activations.mish]
    assert activations.mish_activation() is keras.activations.mish


def test_a_model_with_the_fused_mish_round_trips_through_a_keras_file(tmp_path):
    with precision_scope("float32"):
        conv = keras.layers.Conv2D(2, 3, activation=activations.mish_activation())
        model = keras.Sequential([keras.Input((6, 6, 1)), conv])
    path = str(tmp_path / "m.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert restored.layers[0].activation is activations.mish
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 6, 6, 1)), tf.float32)
    np.testing.assert_array_equal(restored(x).numpy(), model(x).numpy())


def test_hqa_layers_built_in_precision_scope_use_the_fused_mish():
    from tfvq.models.hqa import DilatedResidual, HQALayer

    def mishes(layer):
        convs = [l for l in layer.encoder.layers + layer.decoder.layers if isinstance(l, keras.layers.Conv2D)]
        convs += [l.conv for l in layer.decoder.layers if isinstance(l, DilatedResidual)]
        return [c.activation for c in convs if c.activation in (activations.mish, keras.activations.mish)]

    with precision_scope("float32"):
        inside = HQALayer(input_channels=1, code_dim=4, num_codes=8, decoder_layers=4, first=True)
    inside.build((None, 8, 8, 1))
    outside = HQALayer(input_channels=1, code_dim=4, num_codes=8, decoder_layers=4, first=True)
    outside.build((None, 8, 8, 1))
    assert len(mishes(inside)) == 5 and all(a is activations.mish for a in mishes(inside))
    assert len(mishes(outside)) == 5 and all(a is keras.activations.mish for a in mishes(outside))


def test_mish_is_traced_again_for_a_new_rank_not_for_every_shape():
    """Images of many sizes (a fully convolutional model at any size) do not trace Mish's function per size."""
    before = activations._mish_forward.experimental_get_tracing_count()
    for shape in [(2, 3, 5, 7), (1, 9, 4, 7), (3, 6, 6, 2), (1, 2, 2, 1)]:
        activations._mish_forward(tf.zeros(shape))
    assert activations._mish_forward.experimental_get_tracing_count() - before <= 2
