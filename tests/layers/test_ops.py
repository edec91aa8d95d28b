"""NumPy oracles for the quantizer maths in `tfvq.layers.ops`."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers import ops

RNG = np.random.default_rng(0)


def np_log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-4), (np.float64, 1e-10)])
def test_squared_distances_match_broadcast_oracle(dtype, tol):
    x = RNG.normal(size=(37, 5)).astype(dtype)
    e = RNG.normal(size=(11, 5)).astype(dtype)
    want = ((x[:, None, :] - e[None, :, :]) ** 2).sum(-1)
    got = ops.squared_distances(tf.constant(x), tf.constant(e)).numpy()
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    assert got.dtype == dtype


def test_squared_distances_are_never_negative_for_coincident_points():
    e = RNG.normal(size=(4, 3)).astype(np.float32) * 1e3
    d = ops.squared_distances(tf.constant(e), tf.constant(e)).numpy()
    assert (d >= 0).all()
    # Cancellation error is bounded by float32 rounding of ||e||^2, not by ||e||^2 itself.
    assert np.all(np.diag(d) <= 4 * np.finfo(np.float32).eps * (e**2).sum(-1))


def np_gaussian_log_density(x, mu, log_var):
    """log N(x; mu_k, diag(exp(log_var_k))) written out per dimension (RRVQ eq. 6)."""
    var = np.exp(log_var)  # [K, D] or [K, 1]
    var = np.broadcast_to(var, mu.shape)
    diff = x[:, None, :] - mu[None]
    return -0.5 * (diff**2 / var[None]).sum(-1) - 0.5 * np.log(2 * np.pi * var).sum(-1)[None]


@pytest.mark.parametrize("cov", ["diagonal", "isotropic", "unit"])
def test_gaussian_logits_match_mixture_responsibility_oracle(cov):
    n, k, d = 29, 13, 6
    x = RNG.normal(size=(n, d))
    mu = RNG.normal(size=(k, d))
    if cov == "diagonal":
        log_var = RNG.uniform(-2, 2, size=(k, d))
    elif cov == "isotropic":
        log_var = RNG.uniform(-2, 2, size=(k, 1))
    else:
        log_var = np.zeros((k, 1))
    want = np_gaussian_log_density(x, mu, log_var)
    got = ops.gaussian_log_density_logits(
        tf.constant(x), tf.constant(mu), None if cov == "unit" else tf.constant(log_var)
    ).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    # Responsibilities: normalised over codes.
    np.testing.assert_allclose(
        tf.nn.softmax(got).numpy(), np.exp(np_log_softmax(want)), rtol=1e-9, atol=1e-12
    )


def test_entropy_commitment_and_kl_match_numpy():
    logits = RNG.normal(size=(7, 9)) * 3
    p_logits = RNG.normal(size=(7, 9)) * 3
    x = RNG.normal(size=(7, 4))
    e = RNG.normal(size=(9, 4))
    lq, lp = np_log_softmax(logits), np_log_softmax(p_logits)
    q = np.exp(lq)
    dist = ((x[:, None] - e[None]) ** 2).sum(-1)
    np.testing.assert_allclose(ops.categorical_entropy(tf.constant(logits)).numpy(), -(q * lq).sum(-1), rtol=1e-10)
    np.testing.assert_allclose(
        ops.expected_squared_distance(tf.constant(x), tf.constant(q), tf.constant(e)).numpy(),
        (q * dist).sum(-1),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        ops.categorical_kl(tf.constant(logits), tf.constant(p_logits)).numpy(), (q * (lq - lp)).sum(-1), rtol=1e-10
    )


def test_distance_scores_differ_from_squared_distances_by_the_row_norm():
    x = RNG.normal(size=(23, 5))
    e = RNG.normal(size=(7, 5))
    want = ((x[:, None] - e[None]) ** 2).sum(-1) - (x**2).sum(-1, keepdims=True)
    np.testing.assert_allclose(ops.distance_scores(tf.constant(x), tf.constant(e)).numpy(), want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("scale", [1.0, -0.5])
def test_distance_scores_gradients_match_the_numpy_oracle(scale):
    """The hand-written bias gradient (a product 1^T G): d/dx = G (-2s E), d/dE = -2s G^T x + 2s E * (1^T G)."""
    x, e, g = RNG.normal(size=(23, 5)), RNG.normal(size=(7, 5)), RNG.normal(size=(23, 7))
    xt, et = tf.constant(x), tf.constant(e)
    with tf.GradientTape() as tape:
        tape.watch([xt, et])
        scores = ops.distance_scores(xt, et, scale)
    grad_x, grad_e = tape.gradient(scores, [xt, et], output_gradients=tf.constant(g))
    np.testing.assert_allclose(grad_x.numpy(), g @ (-2.0 * scale * e), rtol=1e-9, atol=1e-9)
    want_e = -2.0 * scale * g.T @ x + 2.0 * scale * e * g.sum(0)[:, None]
    np.testing.assert_allclose(grad_e.numpy(), want_e, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("scale", [1.0, 0.5, 3.0])
def test_scaled_distance_logits_equal_minus_scale_times_squared_distance(scale):
    x = RNG.normal(size=(23, 5))
    e = RNG.normal(size=(7, 5))
    want = -scale * ((x[:, None] - e[None]) ** 2).sum(-1)
    got = ops.scaled_distance_logits(tf.constant(x), tf.constant(e), scale).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_kl_of_identical_categoricals_is_zero_and_kl_to_uniform_is_logk_minus_entropy():
    logits = tf.constant(RNG.normal(size=(5, 16)))
    np.testing.assert_allclose(ops.categorical_kl(logits, logits).numpy(), 0.0, atol=1e-12)
    kl_u = ops.categorical_kl(logits, tf.zeros_like(logits)).numpy()
    np.testing.assert_allclose(kl_u, math.log(16) - ops.categorical_entropy(logits).numpy(), rtol=1e-10)


def test_maths_stays_finite_for_codes_far_from_every_input():
    x = tf.constant(RNG.normal(size=(8, 4)), tf.float32)
    far = tf.constant(RNG.normal(size=(6, 4)) * 1e6, tf.float32)
    d = ops.squared_distances(x, far)
    logits = -d
    q = tf.nn.softmax(logits)
    for value in [d, ops.categorical_entropy(logits), ops.expected_squared_distance(x, q, far),
                  ops.scaled_distance_logits(x, far, 0.5),
                  ops.categorical_kl(logits, tf.zeros_like(logits)),
                  ops.gaussian_log_density_logits(x, far, tf.fill([6, 4], -5.0))]:
        assert np.isfinite(value.numpy()).all()


def test_code_counts_and_perplexity_are_k_for_uniform_use_and_one_for_a_single_code():
    k = 8
    uniform = ops.code_counts(tf.range(4 * k) % k, k)
    np.testing.assert_array_equal(uniform.numpy(), np.full(k, 4.0))
    single = ops.code_counts(tf.zeros([10], tf.int32), k)
    assert ops.perplexity(uniform).numpy() == pytest.approx(k, rel=1e-5)
    assert ops.perplexity(single).numpy() == pytest.approx(1.0, rel=1e-5)
    assert ops.perplexity(tf.zeros([k])).numpy() == pytest.approx(1.0)
    counts = np.array([5.0, 1.0, 0.0, 2.0])
    p = counts / counts.sum()
    want = np.exp(-(p[p > 0] * np.log(p[p > 0])).sum())
    assert ops.perplexity(tf.constant(counts, tf.float32)).numpy() == pytest.approx(want, rel=1e-5)


def test_safe_mean_of_empty_tensor_is_zero():
    assert ops.safe_mean(tf.zeros([0])).numpy() == 0.0
    assert ops.safe_mean(tf.constant([1.0, 3.0])).numpy() == 2.0


def _reference_relaxed(logits, codebook, temperature, seed):
    import tensorflow_probability as tfp

    y = tfp.distributions.RelaxedOneHotCategorical(temperature, logits=logits).sample(seed=seed)
    q = tf.nn.softmax(logits)
    return tf.matmul(y, codebook), tf.argmax(y, -1, output_type=tf.int32), ops.categorical_entropy(logits), \
        tf.reduce_sum(q * logits, -1)


@pytest.mark.parametrize("temperature", [1.0, 0.4, 0.01])
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_relaxed_quantize_draws_tfps_relaxed_sample_and_matches_its_autodiff_gradient(temperature, dtype):
    logits = tf.constant(RNG.normal(size=(64, 12)) * 2, dtype)
    codebook = tf.constant(RNG.normal(size=(12, 3)), dtype)
    seed = tf.constant([7, 11], tf.int32)
    w_q = tf.constant(RNG.normal(size=(64, 3)), dtype)
    w_h = tf.constant(RNG.normal(size=(64,)), dtype)
    w_s = tf.constant(RNG.normal(size=(64,)), dtype)

    def loss_and_grads(fn):
        with tf.GradientTape() as tape:
            tape.watch([logits, codebook])
            quantized, codes, entropy, expected = fn(logits, codebook, temperature, seed)
            loss = tf.reduce_sum(quantized * w_q) + tf.reduce_sum(entropy * w_h) + tf.reduce_sum(expected * w_s)
        return (quantized, codes, entropy, expected), tape.gradient(loss, [logits, codebook])

    (q1, c1, h1, s1), (gl1, ge1) = loss_and_grads(ops.relaxed_quantize)
    (q2, c2, h2, s2), (gl2, ge2) = loss_and_grads(_reference_relaxed)
    # The fused kernel forms (l + g) / tau in another order than TFP: in float32 the softmax inputs, of size
    # up to about 20 / tau (about 2000 at tau = 0.01), differ by their rounding, about 1e-7 of that.
    tol = 1e-10 if dtype == tf.float64 else 2e-5 / min(1.0, 10 * temperature)
    np.testing.assert_allclose(q1.numpy(), q2.numpy(), rtol=tol, atol=tol)
    np.testing.assert_array_equal(c1.numpy(), c2.numpy())
    np.testing.assert_allclose(h1.numpy(), h2.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(s1.numpy(), s2.numpy(), rtol=tol, atol=tol)
    scale = max(1.0, np.abs(gl2.numpy()).max())
    np.testing.assert_allclose(gl1.numpy() / scale, gl2.numpy() / scale, atol=10 * tol)
    np.testing.assert_allclose(ge1.numpy(), tf.convert_to_tensor(ge2).numpy(), rtol=tol, atol=tol)


def test_relaxed_quantize_unused_outputs_need_no_gradient():
    logits = tf.Variable(RNG.normal(size=(8, 5)).astype(np.float32))
    codebook = tf.constant(RNG.normal(size=(5, 2)).astype(np.float32))
    with tf.GradientTape() as tape:
        quantized, _, _, _ = ops.relaxed_quantize(logits, codebook, 0.5, tf.constant([1, 2]))
        loss = tf.reduce_sum(quantized)
    grad = tape.gradient(loss, logits)
    assert grad is not None and np.isfinite(grad.numpy()).all()


def test_replica_uniform_is_stateless_uniform_outside_a_strategy():
    seed = tf.constant([5, 9])
    for dtype in (tf.float32, tf.float64):
        want = tf.random.stateless_uniform([7, 12], seed, minval=1e-30, maxval=1.0, dtype=dtype)
        np.testing.assert_array_equal(ops.replica_uniform([7, 12], seed, dtype, 1e-30).numpy(), want.numpy())


def test_mirrored_replicas_draw_their_slices_of_the_one_device_noise(mirrored_strategy):
    seed = tf.constant([2, 3])
    full = ops.replica_uniform([8, 16], seed, tf.float32).numpy()

    @tf.function
    def draw():
        return mirrored_strategy.run(lambda: ops.replica_uniform([4, 16], seed, tf.float32))

    parts = [np.asarray(p) for p in mirrored_strategy.experimental_local_results(draw())]
    assert not np.array_equal(parts[0], parts[1])  # replicas never share noise
    np.testing.assert_array_equal(np.concatenate(parts), full)


# ------------------------------------------------------------------ mixed precision (bfloat16 inputs)
# The products run in bfloat16: the kernel accumulates in float32 and rounds its output to bfloat16 (8
# significant bits, a relative error of at most 2^-9), which is then widened to float32. Both factors of
# a product are bfloat16 (the codebook is cast for it; the biases such as ||e_k||^2 use the float32
# codebook). The oracle is float64 maths on those bfloat16-rounded factors, so the only error left is the
# output rounding: each check allows 2^-8 (twice the bound) of the magnitude of the rounded product.
BF16_REL = 2.0**-8


def _bf16(a):
    """`a` rounded to bfloat16 (as the layer's input cast does), back in float64 for the oracle."""
    return tf.cast(tf.cast(tf.constant(a, tf.float32), tf.bfloat16), tf.float64).numpy()


@pytest.mark.parametrize("scale", [1.0, -0.5])
def test_bfloat16_distance_scores_are_float32_and_match_the_oracle_to_the_rounding_of_the_product(scale):
    x, e = RNG.normal(size=(300, 64)), RNG.uniform(-1, 1, size=(256, 64))
    xb, eb = _bf16(x), _bf16(e)
    got = ops.distance_scores(tf.constant(x, tf.bfloat16), tf.constant(e, tf.float32), scale)
    assert got.dtype == tf.float32
    cross = -2.0 * scale * xb @ eb.T  # the bfloat16 product, rounded; the bias from the float32 codebook
    want = cross + scale * (e**2).sum(-1)
    assert np.all(np.abs(got.numpy() - want) <= BF16_REL * np.abs(cross) + 1e-5)
    # The float32 path is unchanged: the oracle to float32 rounding.
    got32 = ops.distance_scores(tf.constant(x, tf.float32), tf.constant(e, tf.float32), scale).numpy()
    np.testing.assert_allclose(got32, -2.0 * scale * x @ e.T + scale * (e**2).sum(-1), rtol=1e-4, atol=1e-4)


def test_bfloat16_scaled_distance_logits_are_float32_minus_scale_squared_distances():
    x, e = RNG.normal(size=(200, 16)), RNG.normal(size=(32, 16))
    xb, eb = _bf16(x), _bf16(e)
    got = ops.scaled_distance_logits(tf.constant(x, tf.bfloat16), tf.constant(e, tf.float32), 0.5)
    assert got.dtype == tf.float32
    # -s (||x||^2 - 2 x.e + ||e||^2) with x.e the bfloat16 product and both norms in float32.
    want = -0.5 * ((xb**2).sum(-1)[:, None] - 2.0 * xb @ eb.T + (e**2).sum(-1))
    cross = np.abs(xb @ eb.T)  # 0.5 * |2 x.e|: the rounded product's magnitude, scaled
    assert np.all(np.abs(got.numpy() - want) <= BF16_REL * cross + 1e-5)


@pytest.mark.parametrize("cov", ["diagonal", "isotropic", "unit"])
def test_bfloat16_gaussian_logits_are_float32_and_match_the_mixture_oracle(cov):
    n, k, d = 150, 24, 8
    x = RNG.normal(size=(n, d))
    mu = RNG.normal(size=(k, d))
    log_var = {"diagonal": RNG.uniform(-1, 1, size=(k, d)), "isotropic": RNG.uniform(-1, 1, size=(k, 1)),
               "unit": np.zeros((k, 1))}[cov]
    xb = _bf16(x)
    got = ops.gaussian_log_density_logits(tf.constant(x, tf.bfloat16), tf.constant(mu, tf.float32),
                                          None if cov == "unit" else tf.constant(log_var, tf.float32))
    assert got.dtype == tf.float32
    want = np_gaussian_log_density(xb, mu, log_var)
    # The product is [x*x, x] @ [-P/2; mu P]: x*x is rounded to bfloat16 too (2^-9 of each term).
    precision = np.broadcast_to(np.exp(-log_var), mu.shape)
    product = 0.5 * (xb**2) @ precision.T + np.abs(xb) @ np.abs(mu * precision).T
    assert np.all(np.abs(got.numpy() - want) <= 2 * BF16_REL * product + 1e-4)


def test_bfloat16_expected_squared_distance_is_float32_and_matches_the_oracle():
    x, e = RNG.normal(size=(100, 8)), RNG.normal(size=(16, 8))
    q = np.exp(np_log_softmax(RNG.normal(size=(100, 16)) * 2))
    xb, qb, eb = _bf16(x), _bf16(q), _bf16(e)
    got = ops.expected_squared_distance(tf.constant(x, tf.bfloat16), tf.constant(q, tf.float32), tf.constant(e, tf.float32))
    assert got.dtype == tf.float32
    # ||x||^2 - 2 x.(q @ E) + q @ ||E||^2, the product q @ E of the bfloat16-rounded factors.
    want = (xb**2).sum(-1) - 2.0 * (xb * (qb @ eb)).sum(-1) + q @ (e**2).sum(-1)
    # The rounded product q @ E enters as -2 x.(q @ E).
    tol = BF16_REL * 2 * (np.abs(xb) * (np.abs(qb) @ np.abs(eb))).sum(-1) + 1e-4
    assert np.all(np.abs(got.numpy() - want) <= tol)


@pytest.mark.parametrize("temperature", [1.0, 0.01])
def test_bfloat16_relaxed_quantize_keeps_noise_sample_and_entropy_float32(temperature):
    """With float32 logits and a bfloat16 codebook only the products with the codebook are bfloat16: the
    codes, entropy and E_q[l] equal the float32 op's exactly, `quantized` and the gradients to the rounding
    of their products."""
    logits = tf.constant(RNG.normal(size=(64, 12)) * 2, tf.float32)
    codebook = RNG.normal(size=(12, 3))
    cb16, cb32 = tf.constant(codebook, tf.bfloat16), tf.constant(_bf16(codebook), tf.float32)
    seed = tf.constant([7, 11], tf.int32)
    w_q = tf.constant(RNG.normal(size=(64, 3)), tf.float32)

    def run(cb):
        with tf.GradientTape() as tape:
            tape.watch([logits, cb])
            quantized, codes, entropy, expected = ops.relaxed_quantize(logits, cb, temperature, seed)
            loss = tf.reduce_sum(tf.cast(quantized, tf.float32) * w_q) + tf.reduce_sum(entropy - 0.3 * expected)
        g_logits, g_cb = tape.gradient(loss, [logits, cb])
        return quantized, codes, entropy, expected, g_logits, g_cb

    q16, c16, h16, s16, gl16, ge16 = run(cb16)
    q32, c32, h32, s32, gl32, ge32 = run(cb32)
    assert q16.dtype == tf.bfloat16 and h16.dtype == s16.dtype == gl16.dtype == tf.float32 and ge16.dtype == tf.bfloat16
    np.testing.assert_array_equal(c16.numpy(), c32.numpy())
    np.testing.assert_array_equal(h16.numpy(), h32.numpy())
    np.testing.assert_array_equal(s16.numpy(), s32.numpy())
    y = tf.nn.softmax((logits - tf.math.log(-tf.math.log(ops.replica_uniform(
        tf.shape(logits), seed, tf.float32, np.finfo(np.float32).tiny)))) / temperature).numpy()
    magnitude = y @ np.abs(_bf16(codebook))  # |y| @ |E|: y and the product are rounded to bfloat16
    assert np.all(np.abs(tf.cast(q16, tf.float64).numpy() - q32.numpy()) <= 2 * BF16_REL * magnitude + 1e-6)
    g = w_q.numpy() / temperature
    g_y_mag = np.abs(_bf16(g)) @ np.abs(_bf16(codebook)).T  # the backward product G E^T, rounded
    assert np.all(np.abs(gl16.numpy() - gl32.numpy()) <= 2 * BF16_REL * (y * g_y_mag + y * (y * g_y_mag).sum(-1,
                  keepdims=True)) + 1e-5)
    ge_mag = y.T @ np.abs(w_q.numpy())  # y^T G, rounded
    assert np.all(np.abs(tf.cast(ge16, tf.float64).numpy() - ge32.numpy()) <= 3 * BF16_REL * ge_mag + 1e-6)
