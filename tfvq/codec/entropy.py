"""Entropy coding of codes and pixels with integer frequency tables (TensorFlow-free).

The coder is `constriction`'s range coder (`constriction.stream.queue`, a
FIFO: chunks decode in the order they were written) with its
`Categorical(perfect=False)` model. Every table handed to it is a table of
integers summing to exactly `TOTAL` = 2^`PRECISION`, passed as float64 (exact),
so the encoder and the decoder give constriction identical inputs on any
machine. Written here by hand is only what no library does: the rule that
turns a network's float probabilities into such integers identically on two
machines whose float arithmetic differs in the last bits.

**The rule (one rule for every network probability).**

1. Log-probabilities v (nats, normalised) are put on a grid of `LOG_STEP`
   nats: q = floor(v / LOG_STEP + 1/2), clipped to [-`LOG_LEVELS`, 0]; a
   value below the lowest level gets weight 0.
2. q becomes an integer weight `WEIGHTS[q]` = round(2^40 exp(q LOG_STEP)),
   computed once by Python's `decimal` module (correctly rounded, so the
   same on every machine).
3. Weights become frequencies by `frequencies`: f_k = 1 + floor(w_k
   (TOTAL - K) / sum(w)), and what is left of TOTAL goes to the first
   largest weight. Every symbol keeps at least one count, so any code can be
   coded.

A value within `LOG_MARGIN` of a rounding boundary (step 1) is *ambiguous*:
another machine could round it the other way. The encoder checks every
position; a position with an ambiguous value is *escaped*: a flag (coded
first, under the fixed table `ESCAPE_FREQUENCIES`, which no network
touches) tells the decoder to code that position under a table that needs
no network (the layer's static prior, or uniform pixels). Kernels that
differ by less than the margin (oneDNN on or off differ by about 3e-5 nats
on the bundled models) therefore give bit-identical tables; anything larger
is caught by the CRC the file keeps of each layer's codes.

Context chunks (`tfvq.codec.context`) need none of this: their networks run
on integers (`tfvq.codec.integer_net`), so their logits are the same on
every machine, and `integer_logit_tables` turns integer logits into tables
with integer arithmetic only.

Pixels (`pixel_frequencies`) follow the same pattern for the discretised
logistic p(x | z) (RRVQ App. C): its location and log-scale are put on grids
(`LOC_STEP`, `SCALE_STEP`, with margins), and its CDF at the 255 inner bin
edges is computed with integers only, from tables of exp and of the
logistic sigmoid made by `decimal`.
"""

import decimal
import functools
import threading

import constriction
import numpy as np

from tfvq.codec.errors import CodecError

