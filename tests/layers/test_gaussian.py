"""Behaviour of `GaussianLatent` and `ops.gaussian_kl`, checked against NumPy and TFP."""

import tfvq  # noqa: F401  (sets the CPU allocator before TensorFlow starts)

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfvq.layers import GaussianLatent, ops

tfd = tfp.distributions
RNG = np.random.default_rng(7)
L = 4  # latent_dim in most tests


def params(shape, latent_dim=L, scale=1.0, dtype=np.float32):
    """Random `[*shape, 2 * latent_dim]` = concat(mean, log_scale) with log-scales in [-1, 1]."""
    mean = RNG.normal(size=(*shape, latent_dim)) * scale
    log_scale = RNG.uniform(-1.0, 1.0, size=(*shape, latent_dim))
    return np.concatenate([mean, log_scale], -1).astype(dtype)


def np_kl(q, p):
    """Closed-form KL of diagonal Gaussians, summed over the latent axis, in float64."""
    q, p = q.astype(np.float64), p.astype(np.float64)
    d = q.shape[-1] // 2
    mq, lq, mp, lp = q[..., :d], q[..., d:], p[..., :d], p[..., d:]
    kl = lp - lq + (np.exp(2 * lq) + (mq - mp) ** 2) / (2 * np.exp(2 * lp)) - 0.5
    return kl.sum(-1)


# ----------------------------------------------------------------------- KL
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kl_matches_numpy_closed_form_and_tfp(dtype):
    layer = GaussianLatent(L, dtype=tf.as_dtype(dtype).name)
    q, p = params((2, 3, 5), dtype=dtype), params((2, 3, 5), dtype=dtype)
    out = layer(q, prior=p, training=False, stochastic=False)
    assert out["kl"].shape == (2, 3, 5) and out["kl"].dtype == tf.as_dtype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out["kl"].numpy(), np_kl(q, p), rtol=tol, atol=tol)
    tfp_kl = tfd.Normal(q[..., :L], np.exp(q[..., L:])).kl_divergence(tfd.Normal(p[..., :L], np.exp(p[..., L:])))
    np.testing.assert_allclose(out["kl"].numpy(), tf.reduce_sum(tfp_kl, -1).numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(out["loss"].numpy(), np_kl(q, p).mean(), rtol=tol)


def test_ops_gaussian_kl_is_elementwise_and_broadcasts():
    mq, lq = RNG.normal(size=(6, 3)), RNG.uniform(-1, 1, size=(6, 3))
    mp, lp = RNG.normal(size=(3,)), RNG.uniform(-1, 1, size=(3,))
    got = ops.gaussian_kl(tf.constant(mq), tf.constant(lq), tf.constant(mp), tf.constant(lp)).numpy()
    want = lp - lq + (np.exp(2 * lq) + (mq - mp) ** 2) / (2 * np.exp(2 * lp)) - 0.5
    assert got.shape == (6, 3)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_kl_is_zero_when_prior_equals_inputs():
    q = params((3, 7))
    out = GaussianLatent(L)(q, prior=q, training=True)
    np.testing.assert_array_equal(out["kl"].numpy(), np.zeros((3, 7), np.float32))


def test_kl_without_prior_is_kl_against_standard_normal():
    q = params((3, 7))
    layer = GaussianLatent(L)
    zeros = np.zeros_like(q)
    a = layer(q, training=False, stochastic=False)["kl"].numpy()
    b = layer(q, prior=zeros, training=False, stochastic=False)["kl"].numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, np_kl(q, zeros), rtol=1e-5)


# ------------------------------------------------------------------ samples
def test_outputs_have_documented_keys_shapes_and_parameters():
    q = params((2, 3, 3))
    out = GaussianLatent(L)(q, training=True, seed=[1, 2])
    assert set(out) == {"quantized", "kl", "loss", "mean", "log_scale"}
    assert out["quantized"].shape == (2, 3, 3, L) and out["kl"].shape == (2, 3, 3) and out["loss"].shape == ()
    np.testing.assert_array_equal(out["mean"].numpy(), q[..., :L])
    np.testing.assert_array_equal(out["log_scale"].numpy(), q[..., L:])


