"""Large images in row bands: encode, probability tables and decode in the memory of one band.

A fully convolutional model (`code_stride()` not None) codes an image whole, padded to a multiple of its
stride. Above `BAND_PIXELS` pixels the codec does the same work band by band, so its memory stays that of
a band whatever the image's size:

* The networks (`encode`, `code_logits`, `decode`) run on windows of the padded image: a block of rows and
  columns (its core) and `HALO_CODES` codes of the coarsest layer involved on every side (rounded up to the
  model's stride), every window of one size, so one model per size (`with_image_shape`) serves them all.
  Each window's output is cut to its core. Convolutions see the same pixels or codes as in the whole image
  wherever the halo covers their receptive field (`HALO_CODES`). What can differ at a seam is float
  rounding: convolutions over windows of another size may add in another order, so a code whose two nearest
  codebook vectors tie to within rounding can change, and pixels can differ by a grey level.
* Each layer's tables are built per band of its grid (`TABLE_ENTRIES` positions x K at most), never as one
  [positions, K] array. Context priors (`tfvq.codec.context`) are integer networks of known depth: a band
  with `ContextPriors.halo` rows of codes above and below gives exactly the tables of the whole grid. The
  model's own probabilities (`code_logits`) come from the windows above; they round to the same integer
  tables as the whole grid's unless they lie within the entropy coder's margins of a rounding boundary
  (`tfvq.codec.entropy`), and the encoder and the decoder cut the same bands, so a file decodes exactly
  either way (the file's CRC-32 checks it).
* The stream is the whole grid's: bands are rows in raster order, so symbols coded band after band follow
  the order of a whole layer (`tfvq.codec.coding`); the escape flags of a MODEL layer come first, the
  symbols after. The encoder keeps no tables: it counts their bits band by band and makes them again to
  write the one stream it keeps (`entropy.Encoder.lazy`).

Models that code in tiles (RRVQ-VAE) already work on tiles: their large images take batches of tiles.
"""

import dataclasses

import numpy as np

from tfvq.codec import entropy
from tfvq.codec.context import PASS_OF, PASSES

BAND_PIXELS = 1 << 17
"""Images of more pixels than this (padded, per image) are coded in bands; smaller ones whole, as always."""
SAMPLE_PIXELS = 1 << 16
"""`auto` chooses a big image's plan on its central crop of at most this many pixels (coded whole)."""
NET_ENTRIES = 1 << 22
"""A window's core holds at most this many positions x K of the finest grid whose distances it computes."""
WINDOW_PIXELS = 1 << 20
"""... and at most this many pixels (the activations of its first layers)."""
LOG_PROB_ENTRIES = 1 << 24
"""The model's log-probabilities (float32) of one band of rows of a layer: at most this many positions x K."""
TABLE_ENTRIES = 1 << 21
"""Probability tables are built in pieces of at most this many entries (positions x K)."""
HALO_CODES = 4
"""A window's context on each side, in codes of the coarsest layer involved (rounded up to the model's stride):
the bundled HQA encoders see 3 (2^l - 1) < 3 2^l pixels to a side at layer l, decoding from layer l sees
fewer than 4 codes of it (124 pixels from `hqa_mnist`'s layer 5), a layer's probabilities 2 codes above."""
TILE_BATCH = 256
"""Tiles per model call for a large image of a tiled model."""


