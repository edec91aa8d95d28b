"""A context network run in integer arithmetic: the same logits, bit for bit, on every machine.

A range decoder must see exactly the tables the encoder used. Floating-point
networks do not give them: summation order, fused multiply-adds and kernel
libraries change the last bits (oneDNN on and off differ by about 4e-5 nats
on the bundled context networks), and a table rounded from such a value can
come out differently on the two sides. Ballé, Johnston and Minnen (2019,
"Integer networks for data compression with latent-variable models", ICLR)
remove the problem at its root: the entropy model's network runs on
integers, so its outputs are defined by the weights alone. This module does
that for `tfvq.codec.context_net.ContextNet` (the fitted float network is
converted after training, as their post-training variant):

* embeddings and activations are integers in units of 2^-`ACT_BITS`;
* every kernel is rounded to integers in units of 2^-`WEIGHT_BITS`, every
  bias to the accumulator's units 2^-(`ACT_BITS` + `WEIGHT_BITS`);
* a convolution accumulates integer products; the result is floored back
  to activation units (an exact shift), ReLU'd and clipped to
  [0, 2^`ACT_LIMIT_BITS`);
* the logits come out as integers in units of 2^-`ACT_BITS` nats.

The products are summed in float64 (NumPy's matrix product, sums of table
rows), which is exact here whatever the order or the BLAS: every product and
every partial sum of a layer is an integer below 2^53 (`from_weights` checks
the bound from the actual weights). So the logits are a function of the
weights and the inputs only, however the sums are grouped. The evaluation
uses that freedom:

* The first 3x3 convolution reads embeddings of integer codes, so it is a sum
  of table rows: for each of its nine offsets, the embedding table times that
  offset's kernel (`own @ kernel[d]`: each entry a sum of some of the products
  the convolution adds). A position's sum is the bias, nine rows of the
  own-code tables and, for the layer above's codes (repeated `factor` times),
  one row for each cell of the coarser grid its 3x3 neighbourhood covers (four
  for a factor of 2): the offsets that fall in one cell are summed into one
  table per cell and phase of the factor. A parity class of the grid (a 2x2
  sublattice) whose codes are all unknown adds the unknown symbol's rows as a
  constant, so a pass of the checkerboard schedule (`tfvq.codec.context`)
  gathers only the codes known so far.
* Later layers are evaluated only where they are needed: the last 3x3
  convolution and the 1x1 layers at the positions asked for (`at`), each 3x3
  layer before it on those positions' rows and columns and one more on each
  side per layer still to come.

The matrix products run on one BLAS thread (`one_blas_thread`): they have a
thousand rows at a time, and OpenBLAS's threads cost more than they save on
busy cores (a pass over a 16x16 layer took 16 ms on two threads and 1.3 ms on
one, on 2 busy cores); `tfvq.codec.context` runs a large pass on two threads
instead, each for a part of its rows. Nothing here needs TensorFlow: a
context-coded file decodes with NumPy.

The float network is rounded, not retrained: at these resolutions its logits
move by about 1e-3 nats, which costs a small fraction of a bit per image.
"""

import contextlib
import functools
import math
import threading

import numpy as np
import threadpoolctl

ACT_BITS = 12
"""Activations and logits are integers in units of 2^-ACT_BITS."""
WEIGHT_BITS = 14
"""Kernels are integers in units of 2^-WEIGHT_BITS."""
ACT_LIMIT_BITS = 24
"""Activations are clipped to [0, 2^ACT_LIMIT_BITS) units, i.e. below 4096: a bound for `from_weights`'s check."""
_EXACT = 2.0 ** 53


def _rint(x, bits):
    """round(x 2^bits) to the nearest integer (ties to even) as float64: exact for float32 x."""
    return np.rint(np.asarray(x, np.float64) * (2.0 ** bits))


