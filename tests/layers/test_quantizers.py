"""Behaviour of the three quantizer layers, checked against NumPy and the papers."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers import RelaxedResponsibilityQuantizer, StochasticVectorQuantizer, VectorQuantizer

RNG = np.random.default_rng(1)
ALL_LAYERS = [
    lambda **kw: VectorQuantizer(8, 4, **kw),
    lambda **kw: VectorQuantizer(8, 4, ema=True, **kw),
    lambda **kw: StochasticVectorQuantizer(8, 4, **kw),
    lambda **kw: RelaxedResponsibilityQuantizer(8, 4, **kw),
]
LAYER_IDS = ["vq", "vq_ema", "stochastic", "rrvq"]


def built(layer, dim=None):
    layer.build((None, dim or layer.code_dim))
    return layer


def deterministic_call(layer, z):
    if isinstance(layer, VectorQuantizer):
        return layer(z, training=False)
    return layer(z, training=False, stochastic=False)


# ---------------------------------------------------------------- all layers
@pytest.mark.parametrize("make", ALL_LAYERS, ids=LAYER_IDS)
def test_outputs_have_documented_keys_shapes_and_dtypes(make):
    layer = make()
    z = tf.random.normal([2, 3, 5, 4])
    for training in (True, False):
        out = layer(z, training=training)
        assert out["quantized"].shape == (2, 3, 5, 4)
        assert out["codes"].shape == (2, 3, 5) and out["codes"].dtype == tf.int32
        assert out["loss"].shape == ()
        if not isinstance(layer, VectorQuantizer):
            assert out["log_probs"].shape == (2, 3, 5, 8)
            np.testing.assert_allclose(tf.reduce_logsumexp(out["log_probs"], -1).numpy(), 0.0, atol=1e-5)
    assert layer.codebook.shape == (8, 4)


@pytest.mark.parametrize("make", ALL_LAYERS, ids=LAYER_IDS)
def test_wrong_last_dimension_raises_value_error_naming_expected_size(make):
    layer = make()
    with pytest.raises(ValueError, match="code_dim=4"):
        layer(tf.zeros([2, 5]))


@pytest.mark.parametrize("make", ALL_LAYERS, ids=LAYER_IDS)
def test_integer_input_is_rejected_with_type_error(make):
    layer = make()
    with pytest.raises(TypeError, match="floating-point"):
        layer(tf.zeros([2, 4], tf.int32))


@pytest.mark.parametrize("make", ALL_LAYERS, ids=LAYER_IDS)
def test_lookup_returns_codebook_rows(make):
    layer = built(make())
    codes = tf.constant([[0, 7], [3, 3]])
    np.testing.assert_array_equal(layer.lookup(codes).numpy(), layer.codebook.numpy()[codes.numpy()])
    with pytest.raises(TypeError, match="integers"):
        layer.lookup(tf.constant([0.5]))


@pytest.mark.parametrize("make", ALL_LAYERS, ids=LAYER_IDS)
def test_empty_batch_gives_empty_outputs_and_finite_scalars(make):
    layer = make()
    out = layer(tf.zeros([0, 4]), training=True)
    assert out["quantized"].shape == (0, 4) and out["codes"].shape == (0,)
    assert np.isfinite(out["loss"].numpy())


@pytest.mark.parametrize("make", ALL_LAYERS, ids=LAYER_IDS)
def test_tf_function_matches_eager(make):
    layer = built(make(seed=3))
    z = tf.constant(RNG.normal(size=(6, 4)), tf.float32)
    eager = deterministic_call(layer, z)
    graph = tf.function(lambda x: deterministic_call(layer, x))(z)
    for key in ("quantized", "codes", "loss"):
        np.testing.assert_allclose(graph[key].numpy(), eager[key].numpy(), rtol=1e-6)


@pytest.mark.parametrize("make", ALL_LAYERS, ids=LAYER_IDS)
def test_keras_file_round_trip_gives_equal_outputs(make, tmp_path):
    layer = make(seed=5)
    inputs = keras.Input((3, 3, 4))
    if isinstance(layer, VectorQuantizer):
        out = layer(inputs, training=False)
    else:
        out = layer(inputs, training=False, stochastic=False)
    model = keras.Model(inputs, {"quantized": out["quantized"], "codes": out["codes"]})
    if isinstance(layer, RelaxedResponsibilityQuantizer):
        layer.log_variances.assign(RNG.uniform(-1, 1, size=(8, 4)))
    if not isinstance(layer, VectorQuantizer):
        layer.temperature.assign(0.3)
    path = tmp_path / "q.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    z = RNG.normal(size=(2, 3, 3, 4)).astype(np.float32)
    a, b = model(z), loaded(z)
    np.testing.assert_allclose(a["quantized"], b["quantized"], rtol=1e-6)
    np.testing.assert_array_equal(a["codes"], b["codes"])
    loaded_layer = [l for l in loaded.layers if type(l) is type(layer)][0]
    assert loaded_layer.get_config() == layer.get_config()
    for w, v in zip(layer.weights, loaded_layer.weights):
        np.testing.assert_array_equal(np.asarray(w), np.asarray(v))


@pytest.mark.parametrize("make", ALL_LAYERS, ids=LAYER_IDS)
def test_float64_inputs_are_supported(make):
    layer = make(dtype="float64")
    out = layer(tf.constant(RNG.normal(size=(5, 4))), training=True)
    assert out["quantized"].dtype == tf.float64


# ------------------------------------------------------------ VectorQuantizer
def test_vq_picks_the_nearest_code_and_reports_vqvae_loss():
    vq = built(VectorQuantizer(6, 3, commitment_cost=0.25))
    z = RNG.normal(size=(20, 3)).astype(np.float32)
    e = vq.codebook.numpy()
    d = ((z[:, None] - e[None]) ** 2).sum(-1)
    out = vq(z, training=False)
    np.testing.assert_array_equal(out["codes"].numpy(), d.argmin(-1))
    np.testing.assert_allclose(out["quantized"].numpy(), e[d.argmin(-1)], rtol=1e-6, atol=1e-6)
    mse = ((e[d.argmin(-1)] - z) ** 2).mean()
    assert out["loss"].numpy() == pytest.approx(1.25 * mse, rel=1e-5)  # HQA eq. 2


def test_vq_gradient_is_straight_through_and_codebook_gets_codebook_loss_gradient():
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


def test_vq_ema_codebook_follows_debiased_moving_averages_only_in_training():
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


# --------------------------------------------------- StochasticVectorQuantizer
def test_stochastic_log_probs_follow_hqa_eq3_with_distance_scale():
    for scale in (1.0, 0.5):
        svq = built(StochasticVectorQuantizer(7, 3, distance_scale=scale))
        z = RNG.normal(size=(9, 3)).astype(np.float32)
        e = svq.codebook.numpy()
        logits = -scale * ((z[:, None] - e[None]) ** 2).sum(-1)
        want = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        out = svq(z, training=False, stochastic=False)
        np.testing.assert_allclose(out["log_probs"].numpy(), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(out["codes"].numpy(), logits.argmax(-1))
        q = np.exp(want)
        d = ((z[:, None] - e[None]) ** 2).sum(-1)
        assert out["entropy"].numpy() == pytest.approx(-(q * want).sum(-1).mean(), rel=1e-4)
        assert out["commitment"].numpy() == pytest.approx((q * d).sum(-1).mean(), rel=1e-4)
        loss = 1e-3 * (q * d).sum(-1).mean() + 1e-3 * (q * want).sum(-1).mean()
        assert out["loss"].numpy() == pytest.approx(loss, rel=1e-4)


def test_relaxed_sample_gradients_reach_input_and_codebook():
    svq = built(StochasticVectorQuantizer(8, 4, temperature=0.5, seed=0))
    z = tf.Variable(RNG.normal(size=(10, 4)).astype(np.float32))
    with tf.GradientTape() as tape:
        out = svq(z, training=True)
        y = tf.reduce_sum(out["quantized"] ** 2) + out["loss"]
    gz, ge = tape.gradient(y, [z, svq.codebook])
    for g in (gz, ge):
        assert g is not None and np.isfinite(g.numpy()).all() and np.abs(g.numpy()).sum() > 0


def test_low_temperature_relaxed_sample_is_near_one_hot():
    z = tf.constant(RNG.normal(size=(400, 4)).astype(np.float32))

    def fraction_near_a_code(temperature):
        svq = built(StochasticVectorQuantizer(8, 4, temperature=temperature, seed=0, code_reset=False))
        out = svq(z, training=True)
        sampled_row = svq.codebook.numpy()[out["codes"].numpy()]
        return np.mean(np.abs(out["quantized"].numpy() - sampled_row).max(-1) < 1e-2)

    assert fraction_near_a_code(0.01) > 0.95
    assert fraction_near_a_code(1.0) < 0.5


def test_nothing_is_inf_or_nan_at_temperature_001_with_far_codes():
    for layer in (
        StochasticVectorQuantizer(8, 4, temperature=0.01, seed=0),
        RelaxedResponsibilityQuantizer(8, 4, temperature=0.01, seed=0),
    ):
        built(layer)
        layer.codebook.assign(RNG.normal(size=(8, 4)) * 1e4)
        z = tf.Variable(RNG.normal(size=(16, 4)).astype(np.float32))
        with tf.GradientTape() as tape:
            out = layer(z, training=True)
            y = tf.reduce_sum(out["quantized"]) + out["loss"] + out["entropy"] + out["commitment"]
        grads = tape.gradient(y, [z, layer.codebook])
        for value in list(out.values()) + grads:
            assert np.isfinite(np.asarray(value)).all()


def test_stochastic_decode_samples_codes_at_eq3_frequencies_and_seed_reproduces():
    svq = built(StochasticVectorQuantizer(3, 2, distance_scale=0.5, seed=0))
    svq.codebook.assign([[0.0, 0.0], [1.0, 0.0], [0.0, 1.5]])
    z = np.zeros((20000, 2), np.float32)
    out = svq(z, training=False, stochastic=True, seed=tf.constant([1, 2]))
    freq = np.bincount(out["codes"].numpy(), minlength=3) / len(z)
    logits = -0.5 * np.array([0.0, 1.0, 2.25])
    p = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(freq, p, atol=0.015)
    again = svq(z, training=False, stochastic=True, seed=tf.constant([1, 2]))
    np.testing.assert_array_equal(out["codes"].numpy(), again["codes"].numpy())


def test_dead_code_is_moved_next_to_most_used_code_after_the_window():
    svq = built(StochasticVectorQuantizer(4, 2, temperature=0.01, reset_window=3, seed=0))
    start = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [50.0, 50.0]], np.float32)
    svq.codebook.assign(start)
    # Most data sits on code 1, some on code 0 and code 2; code 3 is never used.
    z = np.concatenate([np.tile([[10.0, 0.0]], (8, 1)), np.zeros((2, 2)), np.tile([[0.0, 10.0]], (2, 1))])
    z = z.astype(np.float32)
    for step in range(2):
        svq(z, training=True)
        np.testing.assert_array_equal(svq.codebook.numpy(), start)
    np.testing.assert_allclose(svq.code_usage.numpy(), [4, 16, 4, 0])
    svq(z, training=True)
    moved = svq.codebook.numpy()
    np.testing.assert_array_equal(moved[:3], start[:3])
    assert np.linalg.norm(moved[3] - start[1]) < 0.1 and not np.array_equal(moved[3], start[1])
    assert svq.code_usage.numpy().sum() == 0 and int(svq.usage_batches.numpy()) == 0


def test_code_reset_leaves_codes_alone_when_usage_is_above_threshold_or_disabled():
    start = np.array([[0.0, 0.0], [10.0, 0.0]], np.float32)
    z = np.concatenate([np.zeros((10, 2)), np.tile([[10.0, 0.0]], (1, 1))]).astype(np.float32)
    # Code 1 is used 1/10 as often as code 0: above a 3% threshold, so it stays.
    svq = built(StochasticVectorQuantizer(2, 2, temperature=0.01, reset_window=1, seed=0))
    svq.codebook.assign(start)
    svq(z, training=True)
    np.testing.assert_array_equal(svq.codebook.numpy(), start)
    # Disabled (HQA stops resetting after 75% of training): an unused code stays too.
    svq = built(StochasticVectorQuantizer(2, 2, temperature=0.01, reset_window=1, seed=0))
    svq.codebook.assign(start)
    svq.reset_enabled.assign(False)
    svq(np.zeros((10, 2), np.float32), training=True)
    np.testing.assert_array_equal(svq.codebook.numpy(), start)


def test_temperature_is_a_non_trainable_variable_a_schedule_can_set():
    svq = built(StochasticVectorQuantizer(4, 2, temperature=0.66))
    assert all(w is not svq.temperature for w in svq.trainable_weights)
    assert svq.temperature.numpy() == pytest.approx(0.66)
    svq.temperature.assign(0.01)
    assert svq.temperature.numpy() == pytest.approx(0.01)
    with pytest.raises(ValueError, match="temperature"):
        StochasticVectorQuantizer(4, 2, temperature=0.0)


# --------------------------------------------- RelaxedResponsibilityQuantizer
@pytest.mark.parametrize("cov,shape", [("diagonal", (8, 4)), ("isotropic", (8, 1)), ("unit", None)])
def test_rrvq_variance_codebook_shapes(cov, shape):
    layer = built(RelaxedResponsibilityQuantizer(8, 4, covariance=cov))
    if shape is None:
        assert layer.log_variances is None
    else:
        assert tuple(layer.log_variances.shape) == shape


def test_rrvq_responsibilities_match_gaussian_mixture_eq6_for_random_means_and_variances():
    layer = built(RelaxedResponsibilityQuantizer(9, 5, dtype="float64"), 5)
    mu = RNG.normal(size=(9, 5))
    log_var = RNG.uniform(-1.5, 1.5, size=(9, 5))
    layer.codebook.assign(mu)
    layer.log_variances.assign(log_var)
    e = RNG.normal(size=(3, 4, 5))
    var = np.exp(log_var)
    dens = np.exp(-0.5 * ((e[..., None, :] - mu) ** 2 / var).sum(-1)) / np.sqrt((2 * np.pi) ** 5 * var.prod(-1))
    want = np.log(dens / dens.sum(-1, keepdims=True))
    np.testing.assert_allclose(layer.log_responsibilities(e).numpy(), want, rtol=1e-9, atol=1e-9)
    out = layer(e, training=False, stochastic=False)
    np.testing.assert_allclose(out["log_probs"].numpy(), want, rtol=1e-9, atol=1e-9)


def test_rrvq_kl_is_zero_when_q_and_p_embeddings_coincide_and_matches_analytic_kl():
    layer = built(RelaxedResponsibilityQuantizer(6, 3, seed=2))
    layer.log_variances.assign(RNG.uniform(-1, 1, size=(6, 3)))
    eq = tf.constant(RNG.normal(size=(2, 5, 3)), tf.float32)
    ep = tf.constant(RNG.normal(size=(2, 5, 3)), tf.float32)
    same = layer(eq, training=True, prior=eq)
    np.testing.assert_allclose(same["kl"].numpy(), 0.0, atol=1e-5)
    out = layer(eq, training=True, prior=ep)
    lq, lp = layer.log_responsibilities(eq).numpy(), layer.log_responsibilities(ep).numpy()
    np.testing.assert_allclose(out["kl"].numpy(), (np.exp(lq) * (lq - lp)).sum(-1), rtol=1e-4, atol=1e-6)
    assert out["loss"].numpy() == pytest.approx(out["kl"].numpy().mean(), rel=1e-5)
    # Without a prior: KL to the uniform categorical, log K - H[q].
    uni = layer(eq, training=True)
    np.testing.assert_allclose(uni["kl"].numpy(), math.log(6) + (np.exp(lq) * lq).sum(-1), rtol=1e-4, atol=1e-6)
    # Direct-Cat: p given as logits.
    direct = layer(eq, training=True, prior_logits=tf.constant(lp))
    np.testing.assert_allclose(direct["kl"].numpy(), out["kl"].numpy(), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="not both"):
        layer(eq, prior=ep, prior_logits=tf.constant(lp))


def worst_case_codebook(k, d_e, d, delta):
    """RRVQ App. D arrangement: one code at distance d from the embedding (the
    origin) and K-1 codes at distance d + delta along the same line."""
    codebook = np.zeros((k, d_e))
    codebook[0, 0] = d
    codebook[1:, 0] = d + delta
    return codebook


def closed_form_d5(k, d, delta):
    """RRVQ eq. D.3-D.5 evaluated exactly."""
    a, b = -0.5 * d**2, -0.5 * (d + delta) ** 2
    log_z = np.logaddexp(a, np.log(k - 1) + b)
    p1, pk = np.exp(a - log_z), np.exp(b - log_z)
    return -p1 * (a - log_z) - (k - 1) * pk * (b - log_z)


def d17(k, d, delta):
    g = 0.5 * (delta**2 + 2 * delta * d)
    return (k - 1) * np.exp(-g) * (1 + g)


def test_rrvq_worst_case_entropy_equals_app_d_closed_form_and_approaches_d17():
    k, d_e, delta = 256, 32, 1.0
    layer = built(RelaxedResponsibilityQuantizer(k, d_e, covariance="unit", dtype="float64"), d_e)
    origin = np.zeros((1, d_e))
    rel_errors = []
    for d in (0.5, 2.0, 5.0, 10.0, 20.0):
        layer.codebook.assign(worst_case_codebook(k, d_e, d, delta))
        h = layer(origin, training=False, stochastic=False)["entropy"].numpy()
        assert h == pytest.approx(closed_form_d5(k, d, delta), rel=1e-7)
        if d >= 5.0:
            rel_errors.append(abs(h - d17(k, d, delta)) / h)
    # The first-order form D.17 becomes exact as d grows (App. D.3: ~1e-6 and better).
    assert rel_errors[0] > rel_errors[1] > rel_errors[2]
    assert rel_errors[-1] < 1e-6


# ------------------------------------------------------- distributed training
def _run_per_replica(strategy, layer, halves):
    values = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(halves[ctx.replica_id_in_sync_group])
    )

    @tf.function
    def step(x):
        return strategy.run(lambda z: layer(z, training=True)["loss"], args=(x,))

    step(values)


def _replica_values(strategy, variable):
    return [np.asarray(v) for v in strategy.experimental_local_results(variable.value)]


def test_mirrored_ema_statistics_are_all_reduced_and_identical_on_both_replicas(mirrored_strategy):
    strategy = mirrored_strategy
    start = RNG.normal(size=(5, 3)).astype(np.float32)
    halves = [RNG.normal(size=(12, 3)).astype(np.float32), RNG.normal(size=(12, 3)).astype(np.float32) + 1.0]
    with strategy.scope():
        vq = built(VectorQuantizer(5, 3, ema=True, decay=0.9), 3)
    vq.codebook.assign(start)
    _run_per_replica(strategy, vq, halves)
    _run_per_replica(strategy, vq, halves)
    want = np_ema_oracle(start.astype(np.float64), [np.concatenate(halves)] * 2, 0.9, 1e-5)
    for var in (vq.codebook, vq.ema_cluster_size_hidden, vq.ema_dw_hidden):
        a, b = _replica_values(strategy, var)
        np.testing.assert_array_equal(a, b)
    for cb in _replica_values(strategy, vq.codebook):
        np.testing.assert_allclose(cb, want, rtol=1e-4, atol=1e-5)


def test_mirrored_code_reset_uses_global_usage_and_moves_the_same_code_on_both_replicas(mirrored_strategy):
    strategy = mirrored_strategy
    start = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [-10.0, 0.0]], np.float32)
    # Replica 0 mostly uses code 0, replica 1 uses code 1 more; globally code 1 is the most used.
    halves = [
        np.concatenate([np.zeros((6, 2)), np.tile([[0.0, 10.0]], (2, 1))]).astype(np.float32),
        np.tile([[10.0, 0.0]], (8, 1)).astype(np.float32),
    ]
    with strategy.scope():
        svq = built(StochasticVectorQuantizer(4, 2, temperature=0.01, reset_window=1, seed=4), 2)
    svq.codebook.assign(start)
    _run_per_replica(strategy, svq, halves)
    a, b = _replica_values(strategy, svq.codebook)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[:3], start[:3])
    assert np.linalg.norm(a[3] - start[1]) < 0.1  # next to the globally most used code 1, not code 0
