"""LookupFreeQuantizer against a NumPy oracle of MAGVIT-v2 §3.1 (sign, binary codes, entropy penalty)."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers import LookupFreeQuantizer
from tfvq.layers.precision import precision_scope

RNG = np.random.default_rng(11)


def np_binary_entropy(p):
    return -(p * np.log(p) + (1 - p) * np.log1p(-p))


def np_soft_assignment(flat, temperature=1.0):
    """q(k | z) = softmax_k(-||z - c_k||^2 / T) over the explicit codebook {-1, +1}^d, code k's bit i = channel i."""
    d = flat.shape[-1]
    codebook = np.array([[1.0 if (k >> i) & 1 else -1.0 for i in range(d)] for k in range(2**d)])
    logits = -((flat[:, None, :] - codebook[None]) ** 2).sum(-1) / temperature
    q = np.exp(logits - logits.max(-1, keepdims=True))
    return q / q.sum(-1, keepdims=True)


def np_lfq(z, entropy_weight=0.1, commitment_cost=0.25, gamma=1.0, temperature=1.0, codebook="exact"):
    """Sign, codes and the loss (float64): per-sample entropy of the per-bit p(bit_i = 1) = sigmoid(4 z_i / T);
    codebook entropy of the batch mean of the softmax over all 2^d codes ("exact") or of the per-bit means."""
    d = z.shape[-1]
    q = np.where(z > 0, 1.0, -1.0)
    codes = ((z > 0) * 2 ** np.arange(d)).sum(-1)
    flat, qf = z.reshape(-1, d), q.reshape(-1, d)
    commitment = ((flat - qf) ** 2).mean()
    p = 1 / (1 + np.exp(-4 * flat / temperature))
    entropy = np_binary_entropy(p).sum(-1).mean()
    if codebook == "exact":
        mean_q = np_soft_assignment(flat, temperature).mean(0)
        codebook_entropy = -(mean_q * np.log(mean_q)).sum()
    else:
        codebook_entropy = np_binary_entropy(p.mean(0)).sum()
    loss = commitment_cost * commitment + entropy_weight * (entropy - gamma * codebook_entropy)
    return q, codes, dict(loss=loss, commitment=commitment, entropy=entropy, codebook_entropy=codebook_entropy)


def away_from_zero(shape, margin=0.1):
    z = RNG.normal(size=shape)
    return (np.sign(z) * (np.abs(z) + margin)).astype(np.float32)


def test_forward_is_the_sign_with_binary_codes_as_in_eq_2_and_3():
    lfq = LookupFreeQuantizer(5)
    z = away_from_zero((3, 4, 5))
    z[0, 0] = [0.0, 1.0, -1.0, 0.0, 2.0]  # sign(0) = -1 (eq. 2)
    out = lfq(z)
    q, codes, _ = np_lfq(z.astype(np.float64))
    np.testing.assert_array_equal(out["quantized"].numpy(), q)
    np.testing.assert_array_equal(out["codes"].numpy(), codes)
    assert out["codes"].numpy()[0, 0] == 2 + 16 and out["codes"].dtype == tf.int32
    assert lfq.num_codes == 32 and lfq.weights == []


def test_lookup_inverts_the_codes_exactly():
    lfq = LookupFreeQuantizer(3)
    table = lfq.lookup(tf.range(8)).numpy()
    want = np.array([[1.0 if (k >> i) & 1 else -1.0 for i in range(3)] for k in range(8)])
    np.testing.assert_array_equal(table, want)
    out = lfq(away_from_zero((4, 2, 3)))
    np.testing.assert_array_equal(lfq.lookup(out["codes"]).numpy(), out["quantized"].numpy())
    with pytest.raises(TypeError, match="integers"):
        lfq.lookup(tf.constant([1.0]))


