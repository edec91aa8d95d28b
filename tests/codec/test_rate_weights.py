"""Static priors with rate weights: codes chosen as argmax log q + lambda log p (entropy-constrained VQ), counted
and sent that way; the bundled rrvq_mnist prior chooses its top layer so."""

import json

import numpy as np
import pytest

from tfvq import codec
from tfvq.codec import coding
from tfvq.codec.errors import CodecError
from tfvq.codec.fit import count_codes, fit_prior
from tfvq.codec.prior import StaticPrior
from tfvq.commands.fit_priors import rate_weights
from tfvq.data.embedded import mnist10k_raw


def test_code_bias_is_the_weight_times_the_log_probabilities_of_the_layers_table():
    counts = (np.array([5, 0, 3], np.int64), np.array([1, 1], np.int64))
    prior = StaticPrior("m", "00" * 8, counts, "test", rate_weights={"1": 2})
    assert prior.rate_weights == {1: 2.0}
    table = prior.table(1).astype(np.float64)
    (layer, bias), = prior.code_bias().items()
    assert layer == 1
    np.testing.assert_allclose(bias, 2.0 * np.log(table / table.sum()), rtol=1e-6)
    assert StaticPrior("m", "00" * 8, counts, "test").code_bias() is None
    again = StaticPrior.from_json(json.loads(json.dumps(prior.to_json())))
    assert again.rate_weights == {1: 2.0} and again.digest == prior.digest  # the weights are not in the digest
    for bad in ({3: 1.0}, {1: 0.0}, {1: float("nan")}):
        with pytest.raises(ValueError, match="rate_weights maps layers 1..2 to positive weights"):
            StaticPrior("m", "00" * 8, counts, "test", rate_weights=bad)


def test_rate_weights_argument_parses_layer_weight_pairs():
    assert rate_weights("5:2,4:0.5") == {5: 2.0, 4: 0.5}
    assert rate_weights(None) is None
    with pytest.raises(ValueError, match="LAYER:WEIGHT pairs"):
        rate_weights("5=2")


@pytest.fixture(scope="module")
def rrvq_mnist():
    return codec.Compressor("rrvq_mnist")


@pytest.fixture(scope="module")
def digits():
    return mnist10k_raw("test")[0][:6][..., None]


def test_fitting_with_rate_weights_counts_the_codes_chosen_under_the_previous_table(digits):
    """One round after the first count: the top layer's counts are those of the codes chosen with the first
    count's table; the other layers are counted as the codes q's modes give given those top codes."""
    plain = fit_prior("rrvq_mnist", images=digits)
    fitted = fit_prior("rrvq_mnist", images=digits, rate_weights={5: 2.0}, rounds=1)
    model = codec.load_model("rrvq_mnist")[0]
    first_bias = {5: 2.0 * np.log(plain.table(5) / plain.table(5).sum()).astype(np.float32)}
    expected = count_codes(model, digits, code_bias=first_bias)
    for got, want in zip(fitted.counts, expected):
        np.testing.assert_array_equal(got, want)
    assert fitted.rate_weights == {5: 2.0}
    # choosing by rate gathers the top codes: fewer distinct codes than q's modes
    assert (fitted.counts[4] > 0).sum() < (plain.counts[4] > 0).sum()
    with pytest.raises(ValueError, match="no q to choose codes by rate"):
        fit_prior("vq_digits", images=np.zeros((2, 32, 32, 1), np.uint8), rate_weights={1: 1.0})


def test_bundled_rrvq_mnist_files_send_the_rate_chosen_top_codes_and_decode_exactly(rrvq_mnist, digits,
                                                                                    decoded_codes):
    prior = rrvq_mnist.prior
    assert prior.rate_weights == {5: 2.0}
    data = bytes(rrvq_mnist.compress(digits, None, "auto", True))
    decoded = codec.decompress(data)
    np.testing.assert_array_equal(decoded, digits)
    codes = coding.encode_layers(rrvq_mnist.model, digits, {1, 2, 3, 4, 5}, prior.code_bias())
    plain = coding.encode_layers(rrvq_mnist.model, digits, {1, 2, 3, 4, 5})
    top = np.log(prior.table(5) / prior.table(5).sum())
    # the sent top codes cost fewer bits under the table than q's modes
    assert -top[codes[5]].sum() < -top[plain[5]].sum()
    sent = decoded_codes(data)
    for l in range(1, 6):
        np.testing.assert_array_equal(sent[l], codes[l])


def test_a_prior_with_rate_weights_is_refused_for_a_model_without_q(monkeypatch):
    hqa = codec.Compressor("vq_digits")
    monkeypatch.setattr(hqa, "prior", StaticPrior(hqa.prior.model, hqa.prior.weights_hash, hqa.prior.counts,
                                                  hqa.prior.source, rate_weights={1: 1.0}))
    with pytest.raises(CodecError, match="no q to choose codes by rate"):
        hqa.compress(np.zeros((1, 32, 32, 1), np.uint8))
