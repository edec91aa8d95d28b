"""Tests of tfvq.codec.prior: static priors, their tables, digest, rate weights and files."""

import hashlib
import json

import numpy as np
import pytest

from tfvq.codec import entropy
from tfvq.codec.errors import CodecError
from tfvq.codec.prior import StaticPrior, read_prior, uniform_prior

HASH = bytes(range(8))
COUNTS = (np.array([5, 0, 3], np.int64), np.array([1, 1], np.int64))


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


def test_a_layers_table_is_its_counts_as_static_frequencies_and_the_digest_names_every_table():
    prior = StaticPrior("m", HASH.hex(), COUNTS, "test")
    for layer, counts in enumerate(COUNTS, 1):
        table = prior.table(layer)
        np.testing.assert_array_equal(table, entropy.static_frequencies(counts))
        assert table.sum() == entropy.TOTAL and table.min() >= 1  # an unseen code can still be coded
    assert prior.table(1)[0] > prior.table(1)[2] > prior.table(1)[1]
    want = hashlib.sha256(b"".join(np.asarray(entropy.static_frequencies(c), ">i8").tobytes() for c in COUNTS))
    assert prior.digest == want.digest()[:8]
    other = StaticPrior("m", HASH.hex(), (np.array([5, 1, 3], np.int64), COUNTS[1]), "test")
    assert other.digest != prior.digest  # a count changed: other tables, another digest
    assert StaticPrior("other name", "ff" * 8, COUNTS, "elsewhere").digest == prior.digest  # the tables alone


def test_the_uniform_prior_counts_nothing_and_gives_uniform_tables():
    prior = uniform_prior("m", (3, 256), HASH)
    assert (prior.model, prior.weights_hash, prior.source) == ("m", HASH.hex(), "uniform")
    assert [c.tolist() for c in prior.counts] == [[0] * 3, [0] * 256]
    np.testing.assert_array_equal(prior.table(2), entropy.uniform_table(256))
    assert prior.code_bias() is None


def test_a_saved_prior_is_read_back_for_its_weights_and_layout(tmp_path):
    path = tmp_path / "m.prior.json"
    prior = StaticPrior("m", HASH.hex(), COUNTS, "digits/train, 3 images", rate_weights={2: 0.5})
    prior.save(path)
    assert json.loads(path.read_text()) == {"model": "m", "weights_hash": HASH.hex(),
                                            "source": "digits/train, 3 images", "counts": [[5, 0, 3], [1, 1]],
                                            "rate_weights": {"2": 0.5}}
    again = read_prior(path, "m", (3, 2), HASH)
    assert [c.tolist() for c in again.counts] == [[5, 0, 3], [1, 1]] and again.rate_weights == {2: 0.5}
    assert again.digest == prior.digest and again.source == prior.source
    assert read_prior(tmp_path / "none.json", "m", (3, 2), HASH).source == "uniform"  # no file: uniform
    assert read_prior(None, "m", (3, 2), HASH).source == "uniform"


def test_a_prior_file_of_other_weights_another_layout_or_damaged_is_refused_saying_what_to_do(tmp_path):
    path = tmp_path / "m.prior.json"
    StaticPrior("m", HASH.hex(), COUNTS, "test").save(path)
    with pytest.raises(CodecError, match=f"counted with other weights of 'm' \\(hash {HASH.hex()}, these weights "
                                         f"{'00' * 8}\\); refit it with `tfvq fit-priors`, or delete it"):
        read_prior(path, "m", (3, 2), bytes(8))
    with pytest.raises(CodecError, match=r"has tables of \[3, 2\] codes, but 'm' has K = \[3, 4\]"):
        read_prior(path, "m", (3, 4), HASH)
    for text in ("{not json", json.dumps({"model": "m", "counts": [[1]]}),
                 json.dumps({"model": "m", "weights_hash": "00", "counts": [[1, -2]]}),
                 json.dumps({"model": "m", "weights_hash": "00", "counts": [[[1]]]})):
        path.write_text(text)
        with pytest.raises(CodecError, match="Cannot read the static prior .*Refit it with `tfvq fit-priors`"):
            read_prior(path, "m", (3, 2), HASH)
    with pytest.raises(ValueError, match="Not a static prior file"):
        StaticPrior.from_json({"model": "m"})