@pytest.mark.parametrize("codebook", ["exact", "factorized"])
@pytest.mark.parametrize("gamma,temperature", [(1.0, 1.0), (0.5, 2.0)])
def test_loss_matches_numpy_oracle_of_commitment_and_entropies(gamma, temperature, codebook):
    lfq = LookupFreeQuantizer(
        4, entropy_weight=0.3, commitment_cost=0.7, diversity_gamma=gamma, temperature=temperature,
        codebook_entropy=codebook,
    )
    z = (RNG.normal(size=(2, 5, 4)) * 0.7).astype(np.float32)
    out = lfq(z, training=True)
    _, _, want = np_lfq(z.astype(np.float64), 0.3, 0.7, gamma, temperature, codebook)
    for key, value in want.items():
        assert out[key].numpy() == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_factorised_distribution_is_the_distance_softmax_over_all_codes():
    """sigmoid(4 z_i) per bit is exactly softmax(-||z - c||^2) over the 2^d codes, so the
    per-sample entropy is exact; the codebook entropy of the per-bit means bounds the exact one."""
    d = 3
    lfq = LookupFreeQuantizer(d)
    z = (RNG.normal(size=(6, d)) * 0.5).astype(np.float32)
    out = lfq(z)
    factorized = LookupFreeQuantizer(d, codebook_entropy="factorized")(z)
    codebook = np.array(list(itertools.product([-1.0, 1.0], repeat=d)))
    logits = -((z[:, None, :].astype(np.float64) - codebook[None]) ** 2).sum(-1)
    q = np.exp(logits - logits.max(-1, keepdims=True))
    q /= q.sum(-1, keepdims=True)
    np.testing.assert_allclose(q @ (codebook > 0), 1 / (1 + np.exp(-4 * z)), rtol=1e-6)  # the bit marginals
    assert out["entropy"].numpy() == pytest.approx(-(q * np.log(q)).sum(-1).mean(), rel=1e-5)
    mean_q = q.mean(0)
    exact_codebook_entropy = -(mean_q * np.log(mean_q)).sum()
    assert out["codebook_entropy"].numpy() == pytest.approx(exact_codebook_entropy, rel=1e-5)
    assert factorized["codebook_entropy"].numpy() >= exact_codebook_entropy - 1e-6


def test_exact_codebook_entropy_sees_correlated_bits_that_the_factorised_bound_misses():
    """Two codes used, (+1, +1, +1) and (-1, -1, -1): every bit is balanced (factorised: 3 log 2), but the
    batch uses 2 of 8 codes (exact: about log 2), so only the exact entropy penalises the collapse."""
    z = np.array([[3.0] * 3, [-3.0] * 3] * 4, np.float32)
    exact = LookupFreeQuantizer(3)(z)["codebook_entropy"].numpy()
    factorized = LookupFreeQuantizer(3, codebook_entropy="factorized")(z)["codebook_entropy"].numpy()
    assert factorized == pytest.approx(3 * np.log(2), rel=1e-4)
    assert exact == pytest.approx(np_lfq(z.astype(np.float64))[2]["codebook_entropy"], rel=1e-5)
    assert exact == pytest.approx(np.log(2), rel=1e-3)


def test_default_codebook_entropy_is_exact_up_to_12_bits_and_exact_is_refused_above_16():
    assert LookupFreeQuantizer(12).codebook_entropy == "exact"
    assert LookupFreeQuantizer(13).codebook_entropy == "factorized"
    assert LookupFreeQuantizer(16, codebook_entropy="exact").codebook_entropy == "exact"
    with pytest.raises(ValueError, match=r"at most code_dim 16.*codebook_entropy='factorized'"):
        LookupFreeQuantizer(17, codebook_entropy="exact")
    with pytest.raises(ValueError, match=r"codebook_entropy must be one of"):
        LookupFreeQuantizer(4, codebook_entropy="joint")


def test_quantized_gradient_is_straight_through_and_loss_gradient_matches_finite_differences():
    lfq = LookupFreeQuantizer(3, entropy_weight=0.5, dtype="float64")
    z0 = RNG.normal(size=(4, 3)) * 0.6
    z = tf.Variable(z0)
    w = RNG.normal(size=(4, 3))
    with tf.GradientTape(persistent=True) as tape:
        out = lfq(z, training=True)
        y = tf.reduce_sum(out["quantized"] * w)
    np.testing.assert_allclose(tape.gradient(y, z).numpy(), w)
    grad = tape.gradient(out["loss"], z).numpy()
    h, numeric = 1e-6, np.zeros_like(z0)
    for idx in np.ndindex(*z0.shape):
        plus, minus = z0.copy(), z0.copy()
        plus[idx] += h
        minus[idx] -= h
        numeric[idx] = (np_lfq(plus, 0.5)[2]["loss"] - np_lfq(minus, 0.5)[2]["loss"]) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_entropy_penalty_prefers_confident_and_balanced_bits():
    lfq = LookupFreeQuantizer(2, commitment_cost=0.0, entropy_weight=1.0)
    balanced = np.array([[3.0, 3.0], [-3.0, 3.0], [3.0, -3.0], [-3.0, -3.0]], np.float32)
    collapsed = np.tile([[3.0, 3.0]], (4, 1)).astype(np.float32)
    unsure = np.full((4, 2), 0.01, np.float32)
    losses = [lfq(x)["loss"].numpy() for x in (balanced, collapsed, unsure)]
    assert losses[0] < losses[1] and losses[0] < losses[2]
    assert losses[0] == pytest.approx(-2 * np.log(2), abs=1e-3)  # H[E q] = 2 bits' worth, E[H] ~ 0


