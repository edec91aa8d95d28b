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


def _random_net(rng, num_codes, above_codes, factor, depth, scale):
    config = {"num_codes": num_codes, "above_codes": above_codes, "factor": factor, "width": 6, "depth": depth,
              "embed": 3, "mix": 5}
    weights = [(rng.normal(0, scale, s)).astype(np.float32) for s in context.weight_shapes(config)]
    return config, weights


def _im2col_logits(config, weights, known, above, at):
    """The network written out plainly: every layer on the whole grid (a 3x3 layer as one product of each
    position's zero-padded neighbourhood), in int64, then the positions of `at`."""
    a, wb = integer_net.ACT_BITS, integer_net.WEIGHT_BITS
    q = lambda x, bits: np.rint(np.asarray(x, np.float64) * 2.0 ** bits).astype(np.int64)  # noqa: E731
    has_above = config["above_codes"] is not None
    h = q(weights[0], a)[known]
    if has_above:
        f = config["factor"]
        h = np.concatenate([h, np.repeat(np.repeat(q(weights[1], a)[above], f, 1), f, 2)], -1)
    rest = weights[2 if has_above else 1:]
    for i, (kernel, bias) in enumerate(zip(rest[0::2], rest[1::2])):
        n, rows, cols, c = h.shape
        if kernel.shape[0] == 3:
            p = np.pad(h, ((0, 0), (1, 1), (1, 1), (0, 0)))
            h = np.concatenate([p[:, dy: dy + rows, dx: dx + cols] for dy in range(3) for dx in range(3)], -1)
        acc = h.reshape(-1, h.shape[-1]) @ q(kernel, wb).reshape(-1, kernel.shape[-1]) + q(bias, a + wb)
        h = (acc >> wb).reshape(n, rows, cols, -1)
        if i < len(rest) // 2 - 1:
            h = np.clip(h, 0, (1 << integer_net.ACT_LIMIT_BITS) - 1)
    return h if at is None else h[:, at]


@pytest.mark.parametrize("factor", [1, 2, 3])
@pytest.mark.parametrize("depth", [0, 1, 2, 3])
@pytest.mark.parametrize("has_above", [True, False])
def test_logits_equal_the_plain_im2col_network_on_random_codes_and_weights(factor, depth, has_above, monkeypatch):
    monkeypatch.setattr(integer_net, "CHUNK", 7)  # many blocks, some not full
    rng = np.random.default_rng(100 * factor + 10 * depth + has_above)
    for trial in range(6):
        k, ka = int(rng.integers(2, 7)), int(rng.integers(1, 5))
        config, weights = _random_net(rng, k, ka if has_above else None, factor if has_above else 1, depth,
                                      scale=[0.3, 1.0, 4.0][trial % 3])
        net = integer_net.IntegerContextNet.from_weights(config, weights)
        n = 1 + trial % 2
        cells = rng.integers(1, 5, size=2)
        h, w = (cells * factor) if has_above else (cells * factor + trial % 2)
        codes = rng.integers(0, k, size=(n, h, w))
        above = rng.integers(0, ka, size=(n, h // factor, w // factor)) if has_above else None
        for upto in range(context.PASSES + 1):  # the checkerboard's inputs: some parity classes all unknown
            known = context.known_input(codes, k, upto) if upto < context.PASSES else rng.integers(0, k + 1, (n, h, w))
            masks = [None, context.pass_map(h, w) == upto % context.PASSES, rng.random((h, w)) < 0.3,
                     np.zeros((h, w), bool)]
            rows = np.zeros((h, w), bool)
            rows[h // 3: h // 3 + 2] = True
            masks.append(rows & masks[1])
            for at in masks:
                want = _im2col_logits(config, weights, known, above, at)
                got = net.logits(known, above, at)
                assert got.dtype == np.int64 and got.shape == want.shape
                np.testing.assert_array_equal(got, want)


def test_embeddings_too_large_for_exact_sums_are_refused(net):
    weights = net.get_weights()
    weights[0] = weights[0] * 1e9  # activations within 2^24 units, but the embeddings far above
    with pytest.raises(ValueError, match="too large for exact integer sums"):
        integer_net.IntegerContextNet.from_weights(context.net_config(net), weights)


def test_then_makes_tables_of_every_block_of_logits_in_order(net, monkeypatch):
    from tfvq.codec import entropy

    monkeypatch.setattr(integer_net, "CHUNK", 5)
    rng = np.random.default_rng(7)
    known, above = _inputs(rng, n=2, h=8, w=6)
    integer = integer_net.IntegerContextNet.from_weights(context.net_config(net), net.get_weights())
    for at in (None, context.pass_map(8, 6) == 3):
        def tables(logits, out):
            entropy.integer_logit_tables(logits, integer_net.ACT_BITS, out=out)

        got = integer.logits(known, above, at, then=tables, dtype=np.float64)
        want = entropy.integer_logit_tables(integer.logits(known, above, at), integer_net.ACT_BITS)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, want)
