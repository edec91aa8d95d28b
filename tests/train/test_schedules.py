"""Tests for tfvq.train.schedules: the learning-rate schedules of HQA ("cosine annealed in the final third",
App. C) and RRVQ-VAE (reduce on plateau, App. C). The Gumbel temperature anneal it re-exports is tested with
its module, tests/layers/test_anneal.py."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.train.optimizers import RAdam
from tfvq.layers import anneal
from tfvq.train import schedules
from tfvq.train.schedules import CosineAnnealFinalFraction, ReduceOnPlateau

# ---------------------------------------------------- CosineAnnealFinalFraction


def _closed_form(step, initial, final, total, fraction):
    knee = (1.0 - fraction) * total
    if step <= knee:
        return initial
    if step >= total:
        return final
    p = (step - knee) / (fraction * total)
    return final + (initial - final) * 0.5 * (1.0 + math.cos(math.pi * p))


@pytest.mark.parametrize("final", [0.0, 1e-5])
def test_cosine_anneal_closed_form_values(final):
    schedule = CosineAnnealFinalFraction(4e-4, total_steps=300, final_learning_rate=final)
    assert schedule.knee == pytest.approx(200.0)
    expected = {
        0: 4e-4,  # start
        150: 4e-4,  # constant phase
        200: 4e-4,  # the knee
        225: final + (4e-4 - final) * (1 + math.cos(math.pi / 4)) / 2,
        250: final + (4e-4 - final) / 2,  # mid-cosine
        275: final + (4e-4 - final) * (1 + math.cos(3 * math.pi / 4)) / 2,
        300: final,  # end
        1000: final,  # past the end
    }
    for step, value in expected.items():
        got = schedule(step)
        assert got.dtype == tf.float32
        assert float(got) == pytest.approx(value, rel=1e-6, abs=1e-12), step
        assert float(got) == pytest.approx(_closed_form(step, 4e-4, final, 300, 1 / 3), rel=1e-6, abs=1e-12)


def test_cosine_anneal_non_integer_knee_and_custom_fraction():
    schedule = CosineAnnealFinalFraction(1.0, total_steps=100)  # knee at 66.67
    assert float(schedule(66)) == 1.0
    assert float(schedule(67)) < 1.0
    assert float(schedule(67)) == pytest.approx(_closed_form(67, 1.0, 0.0, 100, 1 / 3), rel=1e-6)

    half = CosineAnnealFinalFraction(2.0, total_steps=10, fraction=0.5, final_learning_rate=1.0)
    for step in range(12):
        assert float(half(step)) == pytest.approx(_closed_form(step, 2.0, 1.0, 10, 0.5), rel=1e-6)

    full = CosineAnnealFinalFraction(1.0, total_steps=10, fraction=1.0)  # plain cosine decay
    reference = keras.optimizers.schedules.CosineDecay(1.0, decay_steps=10)
    for step in range(12):
        assert float(full(step)) == pytest.approx(float(reference(step)), rel=1e-5, abs=1e-7)


def test_cosine_anneal_is_monotone_and_continuous():
    total = 3000
    schedule = CosineAnnealFinalFraction(4e-4, total_steps=total, final_learning_rate=1e-6)
    values = schedule(tf.range(total + 100)).numpy()
    assert values.shape == (total + 100,)
    diffs = np.diff(values.astype(np.float64))
    assert np.all(diffs <= 0.0)
    assert np.all(diffs[2000 : total - 1] < 0.0)  # strictly decreasing while annealing
    assert np.max(np.abs(diffs)) < 4e-4 * math.pi / (2 * 1000) * 1.01  # no jumps
    assert values[0] == np.float32(4e-4) and values[total] == np.float32(1e-6)


def test_cosine_anneal_accepts_int64_variable_steps_in_tf_function():
    schedule = CosineAnnealFinalFraction(4e-4, total_steps=300)
    step = tf.Variable(250, dtype=tf.int64)
    value = tf.function(lambda: schedule(step))()
    assert float(value) == pytest.approx(2e-4, rel=1e-6)


def test_cosine_anneal_serialization_round_trip():
    schedule = CosineAnnealFinalFraction(4e-4, total_steps=300, fraction=0.25, final_learning_rate=1e-6, name="lr")
    config = schedule.get_config()
    assert config == {
        "initial_learning_rate": 4e-4,
        "total_steps": 300,
        "fraction": 0.25,
        "final_learning_rate": 1e-6,
        "name": "lr",
    }
    clone = CosineAnnealFinalFraction.from_config(config)
    assert clone.get_config() == config

    serialized = keras.saving.serialize_keras_object(schedule)
    assert serialized["registered_name"] == "tfvq>CosineAnnealFinalFraction"
    restored = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(restored, CosineAnnealFinalFraction)
    assert restored.get_config() == config
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert isinstance(restored, CosineAnnealFinalFraction)
    for step in (0, 225, 260, 300):
        assert float(restored(step)) == float(schedule(step))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"initial_learning_rate": -1e-4}, ValueError, "initial_learning_rate"),
        ({"initial_learning_rate": float("inf")}, ValueError, "initial_learning_rate"),
        ({"initial_learning_rate": "4e-4"}, TypeError, "initial_learning_rate"),
        ({"total_steps": 0}, ValueError, "total_steps"),
        ({"total_steps": 300.0}, TypeError, "total_steps"),
        ({"total_steps": True}, TypeError, "total_steps"),
        ({"fraction": 0.0}, ValueError, "fraction"),
        ({"fraction": 1.5}, ValueError, "fraction"),
        ({"final_learning_rate": -1.0}, ValueError, "final_learning_rate"),
    ],
)
def test_cosine_anneal_bad_arguments(kwargs, error, match):
    arguments = {"initial_learning_rate": 4e-4, "total_steps": 300}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        CosineAnnealFinalFraction(**arguments)


def test_cosine_anneal_as_radam_learning_rate(tmp_path):
    total = 9  # knee at step 6
    schedule = CosineAnnealFinalFraction(0.05, total_steps=total)
    rng = np.random.default_rng(0)
    theta0 = rng.normal(size=(4,)).astype(np.float32)
    grads = rng.normal(size=(12, 4)).astype(np.float32)

    scheduled, constant = keras.Variable(theta0), keras.Variable(theta0)
    opt_scheduled = RAdam(learning_rate=schedule)
    opt_constant = RAdam(learning_rate=0.05)
    history = []
    for g in grads:
        # The base class evaluates schedule(iterations) before incrementing.
        assert float(opt_scheduled.learning_rate) == float(schedule(opt_scheduled.iterations))
        before = scheduled.numpy().copy()
        opt_scheduled.apply_gradients([(tf.constant(g), scheduled)])
        opt_constant.apply_gradients([(tf.constant(g), constant)])
        history.append((before, scheduled.numpy().copy(), constant.numpy().copy()))

    # Steps 1..7 use schedule(0..6) = initial (the knee is inclusive): identical.
    for _, s, c in history[:7]:
        np.testing.assert_array_equal(s, c)
    # Steps 8 and 9 use annealed rates: smaller moves than the constant rate.
    assert not np.allclose(history[7][1], history[7][2])
    # From step 10 on, iterations >= total_steps: learning rate 0, no movement.
    for before, after, _ in history[9:]:
        np.testing.assert_array_equal(before, after)

    # A model compiled with the scheduled optimizer survives a .keras round trip.
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=RAdam(learning_rate=CosineAnnealFinalFraction(1e-3, total_steps=30)), loss="mse")
    model.fit(rng.normal(size=(8, 4)), rng.normal(size=(8, 1)), batch_size=8, verbose=0)
    model.save(tmp_path / "scheduled.keras")
    loaded = keras.saving.load_model(tmp_path / "scheduled.keras")
    assert isinstance(loaded.optimizer._learning_rate, CosineAnnealFinalFraction)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()


# ---------------------------------------------------------------- ReduceOnPlateau (RRVQ-VAE App. C)


def test_reduce_on_plateau_follows_the_hand_worked_sequence():
    # The docstring's example: patience 2, factor 0.5, floor 0.1, starting at 1.0.
    plateau = ReduceOnPlateau(factor=0.5, patience=2, min_value=0.1)
    metrics = [5.0, 4.0, 4.0, 4.5, 4.0, 3.0, 3.5, 3.5, 3.5, 3.5, 3.5, 3.5, 3.5, 3.5]
    waits = [0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0]
    values = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.1, 0.1, 0.1]  # floored at 0.1
    bests = [5.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    value = 1.0
    for metric, wait, expected, best in zip(metrics, waits, values, bests):
        value = plateau.update(metric, value)
        assert value == pytest.approx(expected, abs=1e-12), (metric, value)
        assert int(plateau.wait.numpy()) == wait and float(plateau.best.numpy()) == best


def test_reduce_on_plateau_patience_one_reduces_at_every_non_improvement_and_nan_is_no_improvement():
    plateau = ReduceOnPlateau(factor=0.8, patience=1, min_value=5e-5)
    lr = 8e-4
    lr = plateau.update(3.0, lr)
    assert lr == 8e-4
    for k in range(1, 4):
        lr = plateau.update(float("nan") if k == 2 else 3.0, lr)
        assert lr == pytest.approx(8e-4 * 0.8**k, rel=1e-12)
    for _ in range(50):
        lr = plateau.update(3.0, lr)
    assert lr == 5e-5  # the paper's floor


def test_reduce_on_plateau_min_delta_and_tensor_inputs():
    plateau = ReduceOnPlateau(factor=0.5, patience=1, min_value=0.0, min_delta=0.1)
    variable = tf.Variable(1.0)
    variable.assign(plateau.update(tf.constant(2.0), variable))
    variable.assign(plateau.update(tf.constant(1.95), variable))  # improves by less than min_delta
    assert float(variable.numpy()) == 0.5
    variable.assign(plateau.update(1.8, variable))
    assert float(variable.numpy()) == 0.5 and float(plateau.best.numpy()) == pytest.approx(1.8)


def test_reduce_on_plateau_state_is_checkpointed_with_the_learning_rate(tmp_path):
    optimizer = keras.optimizers.Adamax(learning_rate=8e-4)
    optimizer.build([keras.Variable(np.zeros(3, np.float32))])
    plateau = ReduceOnPlateau(factor=0.8, patience=2, min_value=5e-5)
    for metric in (3.0, 3.1):
        optimizer.learning_rate = plateau.update(metric, optimizer.learning_rate)
    path = tf.train.Checkpoint(optimizer=optimizer, plateau=plateau).save(str(tmp_path / "ckpt"))
    optimizer2 = keras.optimizers.Adamax(learning_rate=8e-4)
    optimizer2.build([keras.Variable(np.zeros(3, np.float32))])
    restored = ReduceOnPlateau(factor=0.8, patience=2, min_value=5e-5)
    tf.train.Checkpoint(optimizer=optimizer2, plateau=restored).restore(path).assert_existing_objects_matched()
    assert float(restored.best.numpy()) == 3.0 and int(restored.wait.numpy()) == 1
    # The next non-improvement completes the plateau in the restored run, as it would have in the first.
    optimizer2.learning_rate = restored.update(3.2, optimizer2.learning_rate)
    assert float(optimizer2.learning_rate.numpy()) == pytest.approx(8e-4 * 0.8, rel=1e-6)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(factor=1.0), ValueError, "factor"),
        (dict(factor=0.0), ValueError, "factor"),
        (dict(patience=0), ValueError, "patience"),
        (dict(patience=2.0), TypeError, "patience"),
        (dict(patience=True), TypeError, "patience"),
        (dict(min_value=-1.0), ValueError, "min_value"),
        (dict(min_delta=-0.1), ValueError, "min_delta"),
        (dict(factor="0.8"), TypeError, "factor"),
    ],
)
def test_reduce_on_plateau_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ReduceOnPlateau(**kwargs)


def test_the_temperature_anneal_is_re_exported_beside_the_learning_rate_schedules():
    assert schedules.linear_anneal is anneal.linear_anneal