def test_perplexity_counts_the_codes_of_the_batch_for_small_and_huge_codebooks():
    for d in (4, 20):  # 2^20 codes: counted by unique codes, no dense [2^20] vector
        lfq = LookupFreeQuantizer(d)
        assert lfq.supports_jit == (d <= 16)  # tf.unique (the large path) has no XLA kernel
        base = away_from_zero((5, d))
        z = np.concatenate([base, base[:2], base[:1]])
        codes = lfq(z)["codes"].numpy()
        _, counts = np.unique(codes, return_counts=True)
        p = counts / counts.sum()
        assert lfq(z)["perplexity"].numpy() == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-5)


def test_bad_arguments_raise_errors_naming_what_was_expected():
    for code_dim in (0, 31, 2.5, True):
        with pytest.raises(ValueError, match=r"code_dim must be an integer in \[1, 30\]"):
            LookupFreeQuantizer(code_dim)
    with pytest.raises(ValueError, match="temperature"):
        LookupFreeQuantizer(4, temperature=0.0)
    lfq = LookupFreeQuantizer(4)
    with pytest.raises(ValueError, match="code_dim=4"):
        lfq(tf.zeros([2, 3]))
    with pytest.raises(TypeError, match="floating-point"):
        lfq(tf.zeros([2, 4], tf.int32))


def test_config_and_keras_file_round_trip_give_identical_outputs(keras_round_trip):
    lfq = LookupFreeQuantizer(6, entropy_weight=0.2, commitment_cost=0.1, diversity_gamma=0.8, temperature=0.5)
    assert LookupFreeQuantizer.from_config(lfq.get_config()).get_config() == lfq.get_config()
    inputs = keras.Input((2, 6))
    out = lfq(inputs)
    model = keras.Model(inputs, {"quantized": out["quantized"], "codes": out["codes"], "loss": out["loss"]})
    keras_round_trip(model, lfq, RNG.normal(size=(3, 2, 6)).astype(np.float32))


def test_nearest_codes_are_the_forward_codes_without_touching_the_layers_state(nearest_codes_are_forward_codes):
    nearest_codes_are_forward_codes(LookupFreeQuantizer(5), 5)


def test_mixed_bfloat16_gives_float32_codes_and_float32_losses():
    with precision_scope("mixed_bfloat16"):
        mixed = LookupFreeQuantizer(6)
    full = LookupFreeQuantizer(6)
    z = away_from_zero((8, 6))
    a, b = mixed(z), full(z)
    assert a["quantized"].dtype == tf.bfloat16 and a["loss"].dtype == tf.float32
    np.testing.assert_array_equal(a["codes"].numpy(), b["codes"].numpy())
    np.testing.assert_array_equal(a["quantized"].numpy(), b["quantized"].numpy())
    assert a["loss"].numpy() == pytest.approx(b["loss"].numpy(), rel=1e-2)


def test_mirrored_codebook_entropy_and_perplexity_are_those_of_the_global_batch(mirrored_strategy):
    strategy = mirrored_strategy
    halves = [(RNG.normal(size=(6, 4)) + 0.8).astype(np.float32), (RNG.normal(size=(6, 4)) - 0.8).astype(np.float32)]
    with strategy.scope():
        lfq = LookupFreeQuantizer(4)
    values = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(halves[ctx.replica_id_in_sync_group])
    )

    @tf.function
    def step(x):
        out = strategy.run(lambda z: lfq(z, training=True), args=(x,))
        return out["codebook_entropy"], out["perplexity"]

    entropies, perplexities = step(values)
    both = np.concatenate(halves).astype(np.float64)
    _, codes, want = np_lfq(both)
    _, counts = np.unique(codes, return_counts=True)
    p = counts / counts.sum()
    for value in strategy.experimental_local_results(entropies):
        assert value.numpy() == pytest.approx(want["codebook_entropy"], rel=1e-5)
    for value in strategy.experimental_local_results(perplexities):
        assert value.numpy() == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-5)
    # 2^20 codes: the codes are gathered from both replicas (shards of different lengths) and counted.
    with strategy.scope():
        wide = LookupFreeQuantizer(20)
    shards = [away_from_zero((5, 20)), None]
    shards[1] = np.concatenate([shards[0][:2], away_from_zero((1, 20))])
    values = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(shards[ctx.replica_id_in_sync_group])
    )
    perplexities = tf.function(lambda x: strategy.run(lambda z: wide(z)["perplexity"], args=(x,)))(values)
    _, counts = np.unique(wide(np.concatenate(shards))["codes"].numpy(), return_counts=True)
    p = counts / counts.sum()
    for value in strategy.experimental_local_results(perplexities):
        assert value.numpy() == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-5)