@dataclasses.dataclass(frozen=True)
class Band:
    """Rows [lo, hi) of a window around its core rows [start, stop)."""

    lo: int
    hi: int
    start: int
    stop: int

    def cut(self, stride=1):
        """The core's rows within the window's output at `stride` rows per output row."""
        return slice((self.start - self.lo) // stride, (self.stop - self.lo) // stride)

    def rows(self, stride=1):
        return slice(self.lo // stride, self.hi // stride)

    def core(self, stride=1):
        return slice(self.start // stride, self.stop // stride)


def row_bands(total, core, halo, align=1, multiple=None):
    """Bands covering rows 0..total: cores of `core` rows, windows of the core and at least `halo` rows on each
    side, every window of one height, a multiple of `multiple` (moved inside the rows at the edges); rows start
    on multiples of `align` (`total` must be one of both). One band of everything when that fits one window."""
    multiple = multiple or align
    core = max(align, core // align * align)
    halo = -(-halo // align) * align
    height = -(-(core + 2 * halo) // multiple) * multiple
    if total <= height:
        return [Band(0, total, 0, total)]
    above = halo + (height - core - 2 * halo) // 2 // align * align
    out = []
    for start in range(0, total, core):
        lo = min(max(start - above, 0), total - height)
        out.append(Band(lo, lo + height, start, min(start + core, total)))
    return out


def is_banded(padded, tile):
    """Whether images padded to `padded` (H, W) are coded in bands (tiled models: in batches of tiles)."""
    return padded[0] * padded[1] > BAND_PIXELS


class Banding:
    """The windows of a fully convolutional `model` for images padded to `padded` (H, W); `sized(height, width)`
    gives the model for windows of that size (`tfvq.codec.coding.Geometry.sized_for`)."""

    def __init__(self, model, padded, sized):
        self.model, self.padded, self.sized = model, tuple(padded), sized
        layout = model.code_layout()
        self.layout = layout
        self.strides = [model.code_stride(l) for l in range(1, layout.num_layers + 1)]
        self.top = model.code_stride()

    def stride(self, layer):
        return self.strides[layer - 1]

    def grid(self, layer):
        s = self.stride(layer)
        return self.padded[0] // s, self.padded[1] // s

    def _halo(self, coarsest):
        return HALO_CODES * self.stride(coarsest)

    def _per_pixel(self, finest):
        return self.layout.num_codes[finest - 1] / self.stride(finest) ** 2

    def windows(self, finest, coarsest, rows=None):
        """[(row Band, column Band)] of windows covering the image (or the row band `rows` of it) for a network
        whose [positions, K] tensors are on layer `finest`'s grid and that reads layer `coarsest`: cores of
        at most `NET_ENTRIES` and `WINDOW_PIXELS`, every window of one size."""
        halo, align = self._halo(coarsest), self.stride(coarsest)
        pixels = min(NET_ENTRIES / self._per_pixel(finest), WINDOW_PIXELS)
        side = max(self.top, int(pixels ** 0.5))
        bands_ = row_bands(self.padded[0], side, halo, align, self.top) if rows is None else [rows]
        height = bands_[0].stop - bands_[0].start
        col_bands = row_bands(self.padded[1], max(self.top, int(pixels // height)), halo, align, self.top)
        return [(r, c) for r in bands_ for c in col_bands]

    def _window(self, image, r, c, stride):
        return (slice(image, image + 1), r.rows(stride), c.rows(stride))

    # ---- encoding
    def encode(self, x, layers, encode):
        """{layer: int32 [n, h, w]} of every layer in `layers` for padded images x [n, H, W, C]:
        `encode(model, images, start)` (the codes of `layout.layers_sent(start)`) window by window."""
        layout = self.layout
        out = {l: np.zeros((len(x), *self.grid(l)), np.int32) for l in layers}
        starts = [min(layers)] if layout.cumulative else sorted(layers)
        for start in starts:
            sent = layout.layers_sent(start)
            for i in range(len(x)):
                for r, c in self.windows(min(sent), max(sent)):
                    codes = encode(self.sized(r.hi - r.lo, c.hi - c.lo), x[self._window(i, r, c, 1)], start)
                    codes = codes if isinstance(codes, (list, tuple)) else [codes]
                    for l, code in zip(sent, codes):
                        if l in layers:
                            s = self.stride(l)
                            out[l][i, r.core(s), c.core(s)] = np.asarray(code)[0, r.cut(s), c.cut(s)]
        return out

    # ---- the model's probabilities of a layer given the layer above
    def log_prob_bands(self, codes, layer, image):
        """(rows of layer `layer`'s grid, log p [1, rows, w, K]) band by band for one image: `code_logits` of the
        codes of `layout.layers_sent(layer + 1)` window by window; (None, None) if the model gives none."""
        sent = self.layout.layers_sent(layer + 1)
        s, (_, w), k = self.stride(layer), self.grid(layer), self.layout.num_codes[layer - 1]
        rows = max(self.stride(layer + 1), int(LOG_PROB_ENTRIES // (w * k)) * s)
        for band in row_bands(self.padded[0], rows, self._halo(layer + 1), self.stride(layer + 1), self.top):
            out = np.zeros((1, (band.stop - band.start) // s, w, k), np.float32)
            for r, c in self.windows(layer, layer + 1, band):
                context = [codes[l][self._window(image, r, c, self.stride(l))] for l in sent]
                lp = self.sized(r.hi - r.lo, c.hi - c.lo).code_logits(context, layer + 1)
                if lp is None:
                    yield None, None
                    return
                out[:, :, c.core(s)] = np.asarray(lp)[:, r.cut(s), c.cut(s)]
            yield band.core(s), out

    # ---- decoding
    def decode(self, codes, stop, seed, images, channels):
        """uint8 [images, H, W, C]: `decode` of the codes of `layout.layers_sent(stop)`, window by window."""
        sent = self.layout.layers_sent(stop)
        out = np.zeros((images, *self.padded, channels), np.uint8)
        for i in range(images):
            for r, c in self.windows(1, max(sent)):
                window = [codes[l][self._window(i, r, c, self.stride(l))] for l in sent]
                y = self.sized(r.hi - r.lo, c.hi - c.lo).decode(window, stop, stochastic=seed is not None,
                                                                 seed=seed, dtype="uint8")
                out[i, r.core(), c.core()] = np.asarray(y)[0, r.cut(), c.cut()]
        return out


# ---- context priors, band by band
def context_bands(context, layer, grid):
    """Bands of layer `layer`'s grid (h, w) for its context prior: cores of at most `TABLE_ENTRIES` entries
    per pass, with the prior's halo."""
    halo, align = context.halo(layer)
    h, w = grid
    core = PASSES * TABLE_ENTRIES // max(w * context.num_codes(layer), 1)
    return row_bands(h, core, halo, align) if h % align == 0 else [Band(0, h, 0, h)]


def context_tables(context, layer, codes, above, upto, band):
    """The tables [m, K] of pass `upto` at the core rows of `band` of one grid (codes [1, h, w]; above
    [1, h', w'] or None), in C order: those of the whole grid (`ContextPriors.tables`, `halo`)."""
    factor = 1 if above is None else codes.shape[1] // above.shape[1]
    window = codes[:, band.lo: band.hi]
    above_window = None if above is None else above[:, band.lo // factor: band.hi // factor]
    tables = context.tables(layer, window, above_window, upto, rows=(band.start - band.lo, band.stop - band.lo))
    return tables.reshape(-1, tables.shape[-1])


def pass_positions(grid, band, upto):
    """bool [stop - start, w]: the positions of pass `upto` in the core rows of `band` (`pass_map` of those rows
    alone: a band's work stays that of its rows)."""
    rows = np.arange(band.start, band.stop)[:, None] % 2
    return PASS_OF[rows, np.arange(grid[1])[None, :] % 2] == upto


def escaped_tables(tables, escaped, fallback):
    """`tables` [m, K] as float64 with the escaped rows under `fallback` [K] (float64 tables are changed in
    place)."""
    tables = np.asarray(tables, np.float64).reshape(len(escaped), -1)
    tables[np.asarray(escaped, bool)] = fallback
    return tables


def quantised_pieces(log_probs, k):
    """(tables [m, K], ambiguous [m]) of log-probabilities [..., K] (`entropy.quantise_log_probs`), piece by
    piece of at most `TABLE_ENTRIES` entries, in C order."""
    flat = np.asarray(log_probs).reshape(-1, k)
    step = max(1, TABLE_ENTRIES // k)
    for a in range(0, len(flat), step):
        yield entropy.quantise_log_probs(flat[a: a + step], np.float64)