def _span(start, stop, phase, step):
    """(first, count) of the positions p in [start, stop) with p % step == phase."""
    first = start + (phase - start) % step
    return first, max(0, -(-(stop - first) // step))


def _grow(span, margin, size):
    return max(0, span[0] - margin), min(size, span[1] + margin)


def _padded(x, spans, want):
    """x [n, rows, cols, c] on the grid region `spans` ((r0, r1), (c0, c1)), with zeros up to the larger region
    `want` (positions outside the grid: the convolutions' zero padding)."""
    (r, c), (wr, wc) = spans, want
    return np.pad(x, ((0, 0), (r[0] - wr[0], wr[1] - r[1]), (c[0] - wc[0], wc[1] - c[1]), (0, 0)))


@functools.cache
def _blas():
    """The process's `threadpoolctl.ThreadpoolController` (made once: it looks up the loaded libraries)."""
    return threadpoolctl.ThreadpoolController()


_LIMIT = {"lock": threading.Lock(), "depth": 0, "limiter": None}


@contextlib.contextmanager
def one_blas_thread():
    """BLAS on one thread while any thread is inside (the first one in sets it, the last one out restores it)."""
    with _LIMIT["lock"]:
        if not _LIMIT["depth"]:
            _LIMIT["limiter"] = _blas().limit(limits=1, user_api="blas")
        _LIMIT["depth"] += 1
    try:
        yield
    finally:
        with _LIMIT["lock"]:
            _LIMIT["depth"] -= 1
            if not _LIMIT["depth"]:
                _LIMIT.pop("limiter").restore_original_limits()
                _LIMIT["limiter"] = None


CHUNK = 1024
"""Positions per block (of the first layer's sums, and of the layers after it): a block's products and
activations stay in the cache."""


def _scratch(store, name, shape, dtype=np.float64):
    """A [shape] view of the buffer `name` of `store`, reused from block to block (fresh pages cost more than
    the sums that fill them)."""
    size = math.prod(shape)
    buf = store.get(name)
    if buf is None or buf.size < size or buf.dtype != dtype:
        buf = store[name] = np.empty(size, dtype)
    return buf[:size].reshape(shape)


class IntegerContextNet:
    """`ContextNet`'s function on integers (see the module doc). Build with `from_weights`.

    Attributes:
      num_codes, above_codes, factor: as `ContextNet`'s.
    """

    def __init__(self, num_codes, above_codes, factor, own, above, convs, mix, logits):
        self.num_codes, self.above_codes, self.factor = int(num_codes), above_codes, int(factor)
        self._own, self._above, self._convs, self._mix, self._logits = own, above, convs, mix, logits
        if convs:
            self._rows, self._own_rows, self._above_rows = self._first_tables()

    def _first_tables(self):
        """The first convolution as rows of one table (module doc): for each offset d, (dy, dx) = (d // 3 - 1,
        d % 3 - 1), the row of each code and of the unknown symbol K, then a zero row (outside the grid); for
        each phase of the layer above's factor, the rows of each cell of the layer above it sees (at most four),
        each its above codes' rows, then zeros. As (table [rows, width], first row of each offset,
        {(phase y, phase x): [((cell dy, cell dx), first row)]})."""
        kernel, _ = self._convs[0]
        embed = self._own.shape[1]
        channels = embed + (0 if self._above is None else self._above.shape[1])
        kernel = kernel.reshape(9, channels, -1)
        zero = np.zeros((1, kernel.shape[-1]))
        blocks = [np.concatenate([self._own @ kernel[d, :embed], zero]) for d in range(9)]
        own = [d * len(blocks[0]) for d in range(9)]
        phases = {}
        if self._above is not None:
            above = [np.concatenate([self._above @ kernel[d, embed:], zero]) for d in range(9)]
            f = self.factor
            for py in range(f):
                for px in range(f):
                    cells = {}
                    for d in range(9):
                        cell = ((py + d // 3 - 1) // f, (px + d % 3 - 1) // f)
                        cells[cell] = above[d] if cell not in cells else cells[cell] + above[d]
                    phases[py, px] = []
                    for cell, rows in sorted(cells.items()):
                        phases[py, px].append((cell, sum(len(b) for b in blocks)))
                        blocks.append(rows)
        return np.concatenate(blocks), own, phases

    @classmethod
    def from_weights(cls, config, weights):
        """The integer network of a `ContextNet` with `config` (`net_config`) and `weights` (`get_weights()`).

        Raises:
          ValueError: weights so large that a sum could leave float64's exact integers (never for a
            fitted network: the bound is about 2^47 for weights below 64).
        """
        weights = [np.asarray(w, np.float32) for w in weights]
        if not all(np.isfinite(w).all() for w in weights):
            raise ValueError("The context network has non-finite weights; refit it.")
        has_above = config.get("above_codes") is not None
        own = _rint(weights[0], ACT_BITS)
        above = _rint(weights[1], ACT_BITS) if has_above else None
        rest = weights[2 if has_above else 1:]
        # a layer's inputs: the embeddings for the first, activations below 2^ACT_LIMIT_BITS for the others
        largest = max(2.0 ** ACT_LIMIT_BITS, *(np.abs(e).max(initial=0) for e in (own, above) if e is not None))
        layers = []
        for kernel, bias in zip(rest[0::2], rest[1::2]):
            k = _rint(kernel.reshape(-1, kernel.shape[-1]), WEIGHT_BITS)
            b = _rint(bias, ACT_BITS + WEIGHT_BITS)
            bound = k.shape[0] * largest * np.abs(k).max(initial=0) + np.abs(b).max(initial=0)
            if bound >= _EXACT:
                raise ValueError(f"A context network layer's weights (largest {np.abs(kernel).max():.3g}) are too "
                                 "large for exact integer sums; refit the network.")
            layers.append((k, b))
            largest = 2.0 ** ACT_LIMIT_BITS
        depth = int(config["depth"])
        if len(layers) != depth + 2:
            raise ValueError(f"Expected {depth + 2} convolutions for depth {depth}, got {len(layers)} weight pairs.")
        return cls(config["num_codes"], config.get("above_codes"), config.get("factor", 1), own, above,
                   layers[:depth], layers[depth], layers[depth + 1])

    @staticmethod
    def _dense(x, layer, out, relu=True):
        """A layer on x [m, inputs] into `out` [m, outputs] (float64): exact integers below 2^53 (`from_weights`)."""
        k, b = layer
        np.matmul(x, k, out=out)
        out += b
        return IntegerContextNet._activate(out, relu)

    @staticmethod
    def _activate(acc, relu=True):
        """Accumulators (units of 2^-(ACT_BITS + WEIGHT_BITS)) -> activations, in place."""
        acc *= 2.0 ** -WEIGHT_BITS  # back to activation units (a power of two: exact)
        np.floor(acc, out=acc)
        return np.clip(acc, 0, 2.0 ** ACT_LIMIT_BITS - 1, out=acc) if relu else acc

    def logits(self, known, above=None, at=None, then=None, dtype=np.int64):
        """int64 logits [n, h, w, K] in units of 2^-`ACT_BITS` nats, from the network's inputs (as `ContextNet`);
        with a bool mask `at` [h, w], only those positions' logits: [n, at.sum(), K]. `then(logits, out)`: what to
        keep of each block of logits (float64 [b, K], integers) instead, written to `out` [b, K] of `dtype` (the
        tables they make, say: the logits never leave the cache)."""
        known = np.asarray(known, np.intp)
        n, h, w = known.shape
        if self._above is not None:
            above = np.asarray(above, np.intp)
            if above.shape != (n, h // self.factor, w // self.factor) or h % self.factor or w % self.factor:
                raise ValueError(f"The codes above are {above.shape}; a grid of {(n, h, w)} needs "
                                 f"{(n, h // self.factor, w // self.factor)} (factor {self.factor}).")
        with one_blas_thread():
            if at is None:
                return self._logits_at(known, above, np.ones((h, w), bool), then, dtype).reshape(n, h, w, -1)
            return self._logits_at(known, above, np.asarray(at, bool), then, dtype)

    def _logits_at(self, known, above, at, then, dtype):
        n, h, w = known.shape
        ys, xs = np.nonzero(at)
        out = np.empty((n, len(ys), self.num_codes), dtype)
        if not len(ys):
            return out
        scratch = {}
        depth = len(self._convs)
        if depth == 0:  # no 3x3 layer: the embeddings themselves, at `at`
            x = self._own[known[:, ys, xs]]
            if self._above is not None:
                x = np.concatenate([x, self._above[above[:, ys // self.factor, xs // self.factor]]], axis=-1)
            return self._head(x.reshape(n * len(ys), -1), out, scratch, then)
        box = ((int(ys.min()), int(ys.max()) + 1), (int(xs.min()), int(xs.max()) + 1))
        # layer j is needed on the box and depth - 1 - j more rows and columns on every side (within the grid)
        spans = [tuple(_grow(s, depth - 1 - j, size) for s, size in zip(box, (h, w))) for j in range(depth)]
        x = self._first(known, above, spans[0], scratch)
        if depth == 1:  # the first layer is the last 3x3 one: its activations at `at`
            return self._head(x[:, ys - box[0][0], xs - box[1][0]].reshape(n * len(ys), -1), out, scratch, then)
        for j in range(1, depth - 1):
            want = tuple((s[0] - 1, s[1] + 1) for s in spans[j])
            x = self._conv3(_padded(x, spans[j - 1], want), self._convs[j])
        # the last 3x3 layer at `at`: the 3x3 neighbourhood of each position, in the kernel's (dy, dx, c) order
        want = tuple((s[0] - 1, s[1] + 1) for s in box)
        p = _padded(x, spans[-2], want)
        rows, cols, c = p.shape[1:]
        flat = ((ys - want[0][0]) * cols + (xs - want[1][0]))[:, None] + np.array(
            [(d // 3 - 1) * cols + (d % 3 - 1) for d in range(9)])
        flat = (np.arange(n)[:, None, None] * (rows * cols) + flat).reshape(-1, 9)  # image by image
        p = p.reshape(-1, c)
        kernel = self._convs[-1][0]

        def last(a, b):
            cells = _scratch(scratch, "cells", (b - a, 9, c))
            np.take(p, flat[a: b], axis=0, out=cells, mode="clip")
            return self._dense(cells.reshape(b - a, -1), self._convs[-1],
                               _scratch(scratch, "conv", (b - a, kernel.shape[1])))

        return self._head(last, out, scratch, then)

    def _head(self, x, out, scratch, then):
        """The 1x1 layers into `out` [n, m, K] (the logits, or `then` of them), block by block: x [n m, c], or a
        function of a block's (start, stop) that gives its activations."""
        out_flat = out.reshape(-1, out.shape[-1])
        for a in range(0, len(out_flat), CHUNK):
            b = min(a + CHUNK, len(out_flat))
            h = x(a, b) if callable(x) else x[a: b]
            h = self._dense(h, self._mix, _scratch(scratch, "mix", (b - a, self._mix[0].shape[1])))
            logits = self._dense(h, self._logits, _scratch(scratch, "logits", (b - a, self.num_codes)), relu=False)
            if then is None:
                out_flat[a: b] = logits
            else:
                then(logits, out_flat[a: b])
        return out

    def _conv3(self, p, layer):
        """A 3x3 layer on every position of p [n, rows + 2, cols + 2, c] but its border: [n, rows, cols, width]."""
        n, rows, cols, c = p.shape
        rows, cols = rows - 2, cols - 2
        cells = np.concatenate([p[:, dy: dy + rows, dx: dx + cols] for dy in range(3) for dx in range(3)], axis=-1)
        out = np.empty((n * rows * cols, layer[0].shape[1]))
        return self._dense(cells.reshape(-1, 9 * c), layer, out).reshape(n, rows, cols, -1)

    def _first(self, known, above, spans, scratch):
        """The first layer's activations [n, rows, cols, width] on the region `spans` ((r0, r1), (c0, c1)) of the
        grid: sums of rows of `_first_tables` (module doc), the order of no consequence (exact integers)."""
        n, h, w = known.shape
        (r0, r1), (c0, c1) = spans
        k, table, own_rows = self.num_codes, self._rows, self._own_rows
        width = table.shape[-1]
        bias = self._convs[0][1]
        f = 1 if self._above is None else self.factor
        step = f * 2 // math.gcd(f, 2)  # the phases: positions alike modulo `step` in both axes
        # own codes of rows r0 - 1 .. r1, columns c0 - 1 .. c1; K + 1 (the zero row) outside the grid
        codes = np.full((n, r1 - r0 + 2, c1 - c0 + 2), k + 1, np.intp)
        codes[:, max(r0 - 1, 0) - r0 + 1: min(r1 + 1, h) - r0 + 1, max(c0 - 1, 0) - c0 + 1: min(c1 + 1, w) - c0 + 1] \
            = known[:, max(r0 - 1, 0): min(r1 + 1, h), max(c0 - 1, 0): min(c1 + 1, w)]
        # a parity class of the grid whose codes there are all unknown adds the unknown symbol's rows
        unknown = {(qy, qx): bool((codes[:, (qy - r0 + 1) % 2:: 2, (qx - c0 + 1) % 2:: 2] >= k).all())
                   for qy in range(2) for qx in range(2)}
        if self._above is not None:
            cells = np.pad(above, ((0, 0), (1, 1), (1, 1)), constant_values=len(self._above))
        out = np.empty((n, r1 - r0, c1 - c0, width))
        for py in range(step):
            y, ny = _span(r0, r1, py, step)
            for px in range(step):
                x, nx = _span(c0, c1, px, step)
                if not ny or not nx:
                    continue
                gathered, constant = [], {}
                for d in range(9):
                    dy, dx = d // 3 - 1, d % 3 - 1
                    if unknown[(py + dy) % 2, (px + dx) % 2]:  # K inside the grid, nothing outside
                        constant[dy, dx] = table[own_rows[d] + k]
                    else:
                        gathered.append((codes[:, y - r0 + 1 + dy:: step, x - c0 + 1 + dx:: step], own_rows[d]))
                if self._above is not None:
                    for (dy, dx), first in self._above_rows[py % f, px % f]:
                        gathered.append((cells[:, y // f + 1 + dy:: step // f, x // f + 1 + dx:: step // f], first))
                # the bias and the constant rows, by where a position is: first row or column of the grid (1),
                # last (2), both (3) or neither (0)
                sums = np.empty((4, 4, width))
                for ry in range(4):
                    for rx in range(4):
                        s = bias
                        for (dy, dx), row in constant.items():
                            if not (dy < 0 and ry & 1 or dy > 0 and ry & 2 or dx < 0 and rx & 1 or dx > 0 and rx & 2):
                                s = s + row
                        sums[ry, rx] = s
                sums = sums.reshape(16, width)
                ys = np.arange(y, y + step * ny, step)
                xs = np.arange(x, x + step * nx, step)
                where = ((ys == 0) + 2 * (ys == h - 1))[:, None] * 4 + ((xs == 0) + 2 * (xs == w - 1))[None, :]
                rows = max(1, CHUNK // (n * nx))
                for a in range(0, ny, rows):
                    m = min(rows, ny - a)
                    g = len(gathered)
                    index = _scratch(scratch, "index", (g, n, m, nx), np.intp)
                    for i, (source, first) in enumerate(gathered):
                        np.add(source[:, a: a + m, :nx], first, out=index[i])
                    rows_of = _scratch(scratch, "rows", (g + 1, n, m, nx, width))
                    np.take(table, index, axis=0, out=rows_of[:g], mode="clip")
                    np.take(sums, np.broadcast_to(where[a: a + m], (n, m, nx)), axis=0, out=rows_of[g], mode="clip")
                    part = np.add.reduce(rows_of, axis=0, out=_scratch(scratch, "part", (n, m, nx, width)))
                    ya = y - r0 + step * a
                    out[:, ya: ya + step * m: step, x - c0:: step] = self._activate(part)
        return out
