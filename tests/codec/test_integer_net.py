"""Context networks on integers (`tfvq.codec.integer_net`): exact, close to the float network, checked."""

import numpy as np
import pytest

from tfvq.codec import context, integer_net


@pytest.fixture(scope="module")
def net():
    import keras

    keras.utils.set_random_seed(5)
    from tfvq.codec import fit

    return fit.context_net(7, 5, 2, width=8, depth=2, embed=4, mix=6)


def _inputs(rng, n=3, h=6, w=4):
    return rng.integers(0, 8, size=(n, h, w)).astype(np.int32), rng.integers(0, 5, size=(n, h // 2, w // 2))


def _int64_oracle(config, weights, known, above):
    """The same integer network with NumPy int64 arithmetic throughout (no float64 sums, no BLAS)."""
    a, w = integer_net.ACT_BITS, integer_net.WEIGHT_BITS
    q = lambda x, bits: np.rint(np.asarray(x, np.float64) * 2.0 ** bits).astype(np.int64)  # noqa: E731
    h = np.concatenate([q(weights[0], a)[known],
                        np.repeat(np.repeat(q(weights[1], a)[above], 2, 1), 2, 2)], -1)
    limit = (1 << integer_net.ACT_LIMIT_BITS) - 1
    rest = weights[2:]
    for i, (kernel, bias) in enumerate(zip(rest[0::2], rest[1::2])):
        kernel, bias = q(kernel, w), q(bias, a + w)
        if kernel.shape[0] == 3:
            n, hh, ww, c = h.shape
            p = np.pad(h, ((0, 0), (1, 1), (1, 1), (0, 0)))
            acc = np.zeros((n, hh, ww, kernel.shape[-1]), np.int64) + bias
            for dy in range(3):
                for dx in range(3):
                    acc += np.einsum("nhwc,cd->nhwd", p[:, dy:dy + hh, dx:dx + ww], kernel[dy, dx])
        else:
            acc = np.einsum("nhwc,cd->nhwd", h, kernel[0, 0]) + bias
        h = acc >> w  # floor
        if i < len(rest) // 2 - 1:
            h = np.clip(h, 0, limit)
    return h


def test_integer_logits_equal_an_int64_computation_of_the_same_network(net):
    rng = np.random.default_rng(0)
    known, above = _inputs(rng)
    config, weights = context.net_config(net), net.get_weights()
    got = integer_net.IntegerContextNet.from_weights(config, weights).logits(known, above)
    np.testing.assert_array_equal(got, _int64_oracle(config, weights, known, above))


def test_integer_logits_are_the_float_networks_to_a_few_thousandths_of_a_nat(net):
    rng = np.random.default_rng(1)
    known, above = _inputs(rng, n=8, h=8, w=8)
    integer = integer_net.IntegerContextNet.from_weights(context.net_config(net), net.get_weights())
    got = integer.logits(known, above) / 2.0 ** integer_net.ACT_BITS
    want = np.asarray(net((known, above)), np.float64)
    np.testing.assert_allclose(got, want, atol=5e-3)
    at = context.pass_map(8, 8) == 2
    np.testing.assert_array_equal(integer.logits(known, above, at), integer.logits(known, above)[:, at])


def test_weights_that_could_leave_exact_float64_sums_are_refused(net):
    weights = net.get_weights()
    weights[2] = weights[2] * 1e9
    with pytest.raises(ValueError, match="too large for exact integer sums"):
        integer_net.IntegerContextNet.from_weights(context.net_config(net), weights)
    weights[2] = weights[2] * np.nan
    with pytest.raises(ValueError, match="non-finite"):
        integer_net.IntegerContextNet.from_weights(context.net_config(net), weights)


def test_coded_bits_of_the_bundled_priors_are_their_float_cross_entropy_within_a_bit():
    from tfvq import codec, zoo
    from tfvq.codec import fit
    from tfvq.codec.coding import encode_layers
    from tfvq.data import load_numpy

    model, digest = codec.load_model("hqa_digits")
    priors = context.read_context(zoo.prior_paths(model)["context"], "hqa_digits", model.code_layout().num_codes,
                                  digest)
    assert priors is not None and priors.has(2)  # the bundled context priors
    images = load_numpy("digits", "test", limit=24)
    codes = encode_layers(model, images, {2, 3})
    floating, coded = fit.float_bits(priors, 2, codes[2], codes[3]), priors.coded_bits(2, codes[2], codes[3])
    assert np.abs(coded - floating).max() < 1.0, (floating, coded)
