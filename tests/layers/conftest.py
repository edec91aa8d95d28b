"""Helpers the layer tests share, as fixtures (the tests import no module of their own)."""

import keras
import numpy as np
import pytest
import tensorflow as tf


def _built(layer, dim=None):
    layer.build((None, dim or layer.code_dim))
    return layer


@pytest.fixture
def built():
    """`built(layer, dim=None)`: the layer, built for `[N, dim or code_dim]` inputs."""
    return _built


@pytest.fixture
def keras_round_trip(tmp_path):
    """`keras_round_trip(model, layer, inputs)`: saves `model` to a `.keras` file and loads it back.

    Checks that the loaded model's copy of `layer` (found by name) has the layer's class, config and
    weights, and that the two models give the same outputs on `inputs` (equal, or floats to `rtol`);
    returns `(outputs, loaded_outputs)` for further checks.
    """

    def round_trip(model, layer, inputs, rtol=0.0):
        path = tmp_path / f"{layer.name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        loaded_layer = loaded.get_layer(layer.name)
        assert type(loaded_layer) is type(layer)
        assert loaded_layer.get_config() == layer.get_config()
        assert len(loaded_layer.weights) == len(layer.weights)
        for w, v in zip(layer.weights, loaded_layer.weights):
            np.testing.assert_array_equal(np.asarray(w), np.asarray(v))
        a, b = model(inputs), loaded(inputs)
        for key in a:
            want, got = np.asarray(a[key]), np.asarray(b[key])
            if rtol and want.dtype.kind == "f":
                np.testing.assert_allclose(got, want, rtol=rtol, err_msg=key)
            else:
                np.testing.assert_array_equal(got, want, err_msg=key)
        return a, b

    return round_trip


@pytest.fixture
def nearest_codes_are_forward_codes():
    """`check(layer, width)`: `layer.nearest_codes` gives the forward pass's codes and leaves the state alone."""

    def check(layer, width):
        x = np.random.default_rng(4).normal(size=(3, 5, 7, width)).astype(np.float32)
        want = layer(x, training=False)["codes"].numpy()
        before = [w.numpy().copy() for w in layer.weights]
        got = layer.nearest_codes(x).numpy()
        assert got.dtype == np.int32 and got.shape == (3, 5, 7)
        np.testing.assert_array_equal(got, want)
        for a, w in zip(before, layer.weights):
            np.testing.assert_array_equal(a, w.numpy())

    return check


@pytest.fixture
def train_on_replicas(mirrored_strategy):
    """`train_on_replicas(layer, halves)`: one training call of `layer` under the session's
    `MirroredStrategy`, replica r on `halves[r]`, in a `tf.function`; returns the per-replica losses."""

    def run(layer, halves):
        values = mirrored_strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(halves[ctx.replica_id_in_sync_group])
        )

        @tf.function
        def step(x):
            return mirrored_strategy.run(lambda z: layer(z, training=True)["loss"], args=(x,))

        return step(values)

    return run


@pytest.fixture
def on_replicas(mirrored_strategy):
    """`on_replicas(fn, halves)`: `fn(batch)` on each replica of the session's `MirroredStrategy` in one
    `tf.function`, replica r on `halves[r]`; returns the replicas' results as NumPy (a list, one per replica)."""

    def run(fn, halves):
        values = mirrored_strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(halves[ctx.replica_id_in_sync_group])
        )
        result = tf.function(lambda x: mirrored_strategy.run(fn, args=(x,)))(values)
        return [tf.nest.map_structure(np.asarray, r) for r in mirrored_strategy.experimental_local_results(result)]

    return run


@pytest.fixture
def value_on_replicas(mirrored_strategy):
    """`value_on_replicas(variable)`: the variable's value, after checking that every replica holds the same."""

    def value(variable):
        first, *others = [np.asarray(v) for v in mirrored_strategy.experimental_local_results(variable.value)]
        for other in others:
            np.testing.assert_array_equal(other, first)
        return first

    return value


class ThroughQuantizer(keras.Model):
    """Dense encoder, a quantizer (its loss added to the model's), Dense decoder."""

    def __init__(self, quantizer, code_dim, width):
        super().__init__()
        self.encoder = keras.layers.Dense(code_dim)
        self.quantizer = quantizer
        self.decoder = keras.layers.Dense(width)

    def call(self, x, training=None):
        out = self.quantizer(self.encoder(x), training=training)
        self.add_loss(out["loss"])
        return self.decoder(out["quantized"])


@pytest.fixture
def fit_through():
    """`fit_through(quantizer, code_dim, x, epochs=3, learning_rate=0.01)`: fits a tiny autoencoder
    (Dense, `quantizer` with its loss, Dense) to reconstruct `x` by `model.fit`; returns the loss history."""

    def fit(quantizer, code_dim, x, epochs=3, learning_rate=0.01):
        keras.utils.set_random_seed(2)
        model = ThroughQuantizer(quantizer, code_dim, x.shape[-1])
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
        return model.fit(x, x, batch_size=32, epochs=epochs, verbose=0).history["loss"]

    return fit