PRECISION = 20
"""Frequencies of every table sum to 2^PRECISION (constriction's range coder takes up to 24 bits)."""
TOTAL = 1 << PRECISION
LOG_STEP = 0.5
"""Grid of the log-probabilities, in nats (rounding to it costs about LOG_STEP^2 / 24 nats per symbol)."""
LOG_LEVELS = 28
"""q in [-LOG_LEVELS, 0]: log-probabilities down to -14 nats are kept, anything smaller gets weight 0."""
INTEGER_STEP_BITS = 3
"""Integer logits (context chunks) are rounded to 2^-3 nats: about step^2 / 24 = 6.5e-4 nats per position."""
INTEGER_LEVELS = 14 << INTEGER_STEP_BITS
"""... down to -14 nats below the largest (a count of one in 2^20 is about -13.9 nats)."""
LOG_MARGIN = 2.0 ** -12
"""A log-probability within this many nats of a rounding boundary is ambiguous (its position is escaped)."""
ESCAPE_FREQUENCIES = (TOTAL - TOTAL // 128, TOTAL // 128)
"""The fixed table of the escape flags: an escape has probability 1/128."""

LOC_STEP = 2.0 ** -10
"""Grid of the logistic's location on the [0, 1] pixel scale: a quarter of a pixel level."""
LOC_MARGIN = 2.0 ** -18
SCALE_STEP = 1.0 / 16
"""Grid of the logistic's log-scale."""
SCALE_MARGIN = 2.0 ** -14
_LOC_RANGE = (-1024, 2048)  # location levels kept: [-1, 2] on the [0, 1] scale
_SCALE_RANGE = (-8 * 16, 3 * 16)  # log-scale levels kept: [-8, 3]
_SIGMOID_STEP_BITS = 6  # the sigmoid table's step: 1/64 logistic units
_SIGMOID_LIMIT = 24 * 64  # ... out to |t| = 24
_FIXED_BITS = 30  # t = (edge - loc) / scale in units of 2^-30


def _decimal_exp(x):
    with decimal.localcontext() as ctx:
        ctx.prec = 50
        return decimal.Decimal(x).exp()


@functools.lru_cache(maxsize=None)
def _level_weights(step, levels):
    """W[q + levels + 1] = round(2^40 exp(q step)) for q = -levels, ..., 0, and W[0] = 0 (q = -levels - 1)."""
    exact = [0] + [int((_decimal_exp(decimal.Decimal(q) * decimal.Decimal(step)) * (1 << 40)).to_integral_value(
        decimal.ROUND_HALF_EVEN)) for q in range(-levels, 1)]
    return np.array(exact, np.int64)


def _weights():
    """WEIGHTS[q + LOG_LEVELS + 1] for q = -LOG_LEVELS-1 (weight 0), -LOG_LEVELS, ..., 0."""
    return _level_weights(LOG_STEP, LOG_LEVELS)


@functools.lru_cache(maxsize=None)
def _inverse_scales():
    """round(2^20 exp(-s SCALE_STEP)) for the log-scale levels s of `_SCALE_RANGE`."""
    lo, hi = _SCALE_RANGE
    step = decimal.Decimal(1) / decimal.Decimal(16)
    return np.array([int((_decimal_exp(-decimal.Decimal(s) * step) * (1 << 20)).to_integral_value())
                     for s in range(lo, hi + 1)], np.int64)


@functools.lru_cache(maxsize=None)
def _sigmoids():
    """round(2^32 sigmoid((i + 1/2) / 64)) for i in [-_SIGMOID_LIMIT, _SIGMOID_LIMIT)."""
    half = decimal.Decimal(1) / 2
    out = []
    for i in range(-_SIGMOID_LIMIT, _SIGMOID_LIMIT):
        t = (decimal.Decimal(i) + half) / 64
        with decimal.localcontext() as ctx:
            ctx.prec = 50
            s = 1 / (1 + _decimal_exp(-t))
        out.append(int((s * (1 << 32)).to_integral_value()))
    return np.array(out, np.int64)


# ------------------------------------------------------------------------------------------------- tables
def frequencies(weights, total=TOTAL):
    """Integer weights [..., K] (>= 0) -> integer frequencies [..., K] summing to `total`, each >= 1.

    f_k = 1 + floor(w_k (total - K) / sum(w)); the rest of `total` goes to the
    first largest weight. All-zero weights give a uniform table. Integer
    arithmetic only (weights up to 2^40, K up to 2^12).
    """
    w = np.asarray(weights, np.int64)
    k = w.shape[-1]
    if k > total // 2:
        raise ValueError(f"A table of {k} symbols needs more than {PRECISION} bits of precision.")
    s = w.sum(axis=-1, keepdims=True)
    if not (s > 0).all():
        w = np.where(s > 0, w, 1)
        s = np.where(s > 0, s, k)
    # w * (total - K) fits in int64: w <= 2^40, total - K < 2^21.
    f = w * (total - k)
    f //= s
    f += 1
    flat = f.reshape(-1, k)
    rows = np.arange(len(flat))
    top = np.argmax(w.reshape(-1, k), axis=-1)
    flat[rows, top] += total - flat.sum(axis=-1)
    return f


def static_frequencies(counts):
    """A static prior's table from code counts over a training split (`frequencies` of the counts)."""
    counts = np.asarray(counts, np.int64)
    if counts.ndim != 1 or (counts < 0).any():
        raise ValueError("counts must be a vector of non-negative integers.")
    scale = max(1, int(counts.sum()) >> 40)  # keep the weights within 2^40
    return frequencies(counts // scale)


QUANTISE_BLOCK = 1 << 15
"""Entries per block of `quantise_log_probs`: its dozen temporaries stay in the cache and in memory the process
already has (whole-array temporaries of a large grid cost more in fresh pages than in arithmetic)."""


def quantise_log_probs(log_probs, dtype=np.int64):
    """(frequencies [..., K] of `dtype`, ambiguous [...]) from normalised log-probabilities [..., K] (the module's
    rule), block by block of `QUANTISE_BLOCK` entries.

    `ambiguous` marks the positions with a value within `LOG_MARGIN` of a
    rounding boundary above the lowest level: the encoder escapes them.
    """
    log_probs = np.asarray(log_probs)
    k = log_probs.shape[-1]
    flat = log_probs.reshape(-1, k)
    out, ambiguous = np.empty(flat.shape, dtype), np.empty(len(flat), bool)
    rows = max(1, QUANTISE_BLOCK // max(k, 1))
    with np.errstate(invalid="ignore"):  # -inf - floor(-inf): nan, never ambiguous
        for a in range(0, len(flat), rows):
            out[a: a + rows], ambiguous[a: a + rows] = _quantise_block(flat[a: a + rows])
    return out.reshape(log_probs.shape), ambiguous.reshape(log_probs.shape[:-1])


def _quantise_block(log_probs):
    """`quantise_log_probs` of log-probabilities [m, K]: (int64 frequencies [m, K], ambiguous [m])."""
    x = np.asarray(log_probs, np.float64) / LOG_STEP
    if not np.isfinite(x).all():
        x = np.where(np.isnan(x), -np.inf, x)
    low = x < -(LOG_LEVELS + 1)
    frac = x - np.floor(x)
    ambiguous = (np.abs(frac - 0.5) < LOG_MARGIN / LOG_STEP) & ~low
    q = np.floor(np.where(low, -(LOG_LEVELS + 1), x) + 0.5)
    q = np.clip(q, -(LOG_LEVELS + 1), 0).astype(np.int64)
    return frequencies(_weights()[q + LOG_LEVELS + 1]), ambiguous.any(axis=-1)


def integer_logit_tables(logits, unit_bits, dtype=np.int64, out=None):
    """Integer frequencies [..., K] from integer logits [..., K] in units of 2^-`unit_bits` nats.

    The rule of context chunks, whose networks run on integers
    (`tfvq.codec.integer_net`): d = logit - max logit is rounded to a grid of
    2^-`INTEGER_STEP_BITS` nats, q = floor(d / step + 1/2) (an arithmetic
    shift), levels below -`INTEGER_LEVELS` get weight 0, and the weights are
    `round(2^40 exp(q step))` from `decimal`, then `frequencies` (every row has
    a weight 2^40, at its largest logit). Integers throughout, so there is
    nothing ambiguous and nothing to escape. Computed in blocks of
    `TABLE_ROWS` rows, which stay in the cache; `dtype` float64 gives the same
    integers as the range coder takes them; `out`: the array to fill (its
    dtype), the logits' shape.
    """
    logits = np.asarray(logits)
    shift = int(unit_bits) - INTEGER_STEP_BITS
    if shift < 1:
        raise ValueError(f"Logits in units of 2^-{unit_bits} are coarser than the 2^-{INTEGER_STEP_BITS} grid.")
    k = logits.shape[-1]
    if k > TOTAL // 2:
        raise ValueError(f"A table of {k} symbols needs more than {PRECISION} bits of precision.")
    weights = _level_weights(decimal.Decimal(1) / (1 << INTEGER_STEP_BITS), INTEGER_LEVELS)
    flat = logits.reshape(-1, k)
    out = np.empty(logits.shape, dtype) if out is None else out
    if out.shape != logits.shape or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous array of the logits' shape {logits.shape}.")
    whole = out
    out = out.reshape(-1, k)
    rows = max(1, min(TABLE_ROWS, len(flat)))
    d, w, scratch, freq = _block_scratch(rows, k)
    for a in range(0, len(flat), rows):
        block = flat[a: a + rows]
        m = len(block)
        q, weight, f = d[:m], w[:m], freq[:m]
        np.subtract(block, block.max(axis=-1, keepdims=True), out=q, casting="unsafe")
        q += (1 << (shift - 1)) + ((INTEGER_LEVELS + 1) << shift)  # q + INTEGER_LEVELS + 1, shifted up
        q >>= shift
        np.maximum(q, 0, out=q)  # levels below -INTEGER_LEVELS: weight 0
        np.take(weights, q, out=weight, mode="clip")
        # `frequencies` (every row has a positive sum); non-negative, so unsigned division gives the same
        # quotients as the signed floor division, faster
        total = weight.sum(axis=-1, keepdims=True)
        np.multiply(weight, TOTAL - k, out=scratch[:m])  # within int64: w <= 2^40, total - K < 2^21
        np.floor_divide(scratch[:m].view(np.uint64), total.view(np.uint64), out=f.view(np.uint64))
        f += 1
        f[np.arange(m), np.argmax(weight, axis=-1)] += TOTAL - f.sum(axis=-1)
        out[a: a + m] = f
    return whole


TABLE_ROWS = 128
"""Rows per block of `integer_logit_tables` (its blocks stay in the cache)."""
_SCRATCH = threading.local()


def _block_scratch(rows, k):
    """Four int64 [rows, K] arrays, the same from call to call on a thread (fresh pages cost more than the
    arithmetic that fills them)."""
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.shape[1] < rows * k:
        buf = _SCRATCH.buf = np.empty((4, max(rows, TABLE_ROWS) * k), np.int64)
    return tuple(b[: rows * k].reshape(rows, k) for b in buf)


def pixel_frequencies(loc, log_scale, num_bins=256):
    """(frequencies [..., 256], ambiguous [...]) of 8-bit pixels under a discretised logistic.

    The distribution of `tfvq.losses.discretized_logistic_log_prob` (bin v is
    [v/256, (v+1)/256), the edge bins take the tails), with the location
    rounded to `LOC_STEP` and the log-scale to `SCALE_STEP`, and its CDF
    computed with integers: t_v = (v/256 - loc) / scale in units of 2^-30,
    then the sigmoid from a table with step 1/64.
    """
    if num_bins != 256:
        raise ValueError("Only 8-bit pixels (256 bins) are coded.")
    a = np.asarray(loc, np.float64) / LOC_STEP
    b = np.asarray(log_scale, np.float64) / SCALE_STEP
    a = np.nan_to_num(a, nan=0.0, posinf=1e9, neginf=-1e9)
    b = np.nan_to_num(b, nan=0.0, posinf=1e9, neginf=-1e9)
    ambiguous = (np.abs(a - np.floor(a) - 0.5) < LOC_MARGIN / LOC_STEP) | (
        np.abs(b - np.floor(b) - 0.5) < SCALE_MARGIN / SCALE_STEP)
    lq = np.clip(np.floor(a + 0.5), *_LOC_RANGE).astype(np.int64)
    sq = np.clip(np.floor(b + 0.5), *_SCALE_RANGE).astype(np.int64)
    inv = _inverse_scales()[sq - _SCALE_RANGE[0]]  # 2^20 / scale
    edges = 4 * np.arange(1, num_bins, dtype=np.int64)  # v / 256 in units of LOC_STEP, v = 1..255
    # (edge - loc) / scale = D * LOC_STEP * inv / 2^20 = D * inv * 2^-30.
    t = (edges - lq[..., None]) * inv[..., None]
    index = np.clip(np.floor_divide(t, 1 << (_FIXED_BITS - _SIGMOID_STEP_BITS)), -_SIGMOID_LIMIT,
                    _SIGMOID_LIMIT - 1) + _SIGMOID_LIMIT
    cdf = _sigmoids()[index]
    shape = cdf.shape[:-1] + (1,)
    cdf = np.concatenate([np.zeros(shape, np.int64), cdf, np.full(shape, 1 << 32, np.int64)], axis=-1)
    mass = np.diff(cdf, axis=-1) >> 8  # <= 2^24 each: within `frequencies`' 2^40
    return frequencies(mass), ambiguous


# ------------------------------------------------------------------------------------------------ coding
def _categorical(table=None):
    if table is None:  # one table per symbol, given at each call
        return constriction.stream.model.Categorical(perfect=False)
    return constriction.stream.model.Categorical(np.asarray(table, np.float64), perfect=False)


def uniform_table(num_codes):
    """The uniform table over K codes (`frequencies` of equal weights): log2 K bits per code when K is a power
    of 2, fewer than ceil(log2 K) otherwise."""
    return frequencies(np.zeros(int(num_codes), np.int64))


class Encoder:
    """Symbols to range-code, call after call, with what they cost.

    The calls are kept, not coded at once: `bits` is their information
    content (-log2 of each symbol's frequency over `TOTAL`), which is what
    they add to a stream up to its last few bytes, so coders can be compared
    before the file's one stream is written (`extend` copies one encoder's
    calls into another). `bytes` codes them all with `constriction`'s range
    coder (`constriction.stream.queue`, a FIFO: they decode in the same order).
    """

    def __init__(self):
        self._calls = []
        self.bits = 0.0

    def _add(self, symbols, tables):
        symbols = np.ascontiguousarray(np.asarray(symbols).reshape(-1), np.int32)
        if not len(symbols):
            return
        tables = np.asarray(tables, np.float64)
        picked = tables[symbols] if tables.ndim == 1 else np.take_along_axis(
            tables.reshape(len(symbols), -1), symbols[:, None].astype(np.int64), -1)[:, 0]
        self.bits += float(-np.log2(picked / TOTAL).sum())
        self._calls.append((symbols, tables))

    def static(self, symbols, table):
        """Codes symbols [N] under one integer table [K]."""
        self._add(symbols, np.asarray(table, np.float64))

    def tables(self, symbols, tables):
        """Codes symbols [N] each under its own integer table [N, K]."""
        symbols = np.asarray(symbols).reshape(-1)
        self._add(symbols, np.ascontiguousarray(np.asarray(tables, np.float64).reshape(len(symbols), -1)))

    def escaped(self, symbols, tables, ambiguous, fallback):
        """Codes symbols [N] under `tables` [N, K], or under `fallback` [K] where `ambiguous` [N]
        (their escape flags must have been coded first, `flags`)."""
        ambiguous = np.asarray(ambiguous, bool).reshape(-1)
        tables = np.array(np.asarray(tables).reshape(len(ambiguous), -1), np.float64)  # a copy: ours to change
        tables[ambiguous] = fallback
        self.tables(symbols, tables)

    def flags(self, ambiguous):
        """Codes the escape flags [N] under `ESCAPE_FREQUENCIES`."""
        self.static(np.asarray(ambiguous, np.int32), np.array(ESCAPE_FREQUENCIES))

    def lazy(self, symbols, bits, chunks):
        """Codes symbols [N] under per-symbol tables that are made again when the stream is written, and not kept:
        `chunks()` yields integer tables [n_i, K] in order (sum n_i = N), `bits` is what they cost (`information`).
        What codes images of any size in the memory of one band (`tfvq.codec.bands`)."""
        symbols = np.ascontiguousarray(np.asarray(symbols).reshape(-1), np.int32)
        if len(symbols):
            self.bits += float(bits)
            self._calls.append((symbols, chunks))

    def lazy_pieces(self, pieces):
        """Codes what `pieces()` yields when the stream is written, and keeps none of it: (symbols [n], one
        integer table [K] or a table per symbol [n, K]) in order. Its bits are not counted (`bits` leaves them
        out): for a plan already chosen."""
        self._calls.append((None, pieces))

    @property
    def is_lazy(self):
        """True when some calls' tables are made again to write the stream (`lazy`, `lazy_pieces`)."""
        return any(callable(tables) for _, tables in self._calls)

    def extend(self, other):
        """Appends the calls of another encoder (its symbols follow these in the stream)."""
        self._calls.extend(other._calls)
        self.bits += other.bits

    def words(self):
        """The range-coded stream as uint32 words."""
        encoder = constriction.stream.queue.RangeEncoder()
        for symbols, tables in _pieces(self._calls):
            if tables.ndim == 1:
                encoder.encode(symbols, _categorical(tables))
            else:
                encoder.encode(symbols, _categorical(), tables)
        return np.asarray(encoder.get_compressed(), np.uint32)

    def bytes(self):
        """The range-coded stream as big-endian 32-bit words."""
        return self.words().astype(">u4").tobytes()

    def shortest(self):
        """The shortest bytes that decode to these symbols when zero bytes are put back after them
        (`stream_words`): the stream of a version 4 file.

        The range coder ends its stream with enough bits to name a point of
        its final interval; any shorter string inside that interval, read with
        zeros after it, decodes the same. Written by hand because `constriction`
        seals to whole words: for each length k from the coder's own stream
        down, the two k-byte strings next to it (its prefix, and the prefix
        plus one in the last byte) are tried by decoding them with the same
        tables, and the shortest that decodes every symbol is kept. A few
        bytes per file: what a small file is made of. Calls whose tables are
        made again (`lazy`: large images) are not tried, since every try would
        make them again: their stream is the coder's own, zero bytes dropped.
        """
        best = self.bytes().rstrip(b"\0")
        if self.is_lazy:
            return best
        for k in range(len(best) - 1, -1, -1):
            prefix = int.from_bytes(best[:k], "big")
            found = None
            for value in (prefix, prefix + 1):
                if value < 1 << 8 * k or (k == 0 and value == 0):
                    candidate = value.to_bytes(k, "big").rstrip(b"\0")
                    if self._decodes(candidate):
                        found = candidate
                        break
            if found is None:
                break
            best = found
        return best

    def _decodes(self, stream):
        """True if `stream` (zero bytes put back) decodes to exactly the symbols of every call."""
        decoder = constriction.stream.queue.RangeDecoder(stream_words(stream))
        try:
            for symbols, tables in self._calls:
                if tables.ndim == 1:
                    got = decoder.decode(_categorical(tables), len(symbols))
                else:
                    got = decoder.decode(_categorical(), tables)
                if not np.array_equal(np.asarray(got, np.int32), symbols):
                    return False
        except Exception:  # noqa: BLE001 (constriction refuses a stream it cannot decode: not this one)
            return False
        return True


def _pieces(calls):
    """(symbols, tables) of every call in order, the tables of `Encoder.lazy` calls made again chunk by chunk."""
    for symbols, tables in calls:
        if not callable(tables):
            yield symbols, tables
            continue
        if symbols is None:  # `Encoder.lazy_pieces`
            for symbols, table in tables():
                symbols = np.ascontiguousarray(np.asarray(symbols).reshape(-1), np.int32)
                table = np.ascontiguousarray(table, np.float64)
                if len(symbols):
                    yield symbols, table if table.ndim == 1 else table.reshape(len(symbols), -1)
            continue
        at = 0
        for chunk in tables():
            chunk = np.ascontiguousarray(chunk, np.float64).reshape(-1, chunk.shape[-1])
            yield symbols[at: at + len(chunk)], chunk
            at += len(chunk)
        if at != len(symbols):
            raise ValueError(f"Lazy tables gave {at} tables for {len(symbols)} symbols.")


def information(symbols, tables):
    """-sum log2 of each symbol's frequency over `TOTAL`, symbols [N] each under its table [N, K] (bits)."""
    symbols = np.asarray(symbols, np.int64).reshape(-1)
    tables = np.asarray(tables).reshape(len(symbols), -1)
    picked = np.take_along_axis(tables, symbols[:, None], -1)[:, 0].astype(np.float64)
    return float(-np.log2(picked / TOTAL).sum())


def stream_words(stream):
    """uint32 words of a stream whose trailing zero bytes were dropped: the zeros put back up to a whole word."""
    data = bytes(stream) + b"\0" * (-len(stream) % 4)
    return np.frombuffer(data, ">u4").astype(np.uint32)


def encode_symbols(symbols, table):
    """Range-codes symbols [N] under one integer table [K] -> bytes (big-endian 32-bit words)."""
    encoder = Encoder()
    encoder.static(symbols, table)
    return encoder.bytes()


class Decoder:
    """Decodes symbols from range-coded words, call after call, in the order they were coded.

    `data` is a chunk of whole big-endian 32-bit words (format version 3), or
    uint32 `words` (format version 4: `tfvq.codec.container.words`). Any
    error of the underlying decoder (a corrupt stream) is a `CodecError`
    naming `what`.
    """

    def __init__(self, data=None, what="", words=None):
        self.what = what
        if words is None:
            if len(data) % 4:
                raise CodecError(f"The {what} chunk is {len(data)} bytes, not whole 32-bit words: the file is "
                                 "corrupt.")
            words = np.frombuffer(bytes(data), ">u4").astype(np.uint32)
        try:
            self._decoder = constriction.stream.queue.RangeDecoder(np.asarray(words, np.uint32))
        except Exception as err:  # noqa: BLE001 (constriction's own errors: a corrupt stream)
            raise CodecError(f"The {what} is not a valid range-coded stream ({err}).") from None

    def _run(self, *args):
        try:
            return np.asarray(self._decoder.decode(*args), np.int32)
        except Exception as err:  # noqa: BLE001 (constriction's own errors: a corrupt stream)
            raise CodecError(f"The {self.what} could not be decoded ({err}): the file is corrupt.") from None

    def static(self, table, count):
        """`count` symbols under one table [K]."""
        return self._run(_categorical(table), int(count)) if count else np.zeros(0, np.int32)

    def tables(self, tables):
        """One symbol per table [N, K]."""
        if not len(tables):
            return np.zeros(0, np.int32)
        return self._run(_categorical(), np.ascontiguousarray(tables, np.float64))

    def flags(self, count):
        """The escape flags (bool [count]) coded by `Encoder.flags`."""
        return self.static(np.array(ESCAPE_FREQUENCIES), count).astype(bool)
