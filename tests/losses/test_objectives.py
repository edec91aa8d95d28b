"""Tests for tfvq.losses.objectives."""

import numpy as np
import pytest
import tensorflow as tf

from tfvq.losses import free_bits_kl


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_free_bits_groups_below_floor_contribute_lambda_with_zero_gradient(dtype):
    free_bits = 0.5
    # Batch means per group: [0.1, 2.0, 0.3, 1.0]; groups 0 and 2 are below the floor.
    kl_np = np.array([[0.0, 1.0, 0.2, 1.5],
                      [0.2, 3.0, 0.4, 0.5]])
    kl = tf.Variable(tf.constant(kl_np, dtype))
    with tf.GradientTape() as tape:
        loss = free_bits_kl(kl, free_bits)
    grad = tape.gradient(loss, kl).numpy()

    assert loss.dtype == dtype
    assert loss.shape == ()
    np.testing.assert_allclose(loss.numpy(), 0.5 + 2.0 + 0.5 + 1.0, rtol=1e-6)
    batch = kl_np.shape[0]
    expected_grad = np.array([[0.0, 1.0 / batch, 0.0, 1.0 / batch]] * batch)
    np.testing.assert_array_equal(grad, expected_grad)


def test_free_bits_zero_floor_is_plain_batch_mean_of_summed_kl():
    rng = np.random.default_rng(0)
    kl = rng.uniform(0.0, 3.0, size=(5, 7))
    got = free_bits_kl(tf.constant(kl), 0.0)
    np.testing.assert_allclose(got.numpy(), kl.sum(axis=1).mean(), rtol=1e-12)


def test_free_bits_matches_numpy_reference_and_accepts_tensor_floor():
    rng = np.random.default_rng(1)
    kl = rng.uniform(0.0, 2.0, size=(6, 10)).astype(np.float32)
    floor = 0.9
    expected = np.maximum(kl.mean(axis=0), floor).sum()
    got = free_bits_kl(tf.constant(kl), tf.constant(floor))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("shape", [(4,), (4, 3, 2), ()])
def test_free_bits_rejects_kl_not_of_rank_two_with_reshape_hint(shape):
    with pytest.raises(ValueError, match=r"rank 2.*\[batch, groups\].*[Rr]eshape"):
        free_bits_kl(tf.zeros(shape), 0.1)


@pytest.mark.parametrize("free_bits", [-0.1, float("nan")])
def test_free_bits_rejects_negative_floor(free_bits):
    with pytest.raises(ValueError, match="free_bits"):
        free_bits_kl(tf.zeros([2, 3]), free_bits)


def test_free_bits_runs_under_tf_function_with_unknown_shapes():
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32),
                                  tf.TensorSpec([], tf.float32)])
    def f(kl, free_bits):
        return free_bits_kl(kl, free_bits)

    kl = np.array([[0.0, 4.0], [1.0, 2.0]], np.float32)
    np.testing.assert_allclose(f(kl, tf.constant(1.0)).numpy(), 1.0 + 3.0, rtol=1e-6)
    np.testing.assert_allclose(f(kl, tf.constant(0.0)).numpy(), 0.5 + 3.0, rtol=1e-6)


def test_free_bits_unknown_rank_under_tf_function_checks_rank_at_runtime():
    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)])
    def f(kl):
        return free_bits_kl(kl, 0.25)

    np.testing.assert_allclose(f(tf.ones([3, 2])).numpy(), 2.0, rtol=1e-6)
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
        f(tf.ones([3, 2, 1]))


def test_free_bits_vector_floor_is_one_floor_per_group():
    rng = np.random.default_rng(2)
    kl = rng.uniform(0.0, 3.0, size=(5, 4)).astype(np.float32)
    floors = np.array([0.5, 2.0, 2.5, 0.0], np.float32)
    expected = np.maximum(kl.mean(axis=0), floors).sum()
    np.testing.assert_allclose(free_bits_kl(tf.constant(kl), floors).numpy(), expected, rtol=1e-6)


def test_free_bits_vector_floor_must_match_the_groups():
    with pytest.raises(ValueError, match="3 floors for 4 groups"):
        free_bits_kl(tf.zeros([2, 4]), np.ones(3, np.float32))
