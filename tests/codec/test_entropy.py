"""Tests of tfvq.codec.entropy: the integer tables of the documented rule, the range coder, and files that decode
the same with other kernels (the rule's margins)."""

import math
import subprocess
import sys

import numpy as np
import pytest

from tfvq import codec
from tfvq.codec import container, entropy
from tfvq.losses.likelihoods import discretized_logistic_log_prob


def test_frequencies_follow_the_documented_rule():
    w = np.array([[0, 5, 7, 0], [0, 0, 0, 0], [1 << 40, 1, 0, 3]], np.int64)
    f = entropy.frequencies(w)
    t, k = entropy.TOTAL, 4
    for row, wr in zip(f, w):
        assert row.sum() == t and row.min() >= 1
    # The closed form on the first row: 1 + floor(w (T - K) / sum w), the rest to the first largest weight.
    want = 1 + (w[0] * (t - k)) // 12
    want[2] += t - want.sum()
    np.testing.assert_array_equal(f[0], want)
    np.testing.assert_array_equal(f[1], [t // 4] * 4)  # all-zero weights: uniform


def test_log_probabilities_are_rounded_to_the_grid_and_ambiguous_values_flagged():
    step = entropy.LOG_STEP
    lp = np.log(np.array([[0.7, 0.2, 0.1], [0.5, 0.25, 0.25]]))
    f, ambiguous = entropy.quantise_log_probs(lp)
    q = np.floor(lp / step + 0.5)
    w = np.array([[round(math.exp(v * step) * 2 ** 40) for v in row] for row in q], np.int64)
    np.testing.assert_array_equal(f, entropy.frequencies(w))
    assert not ambiguous.any()
    # A value a hair from a rounding boundary (k + 1/2 steps) is ambiguous; one far below the lowest level is not.
    near = np.array([[-(3.5 * step) + 1e-6, -100.0, 0.0]])
    assert entropy.quantise_log_probs(near)[1].tolist() == [True]
    assert entropy.quantise_log_probs(np.array([[-100.0, 0.0]]))[1].tolist() == [False]


def test_log_probabilities_of_many_blocks_give_each_rows_own_tables():
    """`quantise_log_probs` works in blocks of `QUANTISE_BLOCK` entries: a row's table is its own, whatever the
    rows around it; float64 tables are the same integers."""
    rng = np.random.default_rng(3)
    k = 17
    rows = 3 * entropy.QUANTISE_BLOCK // k + 5  # blocks of whole rows, the last one short
    logits = rng.normal(0, 4, (rows, k))
    lp = (logits - np.log(np.exp(logits).sum(-1, keepdims=True))).astype(np.float32)
    lp[5, 3], lp[7] = -np.inf, -np.inf  # a code of probability zero, and a row of nothing (uniform)
    f, ambiguous = entropy.quantise_log_probs(lp.reshape(1, rows, 1, k))
    assert f.shape == (1, rows, 1, k) and ambiguous.shape == (1, rows, 1)
    for i in rng.choice(rows, 40, replace=False).tolist() + [5, 7, rows - 1]:
        fi, ai = entropy.quantise_log_probs(lp[i: i + 1])
        np.testing.assert_array_equal(f[0, i, 0], fi[0])
        assert ambiguous[0, i, 0] == ai[0]
    np.testing.assert_array_equal(f[0, 7, 0], [entropy.TOTAL // k + (entropy.TOTAL % k if j == 0 else 0)
                                               for j in range(k)])
    f64, _ = entropy.quantise_log_probs(lp, np.float64)
    assert f64.dtype == np.float64
    np.testing.assert_array_equal(f64, f.reshape(rows, k))


def test_tables_made_when_the_stream_is_written_code_what_they_say():
    """`Encoder.lazy_pieces`: (symbols, table or tables) made while the stream is written, in order with the
    other calls."""
    rng = np.random.default_rng(5)
    tables = entropy.frequencies(rng.integers(0, 1000, size=(300, 9)))
    symbols = rng.integers(0, 9, size=300)
    flags = (rng.random(300) < 0.2).astype(np.int32)
    made = []

    def pieces():
        made.append(True)
        yield flags, np.array(entropy.ESCAPE_FREQUENCIES, np.float64)
        yield symbols[:100], tables[:100]
        yield symbols[100:], tables[100:]

    encoder = entropy.Encoder()
    encoder.static(symbols[:3], tables[0])
    encoder.lazy_pieces(pieces)
    assert encoder.is_lazy and not made  # nothing made until the stream is written
    decoder = entropy.Decoder(encoder.bytes(), "test")
    np.testing.assert_array_equal(decoder.static(tables[0], 3), symbols[:3])
    np.testing.assert_array_equal(decoder.flags(300), flags)
    np.testing.assert_array_equal(decoder.tables(tables), symbols)
    assert made == [True]


def test_pixel_tables_approximate_the_discretised_logistic():
    loc = np.array([0.5, 0.1, 0.93, -0.2], np.float32)
    log_scale = np.array([-3.0, -5.5, -1.0, -7.0], np.float32)
    f, _ = entropy.pixel_frequencies(loc, log_scale)
    assert (f.sum(-1) == entropy.TOTAL).all() and f.min() >= 1
    # The exact pmf of the rounded parameters (the table's target), within the tables' resolution.
    lq = np.floor(loc / entropy.LOC_STEP + 0.5) * entropy.LOC_STEP
    sq = np.floor(log_scale / entropy.SCALE_STEP + 0.5) * entropy.SCALE_STEP
    exact = np.exp(discretized_logistic_log_prob(np.arange(256)[None], lq[:, None].astype(np.float64),
                                                 sq[:, None].astype(np.float64)).numpy())
    assert np.abs(f / entropy.TOTAL - exact).max() < 0.02  # the sigmoid table's step is 1/64 logistic units
    np.testing.assert_array_equal(f.argmax(-1), exact.argmax(-1))


def test_range_coding_round_trips_with_escapes():
    rng = np.random.default_rng(0)
    tables = entropy.frequencies(rng.integers(0, 1000, size=(500, 7)))
    symbols = rng.integers(0, 7, size=500)
    ambiguous = rng.random(500) < 0.1
    fallback = entropy.frequencies(np.ones(7, np.int64))
    encoder = entropy.Encoder()
    encoder.flags(ambiguous)
    encoder.escaped(symbols, tables, ambiguous, fallback)
    decoder = entropy.Decoder(encoder.bytes(), "test")
    flags = decoder.flags(500)
    np.testing.assert_array_equal(flags, ambiguous)
    tables = tables.copy()
    tables[flags] = fallback
    np.testing.assert_array_equal(decoder.tables(tables), symbols)


def test_integer_logit_tables_follow_the_rounded_softmax_with_integers_only():
    rng = np.random.default_rng(4)
    unit = 12
    logits = rng.integers(-20 << unit, 3 << unit, size=(500, 24)).astype(np.int64)
    tables = entropy.integer_logit_tables(logits, unit)
    assert tables.dtype == np.int64 and (tables.sum(-1) == entropy.TOTAL).all() and (tables >= 1).all()
    # Independently: d rounded to 1/8 nat, exp, dropped below -14 nats, scaled to the free counts.
    step = 2.0 ** -entropy.INTEGER_STEP_BITS
    d = (logits - logits.max(-1, keepdims=True)) / 2.0 ** unit
    q = np.floor(d / step + 0.5)
    w = np.where(q >= -entropy.INTEGER_LEVELS, np.exp(q * step), 0.0)
    want = 1 + w / w.sum(-1, keepdims=True) * (entropy.TOTAL - 24)
    top = np.argmax(w, -1)
    mask = np.ones_like(want, bool)
    mask[np.arange(len(top)), top] = False  # the largest also takes what flooring left over
    assert np.abs(tables - want)[mask].max() < 1.0 + 1e-6
    # Adding a constant to every logit changes nothing; the grid's unit must be finer than the step.
    np.testing.assert_array_equal(entropy.integer_logit_tables(logits + 12345, unit), tables)
    with pytest.raises(ValueError, match="coarser"):
        entropy.integer_logit_tables(logits, entropy.INTEGER_STEP_BITS)


_SCRIPT = """
import sys, numpy as np
from tfvq import codec
x = np.load(sys.argv[2] + "/x.npy")
for name, coder in (("rrvq_digits", "progressive"), ("hqa_digits", "progressive"), ("hqa_digits", "context")):
    path = f"{sys.argv[2]}/{name}_{coder}"
    if sys.argv[1] == "encode":
        data = codec.compress(x, name, coder=coder, lossless=name == "rrvq_digits", layer=1)
        open(path + ".tfvq", "wb").write(data)
    else:
        np.save(path + ".npy", codec.decompress(open(path + ".tfvq", "rb").read()))
"""


@pytest.mark.slow
def test_files_decode_with_other_kernels_onednn_on_then_off(tmp_path, six_digits, repo_env):
    np.save(tmp_path / "x.npy", six_digits)
    for step, onednn in (("encode", "1"), ("decode", "0")):
        subprocess.run([sys.executable, "-c", _SCRIPT, step, str(tmp_path)],
                       env=repo_env(TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS=onednn), check=True)
    # Lossless RRVQ: every layer's codes (coded under the prior p(z_l | z_>l)) and the pixels passed their CRCs.
    np.testing.assert_array_equal(np.load(tmp_path / "rrvq_digits_progressive.npy"), six_digits)
    # HQA: layers 5..1, each coded under layer l+1's prediction (progressive) or under the context priors,
    # passed their CRCs (the decoder raises otherwise).
    for coder, kind in (("progressive", container.MODEL), ("context", container.CONTEXT)):
        header = codec.read_header((tmp_path / f"hqa_digits_{coder}.tfvq").read_bytes())
        assert header.layers == (1, 2, 3, 4, 5) and kind in header.coders.values()
        assert np.load(tmp_path / f"hqa_digits_{coder}.npy").shape == six_digits.shape