def test_sample_moments_match_mean_and_scale():
    mean, log_scale = np.array([1.0, -2.0, 0.0]), np.log([1.0, 0.5, 3.0])
    q = np.tile(np.concatenate([mean, log_scale]), (40000, 1)).astype(np.float32)
    z = GaussianLatent(3)(q, training=True, seed=[3, 4])["quantized"].numpy()
    np.testing.assert_allclose(z.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(z.std(0), np.exp(log_scale), rtol=0.03)


def test_same_seed_gives_same_sample_and_different_seeds_differ():
    layer, q = GaussianLatent(L), params((4, 5))
    a = layer(q, training=True, seed=[5, 6])["quantized"].numpy()
    b = layer(q, training=True, seed=[5, 6])["quantized"].numpy()
    c = layer(q, training=True, seed=[5, 7])["quantized"].numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.any(a == c)


def test_layer_seed_generator_gives_fresh_noise_per_call_and_is_reproducible():
    q = params((4, 5))
    a1, a2 = (GaussianLatent(L, seed=11)(q, stochastic=True)["quantized"].numpy() for _ in range(2))
    layer = GaussianLatent(L, seed=11)
    b1, b2 = layer(q)["quantized"].numpy(), layer(q)["quantized"].numpy()
    np.testing.assert_array_equal(a1, a2)  # two fresh layers with one seed agree
    np.testing.assert_array_equal(a1, b1)
    assert not np.any(b1 == b2)  # one layer advances its stream
    graph = tf.function(lambda x: layer(x)["quantized"])
    assert not np.any(graph(q).numpy() == graph(q).numpy())


def test_deterministic_call_returns_the_mean_exactly():
    q = params((2, 6))
    out = GaussianLatent(L)(q, training=False, stochastic=False)
    np.testing.assert_array_equal(out["quantized"].numpy(), q[..., :L])
    # stochastic=False does not turn sampling off in training
    train = GaussianLatent(L)(q, training=True, stochastic=False, seed=[1, 1])
    assert not np.any(train["quantized"].numpy() == q[..., :L])


def test_gradients_flow_through_the_sample_to_mean_and_log_scale():
    q = tf.constant(params((5, 3)))
    layer = GaussianLatent(L)
    with tf.GradientTape() as tape:
        tape.watch(q)
        out = layer(q, training=True, seed=[9, 9])
        total = tf.reduce_sum(out["quantized"])
    grad = tape.gradient(total, q).numpy()
    z, mean, log_scale = out["quantized"].numpy(), q.numpy()[..., :L], q.numpy()[..., L:]
    eps = (z - mean) / np.exp(log_scale)
    np.testing.assert_allclose(grad[..., :L], 1.0)  # dz/dmean
    np.testing.assert_allclose(grad[..., L:], np.exp(log_scale) * eps, rtol=1e-5, atol=1e-6)  # dz/dlog_scale


def test_min_log_scale_is_a_hard_clamp():
    q = np.array([[0.5, 0.5, -9.0, -6.0]], np.float32)  # latent_dim 2: means 0.5, log-scales -9 (clamped), -6
    qt = tf.constant(q)
    with tf.GradientTape() as tape:
        tape.watch(qt)
        out = GaussianLatent(2, min_log_scale=-7.0)(qt, training=False, stochastic=False)
        kl = out["loss"]
    np.testing.assert_array_equal(out["log_scale"].numpy(), [[-7.0, -6.0]])
    grad = tape.gradient(kl, qt).numpy()
    assert grad[0, 2] == 0.0 and grad[0, 3] != 0.0
    unclamped = GaussianLatent(2, min_log_scale=None)(q, stochastic=False)
    np.testing.assert_array_equal(unclamped["log_scale"].numpy(), [[-9.0, -6.0]])


# ------------------------------------------------------------------- errors
def test_bad_shapes_and_dtypes_raise_errors_naming_what_was_expected():
    layer = GaussianLatent(L)
    with pytest.raises(ValueError, match="odd last dimension 7"):
        layer(tf.zeros([2, 7]))
    with pytest.raises(ValueError, match="2 \\* latent_dim = 8"):
        layer(tf.zeros([2, 6]))
    with pytest.raises(ValueError, match="prior must have the shape"):
        layer(tf.zeros([2, 8]), prior=tf.zeros([3, 8]))
    with pytest.raises(ValueError, match="prior whose last dimension is 2 \\* latent_dim = 8"):
        layer(tf.zeros([2, 8]), prior=tf.zeros([2, 6]))
    with pytest.raises(TypeError, match="floating-point"):
        GaussianLatent(L)(tf.zeros([2, 8], tf.int32))
    with pytest.raises(ValueError, match="positive integer"):
        GaussianLatent(0)


# -------------------------------------------------------------- distribution
def test_mirrored_step_draws_the_one_device_sample(mirrored_strategy):
    strategy = mirrored_strategy
    q, p = params((4, 3), latent_dim=8), params((4, 3), latent_dim=8)  # 2*3*8 = 48 values per replica
    seed = tf.constant([21, 22])
    layer = GaussianLatent(8)
    want = layer(q, prior=p, training=True, seed=seed)

    def shard(x):
        return strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(x[2 * ctx.replica_id_in_sync_group : 2 * ctx.replica_id_in_sync_group + 2])
        )

    @tf.function
    def step(x, y):
        def fn(a, b):
            out = layer(a, prior=b, training=True, seed=seed)
            return out["quantized"], out["kl"]

        return strategy.run(fn, args=(x, y))

    z, kl = step(shard(q), shard(p))
    got_z = np.concatenate([np.asarray(v) for v in strategy.experimental_local_results(z)])
    got_kl = np.concatenate([np.asarray(v) for v in strategy.experimental_local_results(kl)])
    np.testing.assert_array_equal(got_z, want["quantized"].numpy())
    np.testing.assert_allclose(got_kl, want["kl"].numpy(), rtol=1e-6)


# ------------------------------------------------------------- serialisation
def test_get_config_round_trip():
    layer = GaussianLatent(16, min_log_scale=-5.0, seed=3, name="z1")
    clone = GaussianLatent.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.latent_dim == 16 and clone.min_log_scale == -5.0 and clone.seed == 3
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is GaussianLatent and revived.get_config() == layer.get_config()


def test_keras_file_round_trip_gives_equal_outputs(keras_round_trip):
    layer = GaussianLatent(L, seed=5)
    inputs, prior = keras.Input((3, 2 * L)), keras.Input((3, 2 * L))
    out = layer(inputs, training=False, stochastic=False, prior=prior)
    model = keras.Model([inputs, prior], {"quantized": out["quantized"], "kl": out["kl"]})
    q, p = params((2, 3)), params((2, 3))
    a, _ = keras_round_trip(model, layer, [q, p], rtol=1e-6)
    np.testing.assert_array_equal(a["quantized"], q[..., :L])
    np.testing.assert_allclose(a["kl"], np_kl(q, p), rtol=1e-5)
