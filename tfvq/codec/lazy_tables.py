"""A large image's layers coded without keeping their tables: made when the stream is written (`entropy.Encoder.lazy`).

`tfvq.codec.coding` codes a large image (`Geometry.big`) band by band or in
groups of tiles. Its model-coded and context-coded layers would need a
table of K frequencies per position, more than memory holds at 12 MP, so
their tables are made again for the stream from the model's probabilities
or the context networks (`lazy_model_layer`, `lazy_context_layer`). A
model-coded layer's escape flags come before its codes, group by group of
`GROUP` grids (the format): a group too large to keep (a band of a large
image) has its tables made twice, once for the flags and once for the
stream; small groups (a tiled model's tiles) have theirs made once, when the
stream is written, as many groups per call of the model as `model_span`
gives, the model's next call running on a second thread while the last
call's tables are rounded (`one_ahead`, also what the decoder uses).
"""

import concurrent.futures

import numpy as np

from tfvq.codec import bands, entropy
from tfvq.codec.context import PASSES, pass_map
from tfvq.codec.lossless import GROUP


def above(codes, layer, start, stop):
    """The codes of the layer above `layer` for grids start..stop-1, or None (the top layer)."""
    upper = codes.get(layer + 1)
    return None if upper is None else upper[start:stop]


def one_ahead(function, arguments):
    """`function(a)` for each of `arguments`, in order, each computed on another thread while the one before is
    used (the model's network runs while NumPy rounds and codes the last tables: the interpreter and NumPy let
    go of the GIL); one call at a time, so the model is never called twice at once."""
    arguments = list(arguments)
    if len(arguments) < 2:
        yield from map(function, arguments)
        return
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tfvq-model") as ahead:
        coming = ahead.submit(function, arguments[0])
        for i in range(len(arguments)):
            result = coming.result()
            if i + 1 < len(arguments):
                coming = ahead.submit(function, arguments[i + 1])
            yield result


def model_span(grid_size, k):
    """Grids per call of the model for a MODEL layer's tables: as many whole groups as `bands.TABLE_ENTRIES`
    entries hold (at least one)."""
    return GROUP * max(1, bands.TABLE_ENTRIES // (GROUP * grid_size * k))


def _model_pieces(log_probs, own, start, span, k, static):
    """What `Encoder.lazy_pieces` codes of the grids start..start+span-1 of `own` from their model
    log-probabilities (pieces in C order): per group of GROUP grids its escape flags, then its codes."""
    made = [piece for lp in log_probs for piece in bands.quantised_pieces(lp, k)]
    tables = np.concatenate([t for t, _ in made])
    flags = np.concatenate([ambiguous for _, ambiguous in made])
    size = own[0].size
    for a in range(start, min(start + span, len(own)), GROUP):
        b = min(a + GROUP, len(own))
        rows = slice((a - start) * size, (b - start) * size)
        yield flags[rows].astype(np.int32), np.array(entropy.ESCAPE_FREQUENCIES, np.float64)
        yield own[a:b].ravel(), bands.escaped_tables(tables[rows], flags[rows], static)


def lazy_model_layer(encoder, own, k, static, log_probs, count_bits=True):
    """MODEL coding of a big image's layer, its tables made again for the stream (`entropy.Encoder.lazy`): per
    group of GROUP grids the escape flags, then the codes; `log_probs(a, b)` yields the log-probabilities of
    grids a..b-1 piece by piece in C order (None: the model gives none).

    The flags of a group come before its codes, so its tables are made twice: once for the flags (and the bits),
    once for the stream. Unless `count_bits`, groups of at most `bands.TABLE_ENTRIES` entries (a tiled model's
    groups of tiles) make them once, when the stream is written (`entropy.Encoder.lazy_pieces`), as many groups
    per call of the model as that many entries hold."""
    per_group = GROUP * own[0].size * k
    if not count_bits and per_group <= bands.TABLE_ENTRIES:
        if next(iter(log_probs(0, min(GROUP, len(own)))), None) is None:
            return False
        span = model_span(own[0].size, k)

        def model_at(start):
            return list(log_probs(start, min(start + span, len(own))))

        def pieces():
            starts = range(0, len(own), span)
            for start, lps in zip(starts, one_ahead(model_at, starts)):
                yield from _model_pieces(lps, own, start, span, k, static)

        encoder.lazy_pieces(pieces)
        return True
    scratch = entropy.Encoder()
    for a in range(0, len(own), GROUP):
        b = min(a + GROUP, len(own))
        symbols, flags, bits, at = own[a:b].ravel(), [], 0.0, 0
        for lp in log_probs(a, b):
            if lp is None:
                return False
            for tables, ambiguous in bands.quantised_pieces(lp, k):
                n = len(tables)
                bits += entropy.information(symbols[at: at + n], bands.escaped_tables(tables, ambiguous, static))
                flags.append(ambiguous)
                at += n
        flags = np.concatenate(flags)

        def tables_of(a=a, b=b, flags=flags):
            at = 0
            for lp in log_probs(a, b):
                for tables, _ in bands.quantised_pieces(lp, k):
                    yield bands.escaped_tables(tables, flags[at: at + len(tables)], static)
                    at += len(tables)

        scratch.flags(flags)
        scratch.lazy(symbols, bits, tables_of)
    encoder.extend(scratch)
    return True


def lazy_context_layer(encoder, context, codes, layer, banding, count_bits=True):
    """CONTEXT coding of a big image's layer (per group of grids, per pass), its tables made when the stream
    is written, and before to count their bits if `count_bits`; with a `banding`, band by band of each grid
    (`bands.context_bands`)."""
    own = codes[layer]
    grid = own.shape[1:]
    passes = pass_map(*grid)
    rows = bands.context_bands(context, layer, grid) if banding is not None else None
    for a in range(0, len(own), GROUP):
        b = min(a + GROUP, len(own))
        for p in range(PASSES):
            def tables_of(a=a, b=b, p=p):
                if rows is None:
                    t = context.tables(layer, own[a:b], above(codes, layer, a, b), p)
                    yield t.reshape(-1, t.shape[-1])
                    return
                for i in range(a, b):
                    upper = above(codes, layer, i, i + 1)
                    for band in rows:
                        yield bands.context_tables(context, layer, own[i: i + 1], upper, p, band)

            symbols, bits, at = own[a:b][:, passes == p].ravel(), 0.0, 0
            for t in tables_of() if count_bits else ():
                bits += entropy.information(symbols[at: at + len(t)], t)
                at += len(t)
            encoder.lazy(symbols, bits, tables_of)
