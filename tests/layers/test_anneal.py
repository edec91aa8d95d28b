"""tfvq.layers.anneal: HQA's linear Gumbel-softmax temperature anneal (§5.1, App. C.1), for Python numbers,
tensors and variable steps inside a tf.function."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers.anneal import linear_anneal



def test_linear_anneal_python_numbers():
    # MNIST temperature: 0.66 -> 0.01 (HQA App. C).
    assert linear_anneal(0, 100, 0.66, 0.01) == 0.66
    assert linear_anneal(100, 100, 0.66, 0.01) == 0.01
    assert linear_anneal(250, 100, 0.66, 0.01) == 0.01  # clamped after the end
    assert linear_anneal(25, 100, 0.66, 0.01) == pytest.approx(0.66 + 0.25 * (0.01 - 0.66), abs=1e-15)
    assert linear_anneal(50, 100, 0.4, 0.01) == pytest.approx(0.205, abs=1e-15)
    assert linear_anneal(0.5, 2.0, 1, 3) == pytest.approx(1.5)  # float steps
    assert linear_anneal(np.int64(1), np.int32(4), 0.0, 4.0) == pytest.approx(1.0)
    assert isinstance(linear_anneal(3, 10, 1, 0), float)
    # Increasing anneals work too.
    assert linear_anneal(5, 10, 0.0, 1.0) == pytest.approx(0.5)


def test_linear_anneal_tensor_inputs_give_float32_tensors():
    value = linear_anneal(tf.constant(25), 100, 0.66, 0.01)
    assert tf.is_tensor(value) and value.dtype == tf.float32
    assert float(value) == pytest.approx(0.66 * 0.75 + 0.01 * 0.25, rel=1e-6)

    steps = tf.constant([0, 50, 100, 200], tf.int64)
    values = linear_anneal(steps, 100, 0.66, 0.01)
    np.testing.assert_allclose(values.numpy(), [0.66, 0.335, 0.01, 0.01], rtol=1e-6)
    assert values.numpy()[0] == np.float32(0.66) and values.numpy()[2] == np.float32(0.01)

    # Tensor start / end.
    value = linear_anneal(5, 10, tf.constant(1.0), 0.0)
    assert value.dtype == tf.float32 and float(value) == pytest.approx(0.5)


def test_linear_anneal_with_variable_step_inside_tf_function():
    iterations = keras.Variable(0, dtype="int64", trainable=False)  # as an optimiser's step counter
    anneal = tf.function(lambda step: linear_anneal(step, 40, 0.4, 0.01))
    assert float(anneal(iterations)) == pytest.approx(0.4)
    iterations.assign(10)
    assert float(anneal(iterations)) == pytest.approx(0.4 + 0.25 * (0.01 - 0.4), rel=1e-6)
    assert float(linear_anneal(iterations, 40, 0.4, 0.01)) == pytest.approx(0.3025, rel=1e-6)

    # Dynamic total_steps is checked at run time.
    dynamic = tf.function(lambda step, total: linear_anneal(step, total, 0.4, 0.01))
    assert float(dynamic(tf.constant(20), tf.constant(40))) == pytest.approx(0.205, rel=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="total_steps"):
        dynamic(tf.constant(20), tf.constant(0))


def test_linear_anneal_large_int64_steps_are_exact_enough():
    total = 10**9
    value = linear_anneal(tf.constant(total // 2, tf.int64), total, 1.0, 0.0)
    assert float(value) == pytest.approx(0.5, rel=1e-7)


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((1, 0, 1.0, 0.0), ValueError, "total_steps"),
        ((1, -5, 1.0, 0.0), ValueError, "total_steps"),
        ((1, tf.constant(0), 1.0, 0.0), ValueError, "total_steps"),
        ((-1, 10, 1.0, 0.0), ValueError, "step"),
        ((tf.constant(-1), 10, 1.0, 0.0), ValueError, "step"),
        ((True, 10, 1.0, 0.0), TypeError, "step"),
        ((1, 10, False, 0.0), TypeError, "start"),
    ],
)
def test_linear_anneal_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        linear_anneal(*args)
