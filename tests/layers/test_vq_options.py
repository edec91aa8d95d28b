"""VectorQuantizer options: the rotation trick, the cosine distance and dead-code expiry."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers import FiniteScalarQuantizer, LookupFreeQuantizer, StochasticVectorQuantizer, VectorQuantizer
from tfvq.layers.precision import precision_scope

RNG = np.random.default_rng(3)


def built(layer, dim=None):
    layer.build((None, dim or layer.code_dim))
    return layer


def np_rotation(e, q):
    """Fifty et al. 2024, §4: the scale ||q||/||e|| and the explicit rotation R = I - 2 r r^T + 2 q^ e^T."""
    e_hat, q_hat = e / np.linalg.norm(e), q / np.linalg.norm(q)
    r = (e_hat + q_hat) / np.linalg.norm(e_hat + q_hat)
    rot = np.eye(len(e)) - 2 * np.outer(r, r) + 2 * np.outer(q_hat, e_hat)
    return np.linalg.norm(q) / np.linalg.norm(e), rot


def cosine(a, b):
    return a @ b / (np.linalg.norm(a) * np.linalg.norm(b))


# ------------------------------------------------------------- rotation trick
def test_rotation_trick_forward_value_is_the_usual_quantized_output():
    rot = built(VectorQuantizer(6, 3, rotation_trick=True, seed=1))
    plain = built(VectorQuantizer(6, 3, seed=1))
    plain.codebook.assign(rot.codebook)
    z = RNG.normal(size=(4, 5, 3)).astype(np.float32)
    a, b = rot(z, training=True), plain(z, training=True)
    np.testing.assert_array_equal(a["codes"].numpy(), b["codes"].numpy())
    np.testing.assert_allclose(a["quantized"].numpy(), b["quantized"].numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(a["quantized"].numpy(), rot.codebook.numpy()[a["codes"].numpy()])  # exactly q
    assert a["loss"].numpy() == b["loss"].numpy()


def test_rotation_trick_gradient_is_the_rotated_and_rescaled_gradient():
    vq = built(VectorQuantizer(6, 3, rotation_trick=True, seed=2))
    z0 = RNG.normal(size=(5, 3)).astype(np.float32)
    z = tf.Variable(z0)
    w = RNG.normal(size=(5, 3)).astype(np.float32)
    with tf.GradientTape() as tape:
        out = vq(z, training=True)
        y = tf.reduce_sum(out["quantized"] * w)
    grad = tape.gradient(y, z).numpy()
    q = vq.codebook.numpy()[out["codes"].numpy()]
    for n in range(5):
        scale, rot = np_rotation(z0[n].astype(np.float64), q[n].astype(np.float64))
        np.testing.assert_allclose(rot @ z0[n] / np.linalg.norm(z0[n]), q[n] / np.linalg.norm(q[n]), atol=1e-6)
        np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)  # R is a rotation
        np.testing.assert_allclose(grad[n], scale * rot.T @ w[n], rtol=1e-5, atol=1e-6)  # vector-Jacobian
        # The paper's property (App. A.6): the gradient keeps its angle to the vector it is at,
        # and is rescaled by ||q|| / ||e||; straight-through would copy w[n] unchanged.
        assert cosine(z0[n], grad[n]) == pytest.approx(cosine(q[n], w[n]), abs=1e-5)
        assert np.linalg.norm(grad[n]) == pytest.approx(scale * np.linalg.norm(w[n]), rel=1e-5)
        assert not np.allclose(grad[n], w[n], atol=1e-3)
    # Jacobian-vector product for one vector: (||q||/||e||) R v.
    v = RNG.normal(size=(5, 3)).astype(np.float32)
    with tf.autodiff.ForwardAccumulator(z, tf.constant(v)) as acc:
        quantized = vq(z, training=False)["quantized"]
    scale, rot = np_rotation(z0[0].astype(np.float64), q[0].astype(np.float64))
    np.testing.assert_allclose(acc.jvp(quantized).numpy()[0], scale * rot @ v[0], rtol=1e-5, atol=1e-6)


def test_rotation_trick_leaves_the_codebook_to_its_loss_and_handles_degenerate_vectors():
    rot = built(VectorQuantizer(1, 2, rotation_trick=True))
    plain = built(VectorQuantizer(1, 2))
    for layer in (rot, plain):
        layer.codebook.assign([[2.0, 0.0]])
    # Rows: zero input (straight-through fallback), input opposite to its code (r = 0), an ordinary one.
    z = tf.Variable(np.array([[0.0, 0.0], [-0.5, 0.0], [1.0, 1.0]], np.float32))
    w = np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 1.0]], np.float32)
    grads = {}
    for name, layer in (("rot", rot), ("plain", plain)):
        with tf.GradientTape(persistent=True) as tape:
            out = layer(z, training=True)
            y = tf.reduce_sum(out["quantized"] * w)
        grads[name] = [
            tape.gradient(y, z).numpy(),
            tape.gradient(y, layer.codebook),
            tape.gradient(out["loss"], layer.codebook),
        ]
        np.testing.assert_array_equal(out["quantized"].numpy(), [[2.0, 0.0]] * 3)
    gz = grads["rot"][0]
    assert np.isfinite(gz).all()
    np.testing.assert_allclose(gz[0], w[0])  # ||e|| = 0: straight through
    # e^ = -q^: R = I + 2 q^ e^T = diag(-1, 1) here, scale 2 / 0.5 = 4.
    np.testing.assert_allclose(gz[1], 4.0 * np.diag([-1.0, 1.0]).T @ w[1], rtol=1e-6)
    scale, r = np_rotation(np.array([1.0, 1.0]), np.array([2.0, 0.0]))
    np.testing.assert_allclose(gz[2], scale * r.T @ w[2], rtol=1e-5)
    assert grads["rot"][1] is None or not np.any(tf.convert_to_tensor(grads["rot"][1]).numpy())
    np.testing.assert_allclose(
        tf.convert_to_tensor(grads["rot"][2]).numpy(), tf.convert_to_tensor(grads["plain"][2]).numpy(), rtol=1e-6
    )


# ------------------------------------------------------------ cosine distance
def test_cosine_distance_picks_the_most_similar_code_and_returns_unit_vectors():
    vq = built(VectorQuantizer(6, 3, distance="cosine", commitment_cost=0.25, seed=3))
    z = (RNG.normal(size=(10, 3)) * RNG.uniform(0.1, 5.0, size=(10, 1))).astype(np.float32)
    e = vq.codebook.numpy().astype(np.float64)
    zn = z / np.linalg.norm(z, axis=-1, keepdims=True)
    en = e / np.linalg.norm(e, axis=-1, keepdims=True)
    cos = zn @ en.T
    out = vq(z, training=False)
    codes = cos.argmax(-1)
    np.testing.assert_array_equal(out["codes"].numpy(), codes)
    np.testing.assert_array_equal(vq(z * 7.0)["codes"].numpy(), codes)  # scale-free
    np.testing.assert_allclose(out["quantized"].numpy(), en[codes], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vq.lookup(out["codes"]).numpy(), en[codes], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["distances"].numpy(), 2 - 2 * cos, rtol=1e-5, atol=1e-5)
    assert out["loss"].numpy() == pytest.approx(1.25 * ((en[codes] - zn) ** 2).mean(), rel=1e-5)


def test_cosine_gradient_flows_through_the_input_normalisation():
    vq = built(VectorQuantizer(6, 3, distance="cosine", seed=4))
    z0 = RNG.normal(size=(4, 3)).astype(np.float32) * 2
    z = tf.Variable(z0)
    w = RNG.normal(size=(4, 3)).astype(np.float32)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(vq(z, training=True)["quantized"] * w)
    norm = np.linalg.norm(z0, axis=-1, keepdims=True)
    zn = z0 / norm
    # Straight through to z / ||z||, whose Jacobian is (I - z^ z^T) / ||z||.
    want = (w - zn * (zn * w).sum(-1, keepdims=True)) / norm
    np.testing.assert_allclose(tape.gradient(y, z).numpy(), want, rtol=1e-5, atol=1e-6)


def test_cosine_ema_codebook_averages_normalised_inputs():
    vq = built(VectorQuantizer(4, 2, distance="cosine", ema=True, decay=0.5, seed=5))
    z = (RNG.normal(size=(32, 2)) * 3).astype(np.float32)
    for _ in range(3):
        out = vq(z, training=True)
    np.testing.assert_allclose(np.linalg.norm(out["quantized"].numpy(), axis=-1), 1.0, rtol=1e-6)
    assert np.linalg.norm(vq.codebook.numpy(), axis=-1).max() <= 1.0 + 1e-6  # means of unit vectors


# ---------------------------------------------------------- dead-code expiry
def assert_rows_of(vectors, batch):
    for v in vectors:
        assert np.any(np.all(batch == v, axis=-1)), f"{v} is not a row of the batch"


def test_codes_used_less_than_the_threshold_take_distinct_random_batch_vectors_after_the_window():
    vq = built(VectorQuantizer(4, 2, expire_codes_below=1.0, reset_window=2, seed=0))
    start = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [50.0, 50.0]], np.float32)
    vq.codebook.assign(start)
    noise = lambda n: RNG.normal(size=(n, 2)) * 0.01  # noqa: E731
    first = np.concatenate([noise(6), [10.0, 0.0] + noise(4), [0.0, 10.0] + noise(1)]).astype(np.float32)
    second = np.concatenate([noise(6), [10.0, 0.0] + noise(4)]).astype(np.float32)
    vq(first, training=True)
    np.testing.assert_array_equal(vq.codebook.numpy(), start)
    np.testing.assert_allclose(vq.code_usage.numpy(), [6, 4, 1, 0])
    vq(second, training=True)
    moved = vq.codebook.numpy()
    # Code 2 (0.5 per batch) and code 3 (never) are below 1 per batch; codes 0 and 1 stay.
    np.testing.assert_array_equal(moved[:2], start[:2])
    assert_rows_of(moved[2:], second)
    assert not np.array_equal(moved[2], moved[3])
    assert vq.code_usage.numpy().sum() == 0 and int(vq.usage_batches.numpy()) == 0


def test_expiry_spares_codes_above_the_threshold_and_stops_when_disabled():
    start = np.array([[0.0, 0.0], [10.0, 0.0], [50.0, 50.0]], np.float32)
    z = np.concatenate([np.zeros((6, 2)), np.tile([[10.0, 0.0]], (2, 1))]).astype(np.float32)
    vq = built(VectorQuantizer(3, 2, expire_codes_below=2.0, reset_window=1, seed=1))
    vq.codebook.assign(start)
    vq(z, training=True)
    np.testing.assert_array_equal(vq.codebook.numpy()[:2], start[:2])  # 2 per batch is not below 2
    assert_rows_of(vq.codebook.numpy()[2:], z)
    vq = built(VectorQuantizer(3, 2, expire_codes_below=2.0, reset_window=1, seed=1))
    vq.codebook.assign(start)
    vq.reset_enabled.assign(False)
    vq(z, training=True)
    np.testing.assert_array_equal(vq.codebook.numpy(), start)
    vq(z, training=False)  # nor at inference
    np.testing.assert_array_equal(vq.codebook.numpy(), start)


def test_expiry_with_an_ema_codebook_keeps_the_replaced_code_at_its_new_vector():
    vq = built(VectorQuantizer(3, 2, ema=True, decay=0.9, expire_codes_below=1.0, reset_window=2, seed=2))
    vq.codebook.assign([[5.0, 5.0], [10.0, 0.0], [100.0, 100.0]])
    both = np.concatenate([[5.0, 5.0] + RNG.normal(size=(6, 2)) * 0.01, [10.0, 0.0] + RNG.normal(size=(4, 2)) * 0.01])
    vq(both.astype(np.float32), training=True)  # unused, code 2's EMA mean falls to the origin
    vq(both.astype(np.float32), training=True)  # end of the window: code 2 takes a batch row
    new = vq.codebook.numpy()[2].copy()
    assert_rows_of([new], both.astype(np.float32))
    vq(([5.0, 5.0] + RNG.normal(size=(8, 2)) * 0.01).astype(np.float32), training=True)  # code 2 unused
    # Its EMA sums were restarted at the new vector, so the update keeps it there (not back at the origin).
    np.testing.assert_allclose(vq.codebook.numpy()[2], new, rtol=1e-3)


def test_expiry_replaces_hqa_rule_in_a_stochastic_quantizer_too():
    svq = built(StochasticVectorQuantizer(3, 2, temperature=0.01, expire_codes_below=1.0, reset_window=1, seed=3))
    svq.codebook.assign([[0.0, 0.0], [10.0, 0.0], [50.0, 50.0]])
    z = np.concatenate([RNG.normal(size=(5, 2)) * 0.01, [10.0, 0.0] + RNG.normal(size=(5, 2)) * 0.01])
    svq(z.astype(np.float32), training=True)
    assert_rows_of(svq.codebook.numpy()[2:], z.astype(np.float32))  # a batch row, not the most used code + noise


def test_mirrored_expiry_moves_the_same_codes_to_the_same_global_batch_rows(mirrored_strategy):
    strategy = mirrored_strategy
    start = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [50.0, 50.0], [-50.0, 50.0]], np.float32)
    halves = [
        (RNG.normal(size=(8, 2)) * 0.01).astype(np.float32),
        ([10.0, 0.0] + RNG.normal(size=(8, 2)) * 0.01).astype(np.float32),
    ]
    with strategy.scope():
        vq = built(VectorQuantizer(5, 2, expire_codes_below=1.0, reset_window=1, seed=4), 2)
    vq.codebook.assign(start)
    values = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(halves[ctx.replica_id_in_sync_group])
    )
    tf.function(lambda x: strategy.run(lambda z: vq(z, training=True)["loss"], args=(x,)))(values)
    a, b = [np.asarray(v) for v in strategy.experimental_local_results(vq.codebook.value)]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[:2], start[:2])
    assert_rows_of(a[2:], np.concatenate(halves))
    assert len({tuple(row) for row in a[2:]}) == 3


# ------------------------------------------------------ arguments and saving
def test_bad_options_raise_errors_naming_what_was_expected():
    with pytest.raises(ValueError, match="distance must be one of"):
        VectorQuantizer(4, 2, distance="manhattan")
    with pytest.raises(ValueError, match="expire_codes_below"):
        VectorQuantizer(4, 2, expire_codes_below=-1.0)


def test_configs_without_the_new_options_still_load_with_the_old_behaviour():
    config = VectorQuantizer(8, 4).get_config()
    for key in ("distance", "rotation_trick", "expire_codes_below"):
        config.pop(key)
    vq = VectorQuantizer.from_config(config)
    assert vq.distance == "euclidean" and not vq.rotation_trick and vq.expire_codes_below is None
    assert not vq.resets_codes


def test_keras_file_round_trip_keeps_the_options_and_gives_identical_outputs(tmp_path):
    vq = VectorQuantizer(8, 4, distance="cosine", rotation_trick=True, expire_codes_below=0.5, reset_window=3, seed=5)
    assert VectorQuantizer.from_config(vq.get_config()).get_config() == vq.get_config()
    inputs = keras.Input((3, 4))
    out = vq(inputs, training=False)
    model = keras.Model(inputs, {"quantized": out["quantized"], "codes": out["codes"]})
    vq.codebook.assign(RNG.normal(size=(8, 4)))
    vq.code_usage.assign(RNG.uniform(size=8))
    path = tmp_path / "vq.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    z = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    a, b = model(z), loaded(z)
    np.testing.assert_array_equal(a["quantized"], b["quantized"])
    np.testing.assert_array_equal(a["codes"], b["codes"])
    loaded_layer = [layer for layer in loaded.layers if isinstance(layer, VectorQuantizer)][0]
    assert loaded_layer.get_config() == vq.get_config()
    for w, v in zip(vq.weights, loaded_layer.weights):
        np.testing.assert_array_equal(np.asarray(w), np.asarray(v))


@pytest.mark.parametrize("options", [dict(rotation_trick=True), dict(distance="cosine")], ids=["rotation", "cosine"])
def test_options_under_mixed_bfloat16_give_the_float32_codes(options):
    with precision_scope("mixed_bfloat16"):
        mixed = built(VectorQuantizer(8, 4, seed=6, **options))
    full = built(VectorQuantizer(8, 4, seed=6, **options))
    # Well separated: 8 corners of a cube of half-side 2, inputs 20% longer than their corner.
    codebook = np.array([[2.0 if (k >> j) & 1 else -2.0 for j in range(4)] for k in range(8)], np.float32)
    mixed.codebook.assign(codebook)
    full.codebook.assign(codebook)
    want = RNG.integers(0, 8, size=12)
    z = tf.Variable((codebook[want] * 1.2 + RNG.normal(size=(12, 4)) * 1e-2).astype(np.float32))
    grads = []
    for layer in (mixed, full):
        with tf.GradientTape() as tape:
            out = layer(z, training=True)
            y = tf.reduce_sum(tf.cast(out["quantized"], tf.float32) * tf.range(4, dtype=tf.float32))
        grads.append(tape.gradient(y, z).numpy())
        np.testing.assert_array_equal(out["codes"].numpy(), want)
        assert out["loss"].dtype == tf.float32
    assert out["quantized"].dtype == tf.float32 and mixed(z)["quantized"].dtype == tf.bfloat16
    np.testing.assert_allclose(grads[0], grads[1], rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("make,width", [
    (lambda: VectorQuantizer(16, 4), 4), (lambda: VectorQuantizer(16, 4, distance="cosine"), 4),
    (lambda: FiniteScalarQuantizer(levels=(8, 5, 3)), 3), (lambda: LookupFreeQuantizer(5), 5)])
def test_nearest_codes_are_the_forward_codes_without_touching_the_layers_state(make, width):
    layer = make()
    x = np.random.default_rng(4).normal(size=(3, 5, 7, width)).astype(np.float32)
    want = layer(x, training=False)["codes"].numpy()
    before = [w.numpy().copy() for w in layer.weights]
    got = layer.nearest_codes(x).numpy()
    assert got.dtype == np.int32 and got.shape == (3, 5, 7)
    np.testing.assert_array_equal(got, want)
    for a, w in zip(before, layer.weights):
        np.testing.assert_array_equal(a, w.numpy())
