"""Tests for tfvq.losses.likelihoods."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfvq.losses import bits_per_dim, discretized_logistic_log_prob, mse

tfd = tfp.distributions

NUM_BINS = 256


def _numpy_oracle(x, loc, log_scale, num_bins=NUM_BINS):
    """Discretised logistic log-prob as a plain difference of CDFs, float64."""
    x = np.asarray(x, np.float64)
    loc = np.asarray(loc, np.float64)
    scale = np.exp(np.asarray(log_scale, np.float64))

    def cdf(t):
        return 1.0 / (1.0 + np.exp(-(t - loc) / scale))

    cdf_hi = cdf((x + 1.0) / num_bins)
    cdf_lo = cdf(x / num_bins)
    prob = np.where(x == 0, cdf_hi, np.where(x == num_bins - 1, 1.0 - cdf_lo, cdf_hi - cdf_lo))
    return np.log(prob)


def _random_params(rng, shape, num_bins=NUM_BINS):
    """Random pixels with loc within a few pixels and moderate scales.

    The plain CDF difference of the oracle loses relative precision once a bin's
    mass drops far below 1e-9 (cancellation of two CDFs close to 1), so the
    parameters keep every bin's log-probability above about -15.
    """
    x = rng.integers(0, num_bins, size=shape)
    # Put edge pixels in on purpose.
    x.flat[0] = 0
    x.flat[1] = num_bins - 1
    loc = (x + rng.uniform(-8.0, 8.0, size=shape)) / num_bins
    log_scale = rng.uniform(-5.0, -2.0, size=shape)
    return x, loc, log_scale


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-6), (np.float32, 1e-4)])
def test_discretized_logistic_matches_numpy_oracle(dtype, tol):
    rng = np.random.default_rng(0)
    x, loc, log_scale = _random_params(rng, (4, 5, 3))
    expected = _numpy_oracle(x, loc, log_scale)
    got = discretized_logistic_log_prob(
        x.astype(np.uint8), tf.constant(loc, dtype), tf.constant(log_scale, dtype))
    assert got.dtype == tf.as_dtype(dtype)
    assert got.shape == x.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=tol, atol=tol)


def test_discretized_logistic_matches_tfp_quantized_logistic():
    # QuantizedDistribution puts integer y on the interval (y - 1, y], with the
    # tails folded into y = low and y = high. Our value v occupies [v, v + 1) in
    # pixel units (t * num_bins), so Y = num_bins * X - 1 lands value v on
    # (v - 1, v]: Logistic(loc * num_bins - 1, scale * num_bins).
    rng = np.random.default_rng(1)
    x, loc, log_scale = _random_params(rng, (64,))
    reference = tfd.QuantizedDistribution(
        tfd.Logistic(loc=loc * NUM_BINS - 1.0, scale=np.exp(log_scale) * NUM_BINS),
        low=np.float64(0.0), high=np.float64(NUM_BINS - 1))
    expected = reference.log_prob(x.astype(np.float64)).numpy()
    got = discretized_logistic_log_prob(x, loc, log_scale).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("log_scale", [-6.0, -3.0, 0.0, 2.0, 10.0])
def test_discretized_logistic_probabilities_sum_to_one(log_scale):
    rng = np.random.default_rng(2)
    locs = rng.uniform(-0.5, 1.5, size=(5, 1))
    values = np.arange(NUM_BINS)[None, :]
    log_p = discretized_logistic_log_prob(values, locs, np.full_like(locs, log_scale))
    assert log_p.shape == (5, NUM_BINS)
    np.testing.assert_allclose(np.exp(log_p.numpy()).sum(axis=1), 1.0, rtol=1e-10)


def test_discretized_logistic_probabilities_sum_to_one_float32_small_num_bins():
    log_p = discretized_logistic_log_prob(
        np.arange(16)[:, None], tf.constant([[0.1, 0.5, 0.93]]), tf.constant([[-2.0, -4.0, 1.0]]),
        num_bins=16)
    assert log_p.dtype == tf.float32
    np.testing.assert_allclose(np.exp(log_p.numpy()).sum(axis=0), 1.0, rtol=1e-5)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("loc_value, log_scale_value", [
    (50.0, -10.0), (-50.0, -10.0), (0.5, -10.0), (0.5, 10.0), (50.0, 10.0),
    (0.5, 100.0), (0.5, -100.0), (1e4, -30.0), (0.5, -1000.0), (0.5, 1000.0),
])
def test_discretized_logistic_extreme_parameters_give_finite_values_and_gradients(
        dtype, loc_value, log_scale_value):
    x = np.array([0, 1, 127, 128, 254, 255], np.uint8)
    loc = tf.Variable(tf.fill([6], tf.constant(loc_value, dtype)))
    log_scale = tf.Variable(tf.fill([6], tf.constant(log_scale_value, dtype)))
    with tf.GradientTape() as tape:
        log_p = discretized_logistic_log_prob(x, loc, log_scale)
        total = tf.reduce_sum(log_p)
    grad_loc, grad_log_scale = tape.gradient(total, [loc, log_scale])
    assert np.all(np.isfinite(log_p.numpy()))
    assert np.all(log_p.numpy() <= 0.0)
    assert np.all(np.isfinite(grad_loc.numpy()))
    assert np.all(np.isfinite(grad_log_scale.numpy()))


def test_discretized_logistic_far_tail_is_accurate_not_clamped():
    # loc far above the unit interval with a tiny scale: interior bin v has
    # log-mass ~ b = ((v + 1)/256 - loc) / scale, the bottom bin likewise.
    loc, log_scale = 50.0, -10.0
    x = np.array([0, 1, 200])
    got = discretized_logistic_log_prob(x, np.float64(loc), np.float64(log_scale)).numpy()
    b = ((x + 1) / NUM_BINS - loc) * math.exp(-log_scale)
    np.testing.assert_allclose(got, b, rtol=1e-9)
    # Very wide distribution: an interior bin has mass ~ pdf(0.5) * width.
    got_wide = discretized_logistic_log_prob(
        np.array([100]), np.float64(0.5), np.float64(10.0)).numpy()
    width = math.exp(-10.0) / NUM_BINS
    np.testing.assert_allclose(got_wide, math.log(0.25 * width), rtol=1e-6)


def test_discretized_logistic_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    x, loc, log_scale = _random_params(rng, (8,))
    loc = tf.Variable(loc)
    log_scale = tf.Variable(log_scale)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(discretized_logistic_log_prob(x, loc, log_scale))
    g_loc, g_ls = tape.gradient(total, [loc, log_scale])
    eps = 1e-6
    for var, grad in ((loc, g_loc), (log_scale, g_ls)):
        base = var.numpy()
        for i in range(base.size):
            plus, minus = base.copy(), base.copy()
            plus[i] += eps
            minus[i] -= eps
            var.assign(plus)
            f_plus = _numpy_oracle(x, loc.numpy(), log_scale.numpy()).sum()
            var.assign(minus)
            f_minus = _numpy_oracle(x, loc.numpy(), log_scale.numpy()).sum()
            var.assign(base)
            np.testing.assert_allclose(grad.numpy()[i], (f_plus - f_minus) / (2 * eps),
                                       rtol=1e-4, atol=1e-6)


def test_discretized_logistic_broadcasts_and_accepts_int_and_float_pixels():
    loc = tf.zeros([2, 1, 3], tf.float64) + 0.4
    log_scale = tf.constant(-3.0, tf.float64)
    x_int = np.array([[3, 250, 0]], np.int64)
    out_int = discretized_logistic_log_prob(x_int, loc, log_scale)
    out_float = discretized_logistic_log_prob(x_int.astype(np.float32), loc, log_scale)
    out_uint8 = discretized_logistic_log_prob(tf.constant(x_int, tf.uint8), loc, log_scale)
    assert out_int.shape == (2, 1, 3)
    assert out_int.dtype == tf.float64
    np.testing.assert_array_equal(out_int.numpy(), out_float.numpy())
    np.testing.assert_array_equal(out_int.numpy(), out_uint8.numpy())


@pytest.mark.parametrize("bad_x, match", [
    (np.array([0, 256]), r"\[0, 255\]"),
    (np.array([-1, 3]), r"\[0, 255\]"),
    (np.array([0.5, 3.0]), "non-integral"),
    (np.array([0.0, 0.25]), "non-integral"),
    (tf.constant([1.0, np.nan]), "NaN"),
    (tf.constant([0, 300]), r"\[0, 255\]"),
])
def test_discretized_logistic_rejects_out_of_range_or_non_integral_pixels(bad_x, match):
    with pytest.raises(ValueError, match=match):
        discretized_logistic_log_prob(bad_x, 0.5, -2.0)


def test_discretized_logistic_respects_num_bins_range():
    discretized_logistic_log_prob(np.array([0, 15]), 0.5, -2.0, num_bins=16)
    with pytest.raises(ValueError, match=r"\[0, 15\]"):
        discretized_logistic_log_prob(np.array([0, 16]), 0.5, -2.0, num_bins=16)
    with pytest.raises(ValueError, match="num_bins"):
        discretized_logistic_log_prob(np.array([0]), 0.5, -2.0, num_bins=1)


@pytest.mark.parametrize("bad_x", [
    np.array([True, False]),
    np.array([1 + 2j]),
    tf.constant([1 + 2j], tf.complex64),
    tf.constant([True]),
    tf.constant(["a"]),
    np.array(["a"]),
])
def test_discretized_logistic_rejects_bool_complex_and_string_pixels(bad_x):
    with pytest.raises(TypeError):
        discretized_logistic_log_prob(bad_x, 0.5, -2.0)


def test_discretized_logistic_runs_under_tf_function_in_float32_and_float64():
    @tf.function
    def f(x, loc, log_scale):
        return discretized_logistic_log_prob(x, loc, log_scale)

    rng = np.random.default_rng(4)
    x, loc, log_scale = _random_params(rng, (3, 4))
    expected = _numpy_oracle(x, loc, log_scale)
    for dtype, tol in ((tf.float64, 1e-6), (tf.float32, 1e-4)):
        got = f(tf.constant(x, tf.int32), tf.constant(loc, dtype), tf.constant(log_scale, dtype))
        assert got.dtype == dtype
        np.testing.assert_allclose(got.numpy(), expected, rtol=tol, atol=tol)


def test_bits_per_dim_matches_hand_computed_value():
    num_dims = 32 * 32 * 3
    nats = num_dims * math.log(2.0) * 3.0
    assert bits_per_dim(nats, num_dims) == pytest.approx(3.0, rel=1e-12)
    assert isinstance(bits_per_dim(nats, num_dims), float)
    got = bits_per_dim(tf.constant([nats, 2 * nats], tf.float64), num_dims)
    np.testing.assert_allclose(got.numpy(), [3.0, 6.0], rtol=1e-12)
    got32 = bits_per_dim(tf.constant(nats, tf.float32), tf.constant(num_dims))
    assert got32.dtype == tf.float32
    np.testing.assert_allclose(got32.numpy(), 3.0, rtol=1e-6)


@pytest.mark.parametrize("num_dims", [0, -3])
def test_bits_per_dim_rejects_non_positive_num_dims(num_dims):
    with pytest.raises(ValueError, match="num_dims"):
        bits_per_dim(1.0, num_dims)
    with pytest.raises(ValueError, match="num_dims"):
        bits_per_dim(tf.constant(1.0), tf.constant(num_dims))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mse_matches_numpy(dtype):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 3, 4)).astype(dtype)
    y = rng.normal(size=(2, 3, 4)).astype(dtype)
    got = mse(tf.constant(x), tf.constant(y))
    assert got.shape == ()
    assert got.dtype == tf.as_dtype(dtype)
    np.testing.assert_allclose(got.numpy(), np.mean((x.astype(np.float64) - y) ** 2),
                               rtol=1e-6 if dtype == np.float32 else 1e-12)


def test_mse_rejects_shape_mismatch_naming_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        mse(tf.zeros([2, 3]), tf.zeros([3, 2]))
    with pytest.raises(ValueError):
        mse(tf.zeros([2, 3]), tf.zeros([3]))
