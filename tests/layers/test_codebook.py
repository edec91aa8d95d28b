"""The shared base `CodebookQuantizer` (`tfvq.layers.codebook`), through its three subclasses: the output
contract, the input and code checks, saving, and dead-code reset by HQA's rule (App. C.4) and by expiry."""

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


def deterministic_call(layer, z):
    if isinstance(layer, VectorQuantizer):
        return layer(z, training=False)
    return layer(z, training=False, stochastic=False)


# ------------------------------------------------------------ the contract
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
def test_lookup_returns_codebook_rows(make, built):
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
def test_tf_function_matches_eager(make, built):
    layer = built(make(seed=3))
    z = tf.constant(RNG.normal(size=(6, 4)), tf.float32)
    eager = deterministic_call(layer, z)
    graph = tf.function(lambda x: deterministic_call(layer, x))(z)
    for key in ("quantized", "codes", "loss"):
        np.testing.assert_allclose(graph[key].numpy(), eager[key].numpy(), rtol=1e-6)


@pytest.mark.parametrize("make", ALL_LAYERS, ids=LAYER_IDS)
def test_keras_file_round_trip_gives_equal_outputs(make, keras_round_trip):
    layer = make(seed=5)
    inputs = keras.Input((3, 3, 4))
    out = deterministic_call(layer, inputs)
    model = keras.Model(inputs, {"quantized": out["quantized"], "codes": out["codes"]})
    if isinstance(layer, RelaxedResponsibilityQuantizer):
        layer.log_variances.assign(RNG.uniform(-1, 1, size=(8, 4)))
    if not isinstance(layer, VectorQuantizer):
        layer.temperature.assign(0.3)
    keras_round_trip(model, layer, RNG.normal(size=(2, 3, 3, 4)).astype(np.float32), rtol=1e-6)


@pytest.mark.parametrize("make", ALL_LAYERS, ids=LAYER_IDS)
def test_float64_inputs_are_supported(make):
    layer = make(dtype="float64")
    out = layer(tf.constant(RNG.normal(size=(5, 4))), training=True)
    assert out["quantized"].dtype == tf.float64


# ------------------------------------------------- HQA's rule (App. C.4)
def test_dead_code_is_moved_next_to_most_used_code_after_the_window(built):
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


def test_code_reset_leaves_codes_alone_when_usage_is_above_threshold_or_disabled(built):
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


def test_mirrored_code_reset_uses_global_usage_and_moves_the_same_code_on_both_replicas(
    mirrored_strategy, built, train_on_replicas, value_on_replicas
):
    start = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [-10.0, 0.0]], np.float32)
    # Replica 0 mostly uses code 0, replica 1 uses code 1 more; globally code 1 is the most used.
    halves = [
        np.concatenate([np.zeros((6, 2)), np.tile([[0.0, 10.0]], (2, 1))]).astype(np.float32),
        np.tile([[10.0, 0.0]], (8, 1)).astype(np.float32),
    ]
    with mirrored_strategy.scope():
        svq = built(StochasticVectorQuantizer(4, 2, temperature=0.01, reset_window=1, seed=4), 2)
    svq.codebook.assign(start)
    train_on_replicas(svq, halves)
    a = value_on_replicas(svq.codebook)
    np.testing.assert_array_equal(a[:3], start[:3])
    assert np.linalg.norm(a[3] - start[1]) < 0.1  # next to the globally most used code 1, not code 0


# ---------------------------------------------------------------- expiry
def assert_rows_of(vectors, batch):
    for v in vectors:
        assert np.any(np.all(batch == v, axis=-1)), f"{v} is not a row of the batch"


def test_codes_used_less_than_the_threshold_take_distinct_random_batch_vectors_after_the_window(built):
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


def test_expiry_spares_codes_above_the_threshold_and_stops_when_disabled(built):
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


def test_expiry_replaces_hqa_rule_in_a_stochastic_quantizer_too(built):
    svq = built(StochasticVectorQuantizer(3, 2, temperature=0.01, expire_codes_below=1.0, reset_window=1, seed=3))
    svq.codebook.assign([[0.0, 0.0], [10.0, 0.0], [50.0, 50.0]])
    z = np.concatenate([RNG.normal(size=(5, 2)) * 0.01, [10.0, 0.0] + RNG.normal(size=(5, 2)) * 0.01])
    svq(z.astype(np.float32), training=True)
    assert_rows_of(svq.codebook.numpy()[2:], z.astype(np.float32))  # a batch row, not the most used code + noise


def test_mirrored_expiry_moves_the_same_codes_to_the_same_global_batch_rows(
    mirrored_strategy, built, train_on_replicas, value_on_replicas
):
    start = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [50.0, 50.0], [-50.0, 50.0]], np.float32)
    halves = [
        (RNG.normal(size=(8, 2)) * 0.01).astype(np.float32),
        ([10.0, 0.0] + RNG.normal(size=(8, 2)) * 0.01).astype(np.float32),
    ]
    with mirrored_strategy.scope():
        vq = built(VectorQuantizer(5, 2, expire_codes_below=1.0, reset_window=1, seed=4), 2)
    vq.codebook.assign(start)
    train_on_replicas(vq, halves)
    a = value_on_replicas(vq.codebook)
    np.testing.assert_array_equal(a[:2], start[:2])
    assert_rows_of(a[2:], np.concatenate(halves))
    assert len({tuple(row) for row in a[2:]}) == 3


def test_a_negative_expiry_threshold_is_refused():
    with pytest.raises(ValueError, match="expire_codes_below"):
        VectorQuantizer(4, 2, expire_codes_below=-1.0)


