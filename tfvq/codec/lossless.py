"""A lossless file's pixels: coded after the codes, under the model's discretised logistic p(x | z).

RRVQ App. C's p(x | z) (`CodeModel.pixel_likelihood`) gives each pixel a location and a log-scale; their
integer tables are `tfvq.codec.entropy.pixel_frequencies`. Per group of `GROUP` images the stream holds
the escape flags of every pixel, then the pixels (raster order, [N, H, W, C]). Big images
(`tfvq.codec.bands`) are coded rows of tiles at a time, their tables made again for the stream.
"""

import numpy as np

from tfvq.codec import bands, entropy
from tfvq.codec.errors import CodecError
from tfvq.codec.images import from_tiles

GROUP = 16
"""A MODEL layer or the pixels are coded in groups of GROUP grids (images): each group's escape flags, then its
symbols (part of the format: the decoder reads them in the same order)."""


def _likelihood(model, codes_sent, layer, first, last, padded, tile, height, width):
    """(loc, log_scale) [last - first, H, W, C] of p(x | z) for images first..last-1, cropped to their size."""
    per = 1 if tile is None else (padded[0] // tile[0]) * (padded[1] // tile[1])
    out = model.pixel_likelihood([c[first * per: last * per] for c in codes_sent], layer)
    if out is None:
        return None
    loc, scale = np.asarray(out[0]), np.asarray(out[1])
    if tile is not None:
        loc, scale = (from_tiles(v, last - first, *padded) for v in (loc, scale))
    return loc[:, :height, :width], scale[:, :height, :width]


_UNIFORM_PIXELS = entropy.uniform_table(256)
_NO_LIKELIHOOD = ("This model has no pixel likelihood p(x | z) (`pixel_likelihood` is None), so it cannot code "
                  "images losslessly; drop --lossless, or use a density model such as rrvq_digits.")


def _pixel_pieces(model, codes_sent, layer, a, b, padded, tile, height, width):
    """(tables [m, 256], ambiguous [m]) of the pixels of big images a..b-1 in C order, rows of tiles at a time
    and in pieces of `bands.TABLE_ENTRIES` (tiled models; a fully convolutional one gives its whole images)."""
    if tile is None:
        params = _likelihood(model, codes_sent, layer, a, b, padded, tile, height, width)
        pieces = [params]
    else:
        step = max(1, bands.TILE_BATCH // (padded[1] // tile[1]))
        pieces = _tile_row_likelihoods(model, codes_sent, layer, a, b, padded, tile, height, width, step)
    for params in pieces:
        if params is None:
            raise CodecError(_NO_LIKELIHOOD)
        loc, scale = (v.reshape(-1) for v in params)
        at = max(1, bands.TABLE_ENTRIES // 256)
        for i in range(0, len(loc), at):
            yield entropy.pixel_frequencies(loc[i: i + at], scale[i: i + at])


def _tile_row_likelihoods(model, codes_sent, layer, a, b, padded, tile, height, width, step):
    """p(x | z)'s (loc, log_scale) of images a..b-1, `step` rows of tiles at a time, cropped to their size."""
    per_row, rows = padded[1] // tile[1], padded[0] // tile[0]
    for i in range(a, b):
        for r in range(0, rows, step):
            r1 = min(r + step, rows)
            first, last = (i * rows + r) * per_row, (i * rows + r1) * per_row
            out = model.pixel_likelihood([c[first:last] for c in codes_sent], layer)
            if out is None:
                yield None
                return
            top, bottom = r * tile[0], min(r1 * tile[0], height)
            if top >= height:
                continue
            yield tuple(from_tiles(np.asarray(v), 1, (r1 - r) * tile[0], padded[1])[:, :bottom - top, :width]
                        for v in out)


def code_pixels(encoder, model, codes_sent, layer, images, padded, tile, big=False):
    """Adds the pixels uint8 [N, H, W, C] to `encoder` under p(x | z) (per group: escape flags, pixels); `big`
    images piece by piece, keeping no tables (`entropy.Encoder.lazy`)."""
    n, height, width, _ = images.shape
    if big:
        for a in range(0, n, GROUP):
            b = min(a + GROUP, n)
            symbols, flags, bits, at = images[a:b].ravel(), [], 0.0, 0
            for tables, ambiguous in _pixel_pieces(model, codes_sent, layer, a, b, padded, tile, height, width):
                m = len(tables)
                bits += entropy.information(symbols[at: at + m], bands.escaped_tables(tables, ambiguous,
                                                                                      _UNIFORM_PIXELS))
                flags.append(ambiguous)
                at += m
            flags = np.concatenate(flags)

            def tables_of(a=a, b=b, flags=flags):
                at = 0
                for tables, _ in _pixel_pieces(model, codes_sent, layer, a, b, padded, tile, height, width):
                    yield bands.escaped_tables(tables, flags[at: at + len(tables)], _UNIFORM_PIXELS)
                    at += len(tables)

            encoder.flags(flags)
            encoder.lazy(symbols, bits, tables_of)
        return
    for a in range(0, n, GROUP):
        b = min(a + GROUP, n)
        params = _likelihood(model, codes_sent, layer, a, b, padded, tile, height, width)
        if params is None:
            raise CodecError(_NO_LIKELIHOOD)
        tables, ambiguous = entropy.pixel_frequencies(*params)
        encoder.flags(ambiguous.ravel())
        encoder.escaped(images[a:b].ravel(), tables.reshape(-1, 256), ambiguous.ravel(), _UNIFORM_PIXELS)


def decode_pixels(decoder, model, codes_sent, layer, images, channels, padded, tile, height, width, name, big=False):
    """The pixels uint8 [images, H, W, C] coded by `code_pixels`."""
    parts = []
    for a in range(0, images, GROUP):
        b = min(a + GROUP, images)
        escaped = decoder.flags((b - a) * height * width * channels)
        if big:
            at = 0
            for tables, _ in _pixel_pieces(model, codes_sent, layer, a, b, padded, tile, height, width):
                parts.append(decoder.tables(bands.escaped_tables(tables, escaped[at: at + len(tables)],
                                                                 _UNIFORM_PIXELS)).astype(np.uint8))
                at += len(tables)
            continue
        params = _likelihood(model, codes_sent, layer, a, b, padded, tile, height, width)
        if params is None:
            raise CodecError(f"The file is lossless, but {name!r} has no pixel likelihood: the file was not made "
                             "by this model.")
        tables, _ = entropy.pixel_frequencies(*params)
        tables = tables.reshape(-1, 256)
        tables[escaped] = _UNIFORM_PIXELS
        parts.append(decoder.tables(tables))
    return np.concatenate(parts).astype(np.uint8).reshape(images, height, width, channels)
