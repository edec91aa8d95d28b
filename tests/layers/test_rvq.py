"""ResidualVectorQuantizer against a NumPy oracle of SoundStream's Algorithm 1 and quantizer dropout (§3.3)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers import ResidualVectorQuantizer
from tfvq.layers.precision import precision_scope

RNG = np.random.default_rng(5)


def codebooks_of(rvq):
    return [stage.codebook.numpy().astype(np.float64) for stage in rvq.stages]


def np_rvq(z, codebooks, beta=0.25, depths=None):
    """SoundStream Algorithm 1 with optional per-row depths: (sum, codes [N, k], loss, residuals, perplexities)."""
    flat = z.reshape(-1, z.shape[-1]).astype(np.float64)
    depths = np.full(len(flat), len(codebooks)) if depths is None else depths
    residual, total = flat.copy(), np.zeros_like(flat)
    codes, residuals, loss, perplexities = [], [], 0.0, []
    for i, e in enumerate(codebooks):
        active = depths > i
        c = ((residual[:, None] - e[None]) ** 2).sum(-1).argmin(-1)
        q = np.where(active[:, None], e[c], 0.0)
        if active.any():
            loss += (1 + beta) * ((residual[active] - q[active]) ** 2).mean()  # HQA eq. 2 per stage
            p = np.bincount(c[active], minlength=len(e)) / active.sum()
            p = p[p > 0]
            perplexities.append(np.exp(-(p * np.log(p)).sum()))
        else:
            perplexities.append(1.0)
        residuals.append(residual.copy())
        codes.append(np.where(active, c, -1))
        total += q
        residual -= q
    return total, np.stack(codes, -1), loss, residuals, np.array(perplexities)


def test_residual_chain_matches_numpy_oracle_of_algorithm_1(built):
    rvq = built(ResidualVectorQuantizer(3, 6, 4, seed=1))
    for stage, scale in zip(rvq.stages, (1.0, 0.5, 0.25)):
        stage.codebook.assign(RNG.normal(size=(6, 4)) * scale)
    z = RNG.normal(size=(2, 5, 4)).astype(np.float32)
    out = rvq(z, training=False)
    total, codes, loss, _, perplexities = np_rvq(z, codebooks_of(rvq))
    np.testing.assert_array_equal(out["codes"].numpy().reshape(-1, 3), codes)
    np.testing.assert_allclose(out["quantized"].numpy().reshape(-1, 4), total, rtol=1e-5, atol=1e-6)
    assert out["loss"].numpy() == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(out["perplexities"].numpy(), perplexities, rtol=1e-5)
    assert out["perplexity"].numpy() == pytest.approx(perplexities.mean(), rel=1e-5)
    assert out["codes"].shape == (2, 5, 3) and out["codes"].dtype == tf.int32


def test_lookup_sums_the_stages_and_equals_quantized_at_every_depth(built):
    rvq = built(ResidualVectorQuantizer(3, 8, 4, seed=2))
    z = RNG.normal(size=(3, 2, 4)).astype(np.float32)
    for k in (1, 2, 3):
        out = rvq(z, num_quantizers=k)
        assert out["codes"].shape == (3, 2, k)
        np.testing.assert_array_equal(rvq.lookup(out["codes"]).numpy(), out["quantized"].numpy())
    want = sum(codebooks_of(rvq)[i][out["codes"].numpy()[..., i]] for i in range(3))
    np.testing.assert_allclose(rvq.lookup(out["codes"]).numpy(), want, rtol=1e-6, atol=1e-6)


def test_reconstruction_error_falls_with_depth_once_the_codebooks_have_learned(built):
    rvq = built(ResidualVectorQuantizer(3, 16, 4, ema=True, decay=0.5, seed=0))
    x = RNG.normal(size=(256, 4)).astype(np.float32)
    step = tf.function(lambda v: rvq(v, training=True)["loss"])
    for _ in range(12):
        step(x)
    errors = [np.mean((rvq(x, num_quantizers=k)["quantized"].numpy() - x) ** 2) for k in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.5 * errors[0]


def test_quantizer_dropout_draws_one_depth_per_example_in_training_only(built):
    rvq = built(ResidualVectorQuantizer(3, 8, 2, dropout=True, seed=3))
    z = RNG.normal(size=(48, 5, 2)).astype(np.float32)
    out = rvq(z, training=True)
    codes = out["codes"].numpy()
    used = codes >= 0
    depth = used.sum(-1)
    assert (depth == depth[:, :1]).all()  # all positions of an example share its depth
    assert (used[..., 1:] <= used[..., :-1]).all()  # the first n_q stages, then -1
    assert set(depth[:, 0]) == {1, 2, 3}
    np.testing.assert_array_equal(rvq.lookup(out["codes"]).numpy(), out["quantized"].numpy())
    # The loss and usage are over the examples that reach each stage.
    total, want_codes, loss, _, perplexities = np_rvq(z, codebooks_of(rvq), depths=depth.reshape(-1))
    np.testing.assert_array_equal(codes.reshape(-1, 3), want_codes)
    np.testing.assert_allclose(out["quantized"].numpy().reshape(-1, 2), total, rtol=1e-5, atol=1e-6)
    assert out["loss"].numpy() == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(out["perplexities"].numpy(), perplexities, rtol=1e-5)
    # Lower rates in training draw from 1..k; inference uses every stage; the seed reproduces the draw.
    assert set((rvq(z, training=True, num_quantizers=2)["codes"].numpy() >= 0).sum(-1).ravel()) == {1, 2}
    assert (rvq(z, training=False)["codes"].numpy() >= 0).all()
    again = built(ResidualVectorQuantizer(3, 8, 2, dropout=True, seed=3))
    np.testing.assert_array_equal((again(z, training=True)["codes"].numpy() >= 0).sum(-1), depth)


def test_dropout_ema_updates_a_stage_only_with_the_examples_that_reach_it(built):
    rvq = built(ResidualVectorQuantizer(3, 8, 2, ema=True, dropout=True, decay=0.9, seed=4))
    out = rvq(RNG.normal(size=(32, 3, 2)).astype(np.float32), training=True)
    reached = (out["codes"].numpy() >= 0).reshape(-1, 3).sum(0)
    assert reached[0] == 96 and reached[0] > reached[1] > reached[2] > 0
    for stage, n in zip(rvq.stages, reached):
        # After one step the hidden cluster sizes are (1 - decay) times the counts of that stage's rows.
        assert stage.ema_cluster_size_hidden.numpy().sum() == pytest.approx(0.1 * n, rel=1e-5)


def test_output_gradient_is_straight_through_and_every_stage_commitment_reaches_the_input(built):
    beta = 0.25
    rvq = built(ResidualVectorQuantizer(3, 6, 3, commitment_cost=beta, seed=6))
    z = tf.Variable(RNG.normal(size=(10, 3)).astype(np.float32))
    w = RNG.normal(size=(10, 3)).astype(np.float32)
    with tf.GradientTape(persistent=True) as tape:
        out = rvq(z, training=True)
        y = tf.reduce_sum(out["quantized"] * w)
        loss = out["loss"]
    np.testing.assert_allclose(tape.gradient(y, z).numpy(), w)
    for stage in rvq.stages:
        g = tape.gradient(y, stage.codebook)
        assert g is None or not np.any(tf.convert_to_tensor(g).numpy())
    books = codebooks_of(rvq)
    _, codes, _, residuals, _ = np_rvq(z.numpy(), books, beta)
    size = z.numpy().size
    # d loss / dz: every stage's commitment term, beta * 2/(N D) (r_i - q_i), since d r_i / dz = I.
    want = sum(beta * 2.0 / size * (r - e[c]) for r, e, c in zip(residuals, books, codes.T))
    np.testing.assert_allclose(tape.gradient(loss, z).numpy(), want, rtol=1e-4, atol=1e-7)
    # d loss / d codebook_i: stage i's own codebook loss only, 2/(N D) sum over its rows of (e_k - r_i).
    for stage, e, c, r in zip(rvq.stages, books, codes.T, residuals):
        want_e = np.zeros_like(e)
        np.add.at(want_e, c, 2.0 / size * (e[c] - r))
        got = tf.convert_to_tensor(tape.gradient(loss, stage.codebook)).numpy()
        np.testing.assert_allclose(got, want_e, rtol=1e-4, atol=1e-7)


def test_bad_arguments_raise_errors_naming_what_was_expected(built):
    with pytest.raises(ValueError, match="num_quantizers must be an integer >= 1"):
        ResidualVectorQuantizer(0, 8, 4)
    rvq = built(ResidualVectorQuantizer(3, 8, 4))
    for k in (0, 4, 2.0):
        with pytest.raises(ValueError, match=r"num_quantizers must be a Python int in \[1, 3\]"):
            rvq(tf.zeros([2, 4]), num_quantizers=k)
    with pytest.raises(ValueError, match="code_dim=4"):
        rvq(tf.zeros([2, 5]))
    with pytest.raises(TypeError, match="floating-point"):
        rvq(tf.zeros([2, 4], tf.int32))
    with pytest.raises(ValueError, match="1..3 stages"):
        rvq.lookup(tf.zeros([2, 4], tf.int32))
    with pytest.raises(TypeError, match="integers"):
        rvq.lookup(tf.zeros([2, 2]))


def test_config_and_keras_file_round_trip_give_identical_outputs(keras_round_trip):
    rvq = ResidualVectorQuantizer(3, 8, 4, ema=True, dropout=True, decay=0.9, expire_codes_below=0.5, seed=7)
    assert ResidualVectorQuantizer.from_config(rvq.get_config()).get_config() == rvq.get_config()
    inputs = keras.Input((3, 4))
    out = rvq(inputs, training=False)
    model = keras.Model(inputs, {"quantized": out["quantized"], "codes": out["codes"]})
    for stage in rvq.stages:
        stage.codebook.assign(RNG.normal(size=(8, 4)))
    keras_round_trip(model, rvq, RNG.normal(size=(2, 3, 4)).astype(np.float32))


def test_mixed_bfloat16_codes_equal_float32_codes_for_well_separated_inputs(built):
    # Stage i's codes are 8 corners of a cube of half-side s_i, with s = 1, 0.2, 0.04: each stage's
    # decision margin (s_i) exceeds what the later stages add, so every stage's code is unambiguous.
    corners = np.array([[1 if (k >> j) & 1 else -1 for j in range(4)] for k in range(8)], np.float32)
    scales = (1.0, 0.2, 0.04)
    with precision_scope("mixed_bfloat16"):
        mixed = built(ResidualVectorQuantizer(3, 8, 4))
    full = built(ResidualVectorQuantizer(3, 8, 4))
    for layer in (mixed, full):
        for stage, s in zip(layer.stages, scales):
            stage.codebook.assign(corners * s)
    want = RNG.integers(0, 8, size=(20, 3))
    z = sum(corners[want[:, i]] * s for i, s in enumerate(scales)) + RNG.normal(size=(20, 4)) * 1e-3
    a, b = mixed(z.astype(np.float32)), full(z.astype(np.float32))
    assert a["quantized"].dtype == tf.bfloat16 and a["codes"].dtype == tf.int32
    np.testing.assert_array_equal(a["codes"].numpy(), want)
    np.testing.assert_array_equal(b["codes"].numpy(), want)
    np.testing.assert_array_equal(mixed.lookup(a["codes"]).numpy(), a["quantized"].numpy())


def test_empty_batch_in_training_with_dropout_gives_empty_outputs_and_finite_scalars():
    rvq = ResidualVectorQuantizer(3, 8, 4, ema=True, dropout=True, seed=8)
    out = rvq(tf.zeros([0, 2, 4]), training=True)
    assert out["quantized"].shape == (0, 2, 4) and out["codes"].shape == (0, 2, 3)
    assert np.isfinite(out["loss"].numpy()) and np.isfinite(out["perplexities"].numpy()).all()


def test_mirrored_dropout_and_ema_keep_every_stage_identical_on_both_replicas(mirrored_strategy, built):
    strategy = mirrored_strategy
    halves = [RNG.normal(size=(16, 3, 2)).astype(np.float32), (RNG.normal(size=(16, 3, 2)) + 1).astype(np.float32)]
    with strategy.scope():
        rvq = built(ResidualVectorQuantizer(3, 8, 2, ema=True, dropout=True, decay=0.9, seed=9))
    values = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(halves[ctx.replica_id_in_sync_group])
    )
    codes = tf.function(lambda x: strategy.run(lambda z: rvq(z, training=True)["codes"], args=(x,)))(values)
    depths = [(c.numpy() >= 0).sum(-1)[:, 0] for c in strategy.experimental_local_results(codes)]
    assert not np.array_equal(depths[0], depths[1])  # the replicas draw different depths
    for i, stage in enumerate(rvq.stages):
        a, b = [np.asarray(v) for v in strategy.experimental_local_results(stage.codebook.value)]
        np.testing.assert_array_equal(a, b)
        reached = sum((c.numpy()[..., i] >= 0).sum() for c in strategy.experimental_local_results(codes))
        # EMA statistics are summed over replicas: (1 - decay) times the rows of both replicas that reached stage i.
        cs = [np.asarray(v) for v in strategy.experimental_local_results(stage.ema_cluster_size_hidden.value)]
        assert cs[0].sum() == pytest.approx(0.1 * reached, rel=1e-5)
        np.testing.assert_array_equal(cs[0], cs[1])
