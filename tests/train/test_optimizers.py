"""Tests for tfvq.train.optimizers.RAdam against a NumPy oracle of Algorithm 2
of Liu et al. (ICLR 2020), plus Keras / tf.distribute / checkpoint integration."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.train.optimizers import RAdam


def radam_oracle(theta0, grads, learning_rates, beta_1=0.9, beta_2=0.999, epsilon=1e-8, threshold=4.0):
    """Float64 NumPy RAdam (Liu et al. 2020, Algorithm 2, epsilon on v_hat).

    Returns:
      (list of theta after each step, list of booleans "step was rectified").
    """
    theta = np.asarray(theta0, np.float64).copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    rho_inf = 2.0 / (1.0 - beta_2) - 1.0
    thetas, rectified = [], []
    for t, (g, lr) in enumerate(zip(grads, learning_rates), start=1):
        g = np.asarray(g, np.float64)
        m = beta_1 * m + (1.0 - beta_1) * g
        v = beta_2 * v + (1.0 - beta_2) * g * g
        m_hat = m / (1.0 - beta_1**t)
        rho_t = rho_inf - 2.0 * t * beta_2**t / (1.0 - beta_2**t)
        if rho_t > threshold:
            r_t = math.sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
            v_hat = np.sqrt(v / (1.0 - beta_2**t))
            theta = theta - lr * r_t * m_hat / (v_hat + epsilon)
        else:
            theta = theta - lr * m_hat
        thetas.append(theta.copy())
        rectified.append(rho_t > threshold)
    return thetas, rectified


def _problem(seed=0, shape=(2, 3), steps=12, grad_scale=1.0):
    rng = np.random.default_rng(seed)
    # Keep |theta| away from zero so a relative tolerance is meaningful.
    theta0 = (rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)).astype(np.float32)
    grads = (grad_scale * rng.normal(size=(steps,) + shape)).astype(np.float32)
    return theta0, grads


def _run(optimizer, theta0, grads, mode):
    var = keras.Variable(theta0)
    optimizer.build([var])

    def step(g):
        optimizer.apply_gradients([(g, var)])

    if mode == "function":
        step = tf.function(step)
    values = []
    for g in grads:
        step(tf.constant(g))
        values.append(var.numpy().copy())
    return values


@pytest.mark.parametrize("mode", ["eager", "function"])
@pytest.mark.parametrize(
    "threshold, epsilon, grad_scale",
    [(4.0, 1e-8, 1.0), (5.0, 1e-8, 1.0), (4.0, 0.05, 0.1)],
    ids=["paper-threshold-4", "reference-threshold-5", "large-epsilon"],
)
def test_matches_numpy_oracle(mode, threshold, epsilon, grad_scale):
    theta0, grads = _problem(seed=1, grad_scale=grad_scale)
    lr = 1e-2
    expected, rectified = radam_oracle(theta0, grads, [lr] * len(grads), epsilon=epsilon, threshold=threshold)
    # The run covers both branches: un-rectified early steps, rectified later.
    first = 5 if threshold == 4.0 else 6
    assert rectified == [t >= first for t in range(1, len(grads) + 1)]

    opt = RAdam(learning_rate=lr, epsilon=epsilon, rectify_threshold=threshold)
    got = _run(opt, theta0, grads, mode)
    for step, (g, e) in enumerate(zip(got, expected), start=1):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=0, err_msg=f"step {step}")
    assert int(opt.iterations.numpy()) == len(grads)


def test_oracle_discriminates_thresholds_and_epsilon_placement():
    """The tolerances above are tight enough to tell the variants apart."""
    theta0, grads = _problem(seed=1)
    lrs = [1e-2] * len(grads)
    at_4, _ = radam_oracle(theta0, grads, lrs, threshold=4.0)
    at_5, _ = radam_oracle(theta0, grads, lrs, threshold=5.0)
    np.testing.assert_allclose(at_4[3], at_5[3], rtol=1e-12)  # steps 1-4 agree
    assert np.max(np.abs(at_4[4] / at_5[4] - 1.0)) > 1e-4  # step 5 differs

    theta0, grads = _problem(seed=1, grad_scale=0.1)
    ours, _ = radam_oracle(theta0, grads, lrs, epsilon=0.05)
    # Epsilon on the uncorrected sqrt(v_t) (Keras Adam style) == epsilon * sqrt(1 - b2^t)
    # on v_hat; it must give visibly different values.
    t = 5
    eps_uncorrected = 0.05 / math.sqrt(1.0 - 0.999**t)
    other, _ = radam_oracle(theta0, grads[:t], lrs[:t], epsilon=eps_uncorrected)
    assert np.max(np.abs(ours[t - 1] / other[t - 1] - 1.0)) > 1e-4


def test_learning_rate_schedule_is_honoured():
    theta0, grads = _problem(seed=2)
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([3, 7], [1e-2, 3e-3, 5e-4])
    # Step t (1-based) uses schedule(iterations) = schedule(t - 1).
    lrs = [float(schedule(t - 1)) for t in range(1, len(grads) + 1)]
    assert len(set(lrs)) == 3
    expected, _ = radam_oracle(theta0, grads, lrs)
    opt = RAdam(learning_rate=schedule)
    got = _run(opt, theta0, grads, "function")
    for step, (g, e) in enumerate(zip(got, expected), start=1):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=0, err_msg=f"step {step}")


@pytest.mark.parametrize("mode", ["eager", "function"])
def test_indexed_slices_gradients_match_dense(mode):
    rng = np.random.default_rng(3)
    table0 = rng.normal(size=(6, 3)).astype(np.float32)
    weights = [rng.normal(size=(3, 3)).astype(np.float32) for _ in range(8)]
    indices = tf.constant([0, 2, 2])

    sparse_var, dense_var = keras.Variable(table0), keras.Variable(table0)
    sparse_opt, dense_opt = RAdam(learning_rate=1e-2), RAdam(learning_rate=1e-2)
    sparse_opt.build([sparse_var])
    dense_opt.build([dense_var])

    def step(w):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(sparse_var, indices) * w)
        grad = tape.gradient(loss, sparse_var)
        assert isinstance(grad, tf.IndexedSlices)
        sparse_opt.apply_gradients([(grad, sparse_var)])
        dense_opt.apply_gradients([(tf.convert_to_tensor(grad), dense_var)])

    if mode == "function":
        step = tf.function(step)
    for w in weights:
        step(tf.constant(w))
        np.testing.assert_allclose(sparse_var.numpy(), dense_var.numpy(), rtol=1e-7, atol=0)
    # Rows never gathered have zero gradient and zero moments: unchanged.
    np.testing.assert_array_equal(sparse_var.numpy()[[1, 3, 4, 5]], table0[[1, 3, 4, 5]])
    assert not np.allclose(sparse_var.numpy()[[0, 2]], table0[[0, 2]])


def test_get_config_from_config_round_trip():
    opt = RAdam(
        learning_rate=1e-3,
        beta_1=0.8,
        beta_2=0.99,
        epsilon=1e-6,
        rectify_threshold=5.0,
        weight_decay=0.01,
        clipnorm=1.0,
        name="my_radam",
    )
    config = opt.get_config()
    assert config["beta_1"] == 0.8 and config["beta_2"] == 0.99
    assert config["epsilon"] == 1e-6 and config["rectify_threshold"] == 5.0
    assert config["weight_decay"] == 0.01 and config["clipnorm"] == 1.0
    assert config["name"] == "my_radam"
    clone = RAdam.from_config(config)
    assert isinstance(clone, RAdam)
    assert clone.get_config() == config

    restored = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(restored, RAdam)
    assert restored.get_config() == config


def test_config_round_trip_with_schedule():
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=100)
    opt = RAdam(learning_rate=schedule)
    clone = RAdam.from_config(opt.get_config())
    assert isinstance(clone._learning_rate, keras.optimizers.schedules.CosineDecay)
    assert clone.get_config() == opt.get_config()


def test_defaults_follow_hqa_and_paper():
    opt = RAdam()
    assert opt.learning_rate.numpy() == pytest.approx(4e-4)
    assert (opt.beta_1, opt.beta_2, opt.epsilon, opt.rectify_threshold) == (0.9, 0.999, 1e-8, 4.0)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"beta_1": 1.0}, ValueError),
        ({"beta_1": -0.1}, ValueError),
        ({"beta_2": 1.0}, ValueError),
        ({"beta_2": float("nan")}, ValueError),
        ({"epsilon": -1e-8}, ValueError),
        ({"rectify_threshold": 3.9}, ValueError),
        ({"beta_1": "0.9"}, TypeError),
        ({"rectify_threshold": True}, TypeError),
    ],
)
def test_bad_arguments_raise(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        RAdam(**kwargs)


def test_small_beta_2_never_rectifies_and_stays_finite():
    # rho_inf = 2 / (1 - 0.5) - 1 = 3 <= 4: always SGD with bias-corrected momentum.
    theta0, grads = _problem(seed=4, steps=6)
    expected, rectified = radam_oracle(theta0, grads, [1e-2] * 6, beta_2=0.5)
    assert not any(rectified)
    got = _run(RAdam(learning_rate=1e-2, beta_2=0.5), theta0, grads, "eager")
    np.testing.assert_allclose(got[-1], expected[-1], rtol=1e-6)


def test_weight_decay_kwarg_reaches_base_class():
    var = keras.Variable(np.full((3,), 2.0, np.float32))
    opt = RAdam(learning_rate=0.1, weight_decay=0.5)
    opt.apply_gradients([(tf.zeros((3,)), var)])
    # Zero gradient: zero RAdam step; decoupled decay var -= lr * wd * var.
    np.testing.assert_allclose(var.numpy(), 2.0 * (1.0 - 0.1 * 0.5), rtol=1e-6)


def _tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])


def _regression_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    w = np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)
    y = x @ w + 0.7
    return x, y


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_model_fit_decreases_loss_on_linear_regression(jit_compile):
    x, y = _regression_data()
    model = _tiny_model()
    model.compile(optimizer=RAdam(learning_rate=0.1), loss="mse", jit_compile=jit_compile)
    history = model.fit(x, y, batch_size=32, epochs=10, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.05 * losses[0], losses
    assert int(model.optimizer.iterations.numpy()) == 10 * 8


def test_keras_file_round_trip(tmp_path):
    x, y = _regression_data(n=16)
    model = _tiny_model()
    model.compile(optimizer=RAdam(learning_rate=1e-2, beta_1=0.85, rectify_threshold=5.0), loss="mse")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = tmp_path / "tiny.keras"
    model.save(path)

    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.optimizer, RAdam)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert int(loaded.optimizer.iterations.numpy()) == 1
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    # Both continue identically (slots and step count were restored).
    for m in (model, loaded):  # 5 more steps in one epoch (crosses step 5)
        m.fit(np.tile(x, (5, 1)), np.tile(y, (5, 1)), batch_size=16, epochs=1, verbose=0, shuffle=False)
        assert int(m.optimizer.iterations.numpy()) == 6
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("build_before_restore", [True, False])
def test_checkpoint_restore_continues_identically(tmp_path, build_before_restore):
    theta0, grads = _problem(seed=5, steps=10)

    var_a = keras.Variable(theta0)
    opt_a = RAdam(learning_rate=1e-2)
    for g in grads[:4]:
        opt_a.apply_gradients([(tf.constant(g), var_a)])
    path = tf.train.Checkpoint(optimizer=opt_a, var=var_a).save(str(tmp_path / "ckpt"))
    for g in grads[4:]:  # crosses the rectification onset (step 5)
        opt_a.apply_gradients([(tf.constant(g), var_a)])

    var_b = keras.Variable(np.zeros_like(theta0))
    opt_b = RAdam(learning_rate=1e-2)
    if build_before_restore:
        opt_b.build([var_b])
    tf.train.Checkpoint(optimizer=opt_b, var=var_b).restore(path)
    if not build_before_restore:
        opt_b.build([var_b])
    assert int(opt_b.iterations.numpy()) == 4
    for g in grads[4:]:
        opt_b.apply_gradients([(tf.constant(g), var_b)])

    np.testing.assert_array_equal(var_b.numpy(), var_a.numpy())
    for a, b in zip(opt_a.variables, opt_b.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_mirrored_strategy_matches_single_device(mirrored_strategy):
    strategy = mirrored_strategy
    rng = np.random.default_rng(6)
    steps, global_batch = 7, 8
    w0 = rng.normal(size=(3, 1)).astype(np.float32)
    x = rng.normal(size=(steps * global_batch, 3)).astype(np.float32)
    y = rng.normal(size=(steps * global_batch, 1)).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(global_batch)

    # Single device reference: mean loss over the global batch.
    w_single = keras.Variable(w0)
    opt_single = RAdam(learning_rate=1e-2)
    singles = []
    for xb, yb in dataset:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(xb @ w_single - yb))
        opt_single.apply_gradients([(tape.gradient(loss, w_single), w_single)])
        singles.append(w_single.numpy().copy())

    with strategy.scope():
        w_dist = keras.Variable(w0)
        opt_dist = RAdam(learning_rate=1e-2)
        opt_dist.build([w_dist])

    def replica_step(xb, yb):
        with tf.GradientTape() as tape:
            per_example = tf.reduce_mean(tf.square(xb @ w_dist - yb), axis=-1)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        opt_dist.apply_gradients([(tape.gradient(loss, w_dist), w_dist)])

    @tf.function
    def train_step(batch):
        strategy.run(replica_step, args=batch)

    for step, batch in enumerate(strategy.experimental_distribute_dataset(dataset)):
        train_step(batch)
        for local in strategy.experimental_local_results(w_dist.value):
            np.testing.assert_allclose(local.numpy(), singles[step], rtol=1e-5, atol=1e-6, err_msg=f"step {step}")
    assert int(opt_dist.iterations.numpy()) == steps