# ------------------------------------------------ k-means initialisation
def four_clusters(per=6, spread=0.01):
    means = np.array([[5.0, 0.0, 0.0, 0.0], [0.0, 5.0, 0.0, 0.0], [0.0, 0.0, 5.0, 0.0], [0.0, 0.0, 0.0, 5.0]])
    points = (means[:, None] + RNG.normal(size=(4, per, 4)) * spread).reshape(-1, 4).astype(np.float32)
    return means, points


def owners(codebook, means):
    return sorted(((codebook[:, None] - means[None]) ** 2).sum(-1).argmin(-1).tolist())


@pytest.mark.parametrize("make", ALL_LAYERS, ids=LAYER_IDS)
def test_kmeans_init_fits_the_codebook_to_the_first_training_batch_once(make, built):
    layer = built(make(codebook_init="kmeans", kmeans_iterations=3, seed=7))
    layer_4 = type(layer).from_config(dict(layer.get_config(), num_codes=4))
    layer_4.build((None, 4))
    means, points = four_clusters()
    start = layer_4.codebook.numpy().copy()
    layer_4(points, training=False)  # inference does not fit
    np.testing.assert_array_equal(layer_4.codebook.numpy(), start)
    layer_4(points, training=True)
    fitted = layer_4.codebook.numpy()
    assert bool(layer_4.codebook_initialized.numpy()) and owners(fitted, means) == [0, 1, 2, 3]
    # Lloyd steps end at the cluster means (and an EMA codebook, restarted from them, averages the same points).
    np.testing.assert_allclose(np.sort(fitted, 0), np.sort(means, 0), atol=0.02)
    if not getattr(layer_4, "ema", False):  # a later batch does not refit (an EMA codebook moves by its EMA)
        layer_4(points[::-1] + 1.0, training=True)
        np.testing.assert_array_equal(layer_4.codebook.numpy(), fitted)


def test_kmeans_plus_plus_seeds_are_batch_vectors_and_a_loaded_layer_is_not_refitted(keras_round_trip, tmp_path):
    vq = VectorQuantizer(4, 4, codebook_init="kmeans++", seed=8, name="vq_kmeans")
    _, points = four_clusters()
    inputs = keras.Input((4,))
    model = keras.Model(inputs, vq(inputs))
    vq(points, training=True)
    fitted = vq.codebook.numpy()
    assert all(np.any(np.all(points == code, axis=-1)) for code in fitted)
    keras_round_trip(model, vq, points)
    loaded = keras.saving.load_model(tmp_path / "vq_kmeans.keras").get_layer("vq_kmeans")
    assert loaded.codebook_init == "kmeans++" and bool(loaded.codebook_initialized.numpy())
    loaded(points * 3.0, training=True)
    np.testing.assert_array_equal(loaded.codebook.numpy(), fitted)
    with pytest.raises(ValueError, match="codebook_init must be one of"):
        VectorQuantizer(4, 4, codebook_init="pca")


def test_mirrored_kmeans_init_fits_one_codebook_to_the_global_batch(mirrored_strategy, built, on_replicas,
                                                                      value_on_replicas):
    means, points = four_clusters()
    halves = [points[:12], points[12:]]  # clusters 0-1 on replica 0, 2-3 on replica 1
    with mirrored_strategy.scope():
        vq = built(VectorQuantizer(4, 4, codebook_init="kmeans", kmeans_iterations=2, seed=9))
    on_replicas(lambda z: vq(z, training=True)["loss"], halves)
    assert owners(value_on_replicas(vq.codebook), means) == [0, 1, 2, 3]


# ----------------------------------------------- orthogonal regularisation
def np_orthogonality(codebook):
    c = codebook / np.linalg.norm(codebook, axis=-1, keepdims=True)
    return ((c @ c.T - np.eye(len(c))) ** 2).mean()


@pytest.mark.parametrize("make", [ALL_LAYERS[0], ALL_LAYERS[2], ALL_LAYERS[3]], ids=["vq", "stochastic", "rrvq"])
def test_orthogonal_regulariser_adds_its_weight_times_the_penalty_to_the_loss(make, built):
    plain, reg = built(make(seed=10)), built(make(seed=10, orthogonal_weight=0.5))
    z = RNG.normal(size=(6, 4)).astype(np.float32)
    a = deterministic_call(plain, z)["loss"].numpy()
    b = deterministic_call(reg, z)["loss"].numpy()
    assert b - a == pytest.approx(0.5 * np_orthogonality(reg.codebook.numpy().astype(np.float64)), rel=1e-4)


def test_orthogonal_penalty_gradient_pushes_codes_apart_in_angle(built):
    vq = built(VectorQuantizer(3, 3, orthogonal_weight=1.0, seed=11))
    vq.codebook.assign([[1.0, 0.1, 0.0], [1.0, -0.1, 0.0], [0.0, 0.0, 2.0]])
    optimizer = keras.optimizers.SGD(0.5)
    z = np.zeros((0, 3), np.float32)  # no data: the penalty alone
    before = np_orthogonality(vq.codebook.numpy())
    for _ in range(20):
        with tf.GradientTape() as tape:
            loss = vq(z, training=True)["loss"]
        optimizer.apply_gradients([(tape.gradient(loss, vq.codebook), vq.codebook)])
    assert np_orthogonality(vq.codebook.numpy()) < 0.1 * before
    with pytest.raises(ValueError, match="EMA codebook"):
        VectorQuantizer(4, 2, ema=True, orthogonal_weight=0.1)
