"""Tests of tfvq.codec.fit: the codes counted into static priors (with and without rate weights), the images they
are counted on, and what the context priors are fitted on."""

import numpy as np
import pytest

from tfvq import codec
from tfvq.codec import fit
from tfvq.codec.fit import count_codes, fit_prior
from tfvq.data import load_numpy


def test_fitting_with_rate_weights_counts_the_codes_chosen_under_the_previous_table(mnist_digits):
    """One round after the first count: the top layer's counts are those of the codes chosen with the first
    count's table; the other layers are counted as the codes q's modes give given those top codes."""
    plain = fit_prior("rrvq_mnist", images=mnist_digits)
    fitted = fit_prior("rrvq_mnist", images=mnist_digits, rate_weights={5: 2.0}, rounds=1)
    model = codec.load_model("rrvq_mnist")[0]
    first_bias = {5: 2.0 * np.log(plain.table(5) / plain.table(5).sum()).astype(np.float32)}
    expected = count_codes(model, mnist_digits, code_bias=first_bias)
    for got, want in zip(fitted.counts, expected):
        np.testing.assert_array_equal(got, want)
    assert fitted.rate_weights == {5: 2.0}
    # choosing by rate gathers the top codes: fewer distinct codes than q's modes
    assert (fitted.counts[4] > 0).sum() < (plain.counts[4] > 0).sum()
    with pytest.raises(ValueError, match="no q to choose codes by rate"):
        fit_prior("vq_digits", images=np.zeros((2, 32, 32, 1), np.uint8), rate_weights={1: 1.0})


def test_count_codes_counts_every_layers_codes_as_encode_gives_them(hqa, rrvq, six_digits):
    counts = count_codes(hqa, six_digits, batch_size=4)  # HQA: each layer's own encode, in batches of 4
    assert [len(c) for c in counts] == [256] * 5
    for layer, c in enumerate(counts, 1):
        codes = hqa.encode(six_digits, layer).numpy()
        np.testing.assert_array_equal(c, np.bincount(codes.ravel(), minlength=256))
        assert c.sum() == 6 * (32 >> layer) ** 2  # HQA's grids: 16x16 at layer 1, halved at each layer
    counts = count_codes(rrvq, six_digits)  # RRVQ-VAE: one encode gives every layer
    for c, codes in zip(counts, rrvq.encode(six_digits)):
        np.testing.assert_array_equal(c, np.bincount(np.asarray(codes).ravel(), minlength=32))
    assert [int(c.sum()) for c in counts] == [6 * 16 * 16, 6 * 8 * 8, 6 * 4 * 4, 6 * 2 * 2, 6]


def test_the_training_images_are_the_given_ones_else_the_training_split_of_the_models_dataset(six_digits):
    images, source = fit.training_images("hqa_digits", six_digits)
    assert images is six_digits and source == "6 given images"
    images, source = fit.training_images("hqa_digits")
    train = load_numpy("digits", "train")
    assert source == f"digits/train, {len(train)} images"
    np.testing.assert_array_equal(images, train)


def test_shifted_images_move_by_each_shift_with_their_edges_repeated():
    x = np.arange(12, dtype=np.uint8).reshape(1, 3, 4, 1)
    out = fit._shifted(x, [(0, 0), (1, 0), (0, -1)])
    assert out.shape == (3, 3, 4, 1)
    np.testing.assert_array_equal(out[0], x[0])
    np.testing.assert_array_equal(out[1, 1:], x[0, :2])  # down one row ...
    np.testing.assert_array_equal(out[1, 0], x[0, 0])  # ... the top row repeated
    np.testing.assert_array_equal(out[2, :, :3], x[0, :, 1:])  # left one column ...
    np.testing.assert_array_equal(out[2, :, 3], x[0, :, 3])  # ... the right column repeated


def test_context_priors_are_refused_for_models_that_send_their_layers_together_and_for_layers_without_one():
    images = np.zeros((2, 32, 32, 1), np.uint8)
    with pytest.raises(ValueError, match="'rrvq_digits' sends its layers together .*context priors are for models "
                                         "whose layers decode alone"):
        fit.fit_context("rrvq_digits", images=images, steps=1)
    with pytest.raises(ValueError, match=r"Layer 9 of 'hqa_digits' cannot have a context prior \(allowed: "
                                         r"\[1, 2, 3, 4\]\)"):
        fit.fit_context("hqa_digits", images=images, layers=[9], steps=1)


def test_a_context_net_is_built_for_its_layer_and_gives_logits_of_its_codes():
    net = fit.context_net(16, above_codes=8, factor=2, width=4, depth=1, embed=2, mix=4)
    known = np.full((3, 4, 6), 16, np.int32)  # every code unknown (K)
    logits = np.asarray(net((known, np.zeros((3, 2, 3), np.int32))))
    assert logits.shape == (3, 4, 6, 16) and np.isfinite(logits).all()
