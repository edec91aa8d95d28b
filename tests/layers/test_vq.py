"""`VectorQuantizer` (`tfvq.layers.vq`): HQA eq. 1-2 against NumPy, the EMA codebook, and the options of
later work: the rotation trick, the cosine distance and the EMA restart of an expired code."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers import ResidualQuantizer, VectorQuantizer
from tfvq.layers.precision import precision_scope

RNG = np.random.default_rng(3)


# ------------------------------------------------------------ HQA eq. 1-2
def test_vq_picks_the_nearest_code_and_reports_vqvae_loss(built):
    vq = built(VectorQuantizer(6, 3, commitment_cost=0.25))
    z = RNG.normal(size=(20, 3)).astype(np.float32)
    e = vq.codebook.numpy()
    d = ((z[:, None] - e[None]) ** 2).sum(-1)
    out = vq(z, training=False)
    np.testing.assert_array_equal(out["codes"].numpy(), d.argmin(-1))
    np.testing.assert_allclose(out["quantized"].numpy(), e[d.argmin(-1)], rtol=1e-6, atol=1e-6)
    mse = ((e[d.argmin(-1)] - z) ** 2).mean()
    assert out["loss"].numpy() == pytest.approx(1.25 * mse, rel=1e-5)  # HQA eq. 2


def test_vq_gradient_is_straight_through_and_codebook_gets_codebook_loss_gradient(built):
    vq = built(VectorQuantizer(6, 3, commitment_cost=0.25))
    z = tf.Variable(RNG.normal(size=(20, 3)).astype(np.float32))
    w = tf.constant(RNG.normal(size=(20, 3)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        out = vq(z, training=True)
        y = tf.reduce_sum(out["quantized"] * w)
        loss = out["loss"]
    np.testing.assert_allclose(tape.gradient(y, z).numpy(), w.numpy())
    assert tape.gradient(y, vq.codebook) is None or np.all(tape.gradient(y, vq.codebook).numpy() == 0)
    # d/dE mean((e_c - sg z)^2) = 2/(N D) sum over assigned (e_k - z_n): the codebook loss of eq. 2.
    e, zn, c = vq.codebook.numpy(), z.numpy(), out["codes"].numpy()
    want = np.zeros_like(e)
    for n, k in enumerate(c):
        want[k] += 2.0 / zn.size * (e[k] - zn[n])
    np.testing.assert_allclose(tf.convert_to_tensor(tape.gradient(loss, vq.codebook)).numpy(), want, rtol=1e-5, atol=1e-7)
    # ... and the encoder gets beta times the commitment gradient.
    np.testing.assert_allclose(
        tape.gradient(loss, z).numpy(), 0.25 * 2.0 / zn.size * (zn - e[c]), rtol=1e-5, atol=1e-7
    )


def test_quantize_with_rows_gives_the_call_and_the_chosen_code_vectors(built):
    vq = built(VectorQuantizer(6, 3, seed=1))
    z = RNG.normal(size=(2, 5, 3)).astype(np.float32)
    out, rows = vq.quantize_with_rows(z, training=False)
    want = vq(z, training=False)
    for key in want:
        np.testing.assert_array_equal(out[key].numpy(), want[key].numpy())
    assert rows.shape == (10, 3) and rows.dtype == tf.float32
    np.testing.assert_array_equal(rows.numpy(), vq.codebook.numpy()[want["codes"].numpy().reshape(-1)])


# ---------------------------------------------------------- EMA codebook
def np_ema_oracle(codebook, batches, decay, eps):
    k = codebook.shape[0]
    cs_h, dw_h = np.zeros(k), np.zeros_like(codebook)
    for t, x in enumerate(batches, start=1):
        c = ((x[:, None] - codebook[None]) ** 2).sum(-1).argmin(-1)
        one_hot = np.eye(k)[c]
        cs_h = cs_h * decay + one_hot.sum(0) * (1 - decay)
        dw_h = dw_h * decay + one_hot.T @ x * (1 - decay)
        cs, dw = cs_h / (1 - decay**t), dw_h / (1 - decay**t)
        n = cs.sum()
        cs = (cs + eps) / (n + k * eps) * n
        codebook = dw / cs[:, None]
    return codebook


def test_vq_ema_codebook_follows_debiased_moving_averages_only_in_training(built):
    vq = built(VectorQuantizer(5, 3, ema=True, decay=0.9, epsilon=1e-5, seed=0))
    assert all(w is not vq.codebook for w in vq.trainable_weights)
    start = vq.codebook.numpy().copy()
    vq(RNG.normal(size=(8, 3)).astype(np.float32), training=False)
    np.testing.assert_array_equal(vq.codebook.numpy(), start)
    batches = [RNG.normal(size=(16, 3)) for _ in range(3)]
    for x in batches:
        vq(x.astype(np.float32), training=True)
    want = np_ema_oracle(start.astype(np.float64), batches, 0.9, 1e-5)
    np.testing.assert_allclose(vq.codebook.numpy(), want, rtol=1e-4, atol=1e-5)


def test_mirrored_ema_statistics_are_all_reduced_and_identical_on_both_replicas(
    mirrored_strategy, built, train_on_replicas, value_on_replicas
):
    start = RNG.normal(size=(5, 3)).astype(np.float32)
    halves = [RNG.normal(size=(12, 3)).astype(np.float32), RNG.normal(size=(12, 3)).astype(np.float32) + 1.0]
    with mirrored_strategy.scope():
        vq = built(VectorQuantizer(5, 3, ema=True, decay=0.9), 3)
    vq.codebook.assign(start)
    train_on_replicas(vq, halves)
    train_on_replicas(vq, halves)
    want = np_ema_oracle(start.astype(np.float64), [np.concatenate(halves)] * 2, 0.9, 1e-5)
    for var in (vq.ema_cluster_size_hidden, vq.ema_dw_hidden):
        value_on_replicas(var)
    np.testing.assert_allclose(value_on_replicas(vq.codebook), want, rtol=1e-4, atol=1e-5)


def test_expiry_with_an_ema_codebook_keeps_the_replaced_code_at_its_new_vector(built):
    vq = built(VectorQuantizer(3, 2, ema=True, decay=0.9, expire_codes_below=1.0, reset_window=2, seed=2))
    vq.codebook.assign([[5.0, 5.0], [10.0, 0.0], [100.0, 100.0]])
    both = np.concatenate([[5.0, 5.0] + RNG.normal(size=(6, 2)) * 0.01, [10.0, 0.0] + RNG.normal(size=(4, 2)) * 0.01])
    both = both.astype(np.float32)
    vq(both, training=True)  # unused, code 2's EMA mean falls to the origin
    vq(both, training=True)  # end of the window: code 2 takes a batch row
    new = vq.codebook.numpy()[2].copy()
    assert np.any(np.all(both == new, axis=-1)), f"{new} is not a row of the batch"
    vq(([5.0, 5.0] + RNG.normal(size=(8, 2)) * 0.01).astype(np.float32), training=True)  # code 2 unused
    # Its EMA sums were restarted at the new vector, so the update keeps it there (not back at the origin).
    np.testing.assert_allclose(vq.codebook.numpy()[2], new, rtol=1e-3)


# ------------------------------------------------------------- rotation trick
def np_rotation(e, q):
    """Fifty et al. 2024, §4: the scale ||q||/||e|| and the explicit rotation R = I - 2 r r^T + 2 q^ e^T."""
    e_hat, q_hat = e / np.linalg.norm(e), q / np.linalg.norm(q)
    r = (e_hat + q_hat) / np.linalg.norm(e_hat + q_hat)
    rot = np.eye(len(e)) - 2 * np.outer(r, r) + 2 * np.outer(q_hat, e_hat)
    return np.linalg.norm(q) / np.linalg.norm(e), rot


def cosine(a, b):
    return a @ b / (np.linalg.norm(a) * np.linalg.norm(b))


def test_rotation_trick_forward_value_is_the_usual_quantized_output(built):
    rot = built(VectorQuantizer(6, 3, rotation_trick=True, seed=1))
    plain = built(VectorQuantizer(6, 3, seed=1))
    plain.codebook.assign(rot.codebook)
    z = RNG.normal(size=(4, 5, 3)).astype(np.float32)
    a, b = rot(z, training=True), plain(z, training=True)
    np.testing.assert_array_equal(a["codes"].numpy(), b["codes"].numpy())
    np.testing.assert_allclose(a["quantized"].numpy(), b["quantized"].numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(a["quantized"].numpy(), rot.codebook.numpy()[a["codes"].numpy()])  # exactly q
    assert a["loss"].numpy() == b["loss"].numpy()


def test_rotation_trick_gradient_is_the_rotated_and_rescaled_gradient(built):
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


def test_rotation_trick_leaves_the_codebook_to_its_loss_and_handles_degenerate_vectors(built):
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
def test_cosine_distance_picks_the_most_similar_code_and_returns_unit_vectors(built):
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


def test_cosine_gradient_flows_through_the_input_normalisation(built):
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


def test_cosine_ema_codebook_averages_normalised_inputs(built):
    vq = built(VectorQuantizer(4, 2, distance="cosine", ema=True, decay=0.5, seed=5))
    z = (RNG.normal(size=(32, 2)) * 3).astype(np.float32)
    for _ in range(3):
        out = vq(z, training=True)
    np.testing.assert_allclose(np.linalg.norm(out["quantized"].numpy(), axis=-1), 1.0, rtol=1e-6)
    assert np.linalg.norm(vq.codebook.numpy(), axis=-1).max() <= 1.0 + 1e-6  # means of unit vectors


# ------------------------------------------------------ arguments and saving
def test_an_unknown_distance_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="distance must be one of"):
        VectorQuantizer(4, 2, distance="manhattan")


def test_configs_without_the_new_options_still_load_with_the_old_behaviour():
    config = VectorQuantizer(8, 4).get_config()
    for key in ("distance", "rotation_trick", "expire_codes_below"):
        config.pop(key)
    vq = VectorQuantizer.from_config(config)
    assert vq.distance == "euclidean" and not vq.rotation_trick and vq.expire_codes_below is None
    assert not vq.resets_codes


def test_keras_file_round_trip_keeps_the_options_and_gives_identical_outputs(keras_round_trip):
    vq = VectorQuantizer(8, 4, distance="cosine", rotation_trick=True, expire_codes_below=0.5, reset_window=3, seed=5)
    assert VectorQuantizer.from_config(vq.get_config()).get_config() == vq.get_config()
    inputs = keras.Input((3, 4))
    out = vq(inputs, training=False)
    model = keras.Model(inputs, {"quantized": out["quantized"], "codes": out["codes"]})
    vq.codebook.assign(RNG.normal(size=(8, 4)))
    vq.code_usage.assign(RNG.uniform(size=8))
    keras_round_trip(model, vq, RNG.normal(size=(2, 3, 4)).astype(np.float32))


@pytest.mark.parametrize("options", [dict(rotation_trick=True), dict(distance="cosine")], ids=["rotation", "cosine"])
def test_options_under_mixed_bfloat16_give_the_float32_codes(options, built):
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


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_nearest_codes_are_the_forward_codes_without_touching_the_layers_state(
    distance, nearest_codes_are_forward_codes
):
    nearest_codes_are_forward_codes(VectorQuantizer(16, 4, distance=distance), 4)


# ------------------------------------------- low-dimensional lookup (ViT-VQGAN)
def test_low_dimensional_lookup_projects_normalises_searches_and_projects_back(built, nearest_codes_are_forward_codes):
    vq = built(VectorQuantizer(8, 6, lookup_dim=2, seed=1))
    assert vq.distance == "cosine" and vq.codebook.shape == (8, 2) and vq.codebook_dim == 2
    w_in, w_out = vq.project_in.numpy().astype(np.float64), vq.project_out.numpy().astype(np.float64)
    e = vq.codebook.numpy().astype(np.float64)
    e /= np.linalg.norm(e, axis=-1, keepdims=True)
    z = tf.Variable(RNG.normal(size=(10, 6)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        out = vq(z, training=True)
        y = tf.reduce_sum(out["quantized"] * tf.range(6, dtype=tf.float32))
        soft = tf.math.l2_normalize(tf.matmul(z, vq.project_in), -1) @ vq.project_out  # the path without rounding
        y_soft = tf.reduce_sum(soft * tf.range(6, dtype=tf.float32))
    low = z.numpy() @ w_in
    low /= np.linalg.norm(low, axis=-1, keepdims=True)
    codes = ((low[:, None] - e[None]) ** 2).sum(-1).argmin(-1)
    np.testing.assert_array_equal(out["codes"].numpy(), codes)
    np.testing.assert_allclose(out["quantized"].numpy(), e[codes] @ w_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(vq.lookup(out["codes"]).numpy(), out["quantized"].numpy())
    assert out["loss"].numpy() == pytest.approx(1.25 * ((low - e[codes]) ** 2).mean(), rel=1e-4)  # in the lookup space
    # Straight through in the lookup space: the input's gradient is that of the path without rounding.
    np.testing.assert_allclose(tape.gradient(y, z).numpy(), tape.gradient(y_soft, z).numpy(), rtol=1e-4, atol=1e-6)
    assert tape.gradient(y, vq.project_out) is not None
    nearest_codes_are_forward_codes(VectorQuantizer(16, 6, lookup_dim=3), 6)


def test_low_dimensional_lookup_saves_stacks_and_runs_in_bfloat16(keras_round_trip, built):
    with pytest.raises(ValueError, match="lookup_dim must be None or an integer >= 1"):
        VectorQuantizer(8, 4, lookup_dim=0)
    vq = VectorQuantizer(8, 4, lookup_dim=2, distance="euclidean", ema=True, seed=2, name="vq_low")
    assert VectorQuantizer.from_config(vq.get_config()).get_config() == vq.get_config()
    inputs = keras.Input((3, 4))
    model = keras.Model(inputs, vq(inputs))
    vq.project_in.assign(RNG.normal(size=(4, 2)))
    keras_round_trip(model, vq, RNG.normal(size=(2, 3, 4)).astype(np.float32))
    vq(RNG.normal(size=(16, 4)).astype(np.float32), training=True)  # EMA over the projected inputs
    assert vq.ema_dw_hidden.shape == (8, 2)

    stack = built(ResidualQuantizer(VectorQuantizer(8, 4, lookup_dim=2, seed=3), 2))
    out = stack(RNG.normal(size=(5, 4)).astype(np.float32))
    np.testing.assert_array_equal(stack.lookup(out["codes"]).numpy(), out["quantized"].numpy())

    with precision_scope("mixed_bfloat16"):
        mixed = built(VectorQuantizer(4, 4, lookup_dim=2, seed=4))
    full = built(VectorQuantizer(4, 4, lookup_dim=2, seed=4))
    directions = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], np.float32)
    for layer in (mixed, full):
        layer.codebook.assign(directions)
        layer.project_in.assign(np.eye(4, 2))
    want = RNG.integers(0, 4, size=12)
    z = np.concatenate([directions[want] * 2, RNG.normal(size=(12, 2))], -1).astype(np.float32)
    np.testing.assert_array_equal(mixed(z)["codes"].numpy(), want)
    np.testing.assert_array_equal(full(z)["codes"].numpy(), want)
