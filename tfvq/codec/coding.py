"""Entropy-coded files with a model: images of any size -> one stream of codes -> images.

This is the part of the codec that asks the model, through the model
contract (`CodeModel`) only: `code_layout()`, `encode`, `decode`,
`code_logits(codes, l)` (the distribution of layer l-1 given the codes a file
of layer l holds: HQA Algorithm 3 / eq. 3, RRVQ eq. 7), `top_code_logits(n)`
(RRVQ's top prior), `pixel_likelihood(codes, l)` (RRVQ App. C's discretised
logistic, for lossless files), `code_stride()` and `with_image_shape(shape)`
(fully convolutional models code any size whole). It never asks for the
class. Everything else (the container, the range coder, the tables, the
priors) is NumPy (`tfvq.codec.container`, `entropy`, `prior`, `context`).

Which layers a file stores and how each is coded (the coders of
`tfvq.codec.container`):

* `coder="fixed"`: the layers `encode(x, l)` gives, each code under the
  uniform table of its layer (the fixed rate, log2 K bits).
* `coder="static"`: the same layers, each under its static prior.
* `coder="progressive"`: layers l..L, the top first, each lower layer under
  the model's distribution given the layers above (`code_logits`): one file,
  every rate; a reader may stop after any layer. For HQA that is the top
  code, then layer L-1 given layer L, ... down to layer l.
* `coder="context"`: layers l..L, the top first, each under its learned
  context prior (`tfvq.codec.context`), a layer without one under its static
  prior.
* `coder="smallest"`: for each layer of the chain l..L the coder of
  fewest bits (uniform, static, model, context), and for a model whose layer
  l decodes alone (HQA, VQ-VAE) also the layers `encode(x, l)` gives alone
  (uniform or static); of the two, the smaller whole file.
* `coder="auto"` (the default): the same; for a large image (`Geometry.big`)
  with the context priors only on the layers their work budget admits
  (`tfvq.codec.budget`: about what `static` costs), so it takes at most
  about twice `static`'s time.

Images of any size: a fully convolutional model (`code_stride()` not None)
codes the image whole, reflect-padded at the bottom and right to a multiple
of its stride; any other model (RRVQ-VAE) codes it in tiles of its
`image_shape`, the image reflect-padded to a whole number of tiles. The
decoder crops back to the stored size. Images resized to the model's own
size before coding (`resized_from`, the container's RESIZED flag) are
resized back to their stored size (`tfvq.codec.images.resize_back`).

The files of version 3 (`tfvq.codec.legacy.v3`) decode with the same
per-layer decoders, each chunk its own stream.
"""

import dataclasses
import functools

import numpy as np

from tfvq.codec import bands, budget, container, entropy, lazy_tables
from tfvq.codec.container import CONTEXT, MODEL, STATIC, UNIFORM
from tfvq.codec.context import PASSES, pass_map
from tfvq.codec.errors import CodecError
from tfvq.codec.header import span
from tfvq.codec.images import from_tiles, pad_reflect, resize_back, to_tiles
from tfvq.codec.lazy_tables import above
from tfvq.codec.lossless import GROUP, code_pixels, decode_pixels

CODER_CHOICES = ("auto", "smallest", "static", "progressive", "context", "fixed")
CHOOSING = ("auto", "smallest")
"""The coders that try every plan and keep the smallest file (`auto` within its budget of context work)."""
BATCH = 64
"""Code grids per `encode` call."""
MAX_LAYER_SYMBOLS = 1 << 28
"""The most codes (count h w) or pixels (N H W C) a file may hold per layer."""
_SIZED = {}  # (id(model), (Hp, Wp)) -> (model, the model it was made from)


class Geometry:
    """How `model` codes images of `height` x `width`.

    A fully convolutional model (`code_stride()` not None) codes an image whole, padded to `padded`, a multiple
    of its stride; any other model in `tiles` tiles of its `image_shape` (`tile`). `layout` is the code layout
    at that size, known without building a model (layer l's grid is the padded size over `code_stride(l)`), so
    the codes of a file decode without one; `sized` is the model for that size (`with_image_shape`), built on
    first use, once per model and size.

    Images of more than `bands.BAND_PIXELS` pixels are `big`: a fully convolutional model codes them in row
    bands (`banding`, `tfvq.codec.bands`), a tiled one in batches of tiles, and the encoder keeps no tables
    (`entropy.Encoder.lazy`).
    """

    def __init__(self, model, height, width):
        self.model = model
        stride = model.code_stride()
        if stride is not None:
            self.padded, self.tile, self.tiles = (-(-height // stride) * stride, -(-width // stride) * stride), None, 1
        else:
            th, tw = model.image_shape[:2]
            self.padded, self.tile = (-(-height // th) * th, -(-width // tw) * tw), (th, tw)
            self.tiles = (self.padded[0] // th) * (self.padded[1] // tw)
        self.big = bands.is_banded(self.padded, self.tile)

    @functools.cached_property
    def layout(self):
        layout = self.model.code_layout()
        if self.tile is not None:
            return layout
        (hp, wp), strides = self.padded, [self.model.code_stride(l) for l in range(1, layout.num_layers + 1)]
        return dataclasses.replace(layout, grids=tuple((hp // s, wp // s) for s in strides))

    @property
    def sized(self):
        if self.tile is not None:
            return self.model
        return self.sized_for(*self.padded)

    def sized_for(self, height, width):
        """The model for windows of height x width pixels of the padded images (`sized`: all of them)."""
        key = (id(self.model), (height, width))
        if key not in _SIZED or _SIZED[key][1] is not self.model:
            _SIZED[key] = (self.model.with_image_shape((height, width, self.model.image_shape[2])), self.model)
        return _SIZED[key][0]

    @functools.cached_property
    def banding(self):
        """The row bands of a big image of a fully convolutional model (`tfvq.codec.bands.Banding`), else None."""
        if not self.big or self.tile is not None:
            return None
        return bands.Banding(self.model, self.padded, self.sized_for)


def _grids_of(images, padded, tile):
    x = pad_reflect(images, *padded)
    return x if tile is None else to_tiles(x, tile)


def _flatten(codes):
    return codes if isinstance(codes, (list, tuple)) else [codes]


def encode_layers(model, x, layers, code_bias=None, batch=BATCH, banding=None):
    """{layer: int32 [count, h, w]} of every layer in `layers`: the most probable codes (`encode`), or with
    `code_bias` {layer: [K]} those of `encode_biased` (a static prior's rate weights, `StaticPrior.code_bias`);
    with a `banding` (`bands.Banding`) window by window of the padded images x."""
    layout = model.code_layout()
    out = {}
    starts = [min(layers)] if layout.cumulative else sorted(layers)

    def encode(coder, images, start):
        if code_bias:
            biased = {l: b for l, b in code_bias.items() if l in layout.layers_sent(start)}
            if biased:
                codes = coder.encode_biased(images, biased, start)
                if codes is None:
                    raise CodecError(f"The static prior has rate weights for layers {sorted(code_bias)}, but "
                                     "this model has no q to choose codes by rate (`encode_biased`); refit the "
                                     "prior without them (`tfvq fit-priors`).")
                return codes
        return coder.encode(images, start)

    if banding is not None:
        return banding.encode(x, set(layers), encode)
    for start in starts:
        parts = [[np.asarray(c) for c in _flatten(encode(model, x[a: a + batch], start))]
                 for a in range(0, len(x), batch)]
        for i, l in enumerate(layout.layers_sent(start)):
            if l in layers:
                out[l] = np.concatenate([p[i] for p in parts]).astype(np.int32)
    return out


def model_log_probs(model, codes, layer, start, stop):
    """log p of layer `layer`'s codes for grids start..stop-1 [n, h, w, K], given the codes above (None: the
    model offers none)."""
    layout = model.code_layout()
    if layer == layout.num_layers:
        out = model.top_code_logits(stop - start)
        return None if out is None else np.asarray(out)
    context = [codes[l][start:stop] for l in layout.layers_sent(layer + 1)]
    out = model.code_logits(context, layer + 1)
    return None if out is None else np.asarray(out)


def _needs_above(coder, layer, layout, layers):
    """True when `coder` codes `layer` given the layer above, which `layers` do not hold."""
    return coder in (MODEL, CONTEXT) and layer != layout.num_layers and layer + 1 not in layers


# ------------------------------------------------------------------------------------------ one layer
def code_layer(encoder, model, coder, codes, layer, prior, geometry=None, count_bits=True):
    """Adds layer `layer`'s codes to `encoder` under `coder`; False (nothing added) when the model or its
    context priors give no probabilities for the layer. A big image's `geometry` (`Geometry.big`) codes it
    band by band, keeping no tables, and counts the bits of its context tables only if `count_bits`."""
    k = model.code_layout().num_codes[layer - 1]
    own = codes[layer]
    big = geometry is not None and geometry.big
    if coder == UNIFORM:
        encoder.static(own.ravel(), entropy.uniform_table(k))
    elif coder == STATIC:
        encoder.static(own.ravel(), prior.table(layer))
    elif coder == CONTEXT:
        if prior.context is None or not prior.context.has(layer):
            return False
        if big:
            lazy_tables.lazy_context_layer(encoder, prior.context, codes, layer, geometry.banding, count_bits)
            return True
        passes = pass_map(*own.shape[1:])
        for a in range(0, len(own), GROUP):  # per group of grids, per pass: no flags (integer networks)
            b = min(a + GROUP, len(own))
            for p in range(PASSES):
                tables = prior.context.tables(layer, own[a:b], above(codes, layer, a, b), p)
                encoder.tables(own[a:b][:, passes == p].ravel(), tables.reshape(-1, tables.shape[-1]))
    elif big:
        banding = geometry.banding if layer < model.code_layout().num_layers else None

        def log_probs(a, b):
            if banding is None:  # a tiled model's group of tiles, or the top layer's small grid
                yield model_log_probs(geometry.sized, codes, layer, a, b)
                return
            for i in range(a, b):
                for _, lp in banding.log_prob_bands(codes, layer, i):
                    yield lp

        return lazy_tables.lazy_model_layer(encoder, own, k, prior.table(layer), log_probs, count_bits)
    else:
        scratch = entropy.Encoder()
        for a in range(0, len(own), GROUP):  # per group of grids: the escape flags, then the codes
            lp = model_log_probs(model, codes, layer, a, min(a + GROUP, len(own)))
            if lp is None:
                return False
            tables, ambiguous = entropy.quantise_log_probs(lp, np.float64)
            scratch.flags(ambiguous.ravel())
            scratch.tables(own[a: a + GROUP].ravel(), bands.escaped_tables(tables.reshape(-1, k), ambiguous.ravel(),
                                                                           prior.table(layer)))
        encoder.extend(scratch)
    return True


def decode_layer(decoder, geometry, coder, codes, layer, count, prior_for, name):
    """Layer `layer`'s codes int32 [count, h, w] from `decoder` (the layers above already in `codes`), their
    grid that of `geometry` (a `Geometry`); only the model's probabilities (MODEL) build its model."""
    layout = geometry.layout
    (h, w), k = layout.grids[layer - 1], layout.num_codes[layer - 1]
    n = count * h * w
    if coder == UNIFORM:
        flat = decoder.static(entropy.uniform_table(k), n)
    elif coder == STATIC:
        flat = decoder.static(prior_for().table(layer), n)
    elif coder == CONTEXT:
        context = prior_for().context
        passes = pass_map(h, w)
        out = np.zeros((count, h, w), np.int32)
        if geometry.banding is not None:
            rows = bands.context_bands(context, layer, (h, w))
            for a in range(0, count, GROUP):
                for p in range(PASSES):
                    for i in range(a, min(a + GROUP, count)):
                        upper = above(codes, layer, i, i + 1)
                        for band in rows:
                            tables = bands.context_tables(context, layer, out[i: i + 1], upper, p, band)
                            out[i, band.start: band.stop][bands.pass_positions((h, w), band, p)] = \
                                decoder.tables(tables)
            return out
        for a in range(0, count, GROUP):
            b = min(a + GROUP, count)
            for p in range(PASSES):
                at = passes == p
                tables = context.tables(layer, out[a:b], above(codes, layer, a, b), p)
                out[a:b, at] = decoder.tables(tables.reshape(-1, tables.shape[-1])).reshape(b - a, -1)
        return out
    elif geometry.banding is not None and layer < layout.num_layers:
        return _decode_model_bands(decoder, geometry.banding, codes, layer, count, prior_for().table(layer), name)
    else:
        static = prior_for().table(layer)
        parts = []
        span = lazy_tables.model_span(h * w, k)  # the model's next grids run ahead of these
        starts = range(0, count, span)
        for start, lp in zip(starts, lazy_tables.one_ahead(
                lambda a: model_log_probs(geometry.sized, codes, layer, a, min(a + span, count)), starts)):
            if lp is None:
                raise CodecError(f"The file codes layer {layer} with the model's probabilities, but {name!r} "
                                 "gives none for it: the file was not made by this model.")
            for a in range(start, min(start + span, count), GROUP):
                b = min(a + GROUP, count)
                escaped = decoder.flags((b - a) * h * w)
                tables, _ = entropy.quantise_log_probs(lp[a - start: b - start], np.float64)
                tables = tables.reshape(-1, k)
                tables[escaped] = static
                parts.append(decoder.tables(tables))
        flat = np.concatenate(parts)
    return np.asarray(flat, np.int32).reshape(count, h, w)


def _decode_model_bands(decoder, banding, codes, layer, count, static, name):
    """A MODEL layer of a big image, band by band (`bands.Banding.log_prob_bands`)."""
    (h, w), k = banding.grid(layer), banding.layout.num_codes[layer - 1]
    out = np.zeros((count, h, w), np.int32)
    for a in range(0, count, GROUP):
        b = min(a + GROUP, count)
        escaped, at = decoder.flags((b - a) * h * w), 0
        for i in range(a, b):
            for rows, lp in banding.log_prob_bands(codes, layer, i):
                if lp is None:
                    raise CodecError(f"The file codes layer {layer} with the model's probabilities, but {name!r} "
                                     "gives none for it: the file was not made by this model.")
                parts = []
                for tables, _ in bands.quantised_pieces(lp, k):
                    parts.append(decoder.tables(bands.escaped_tables(tables, escaped[at: at + len(tables)], static)))
                    at += len(tables)
                out[i, rows] = np.concatenate(parts).reshape(-1, w)
    return out


# ------------------------------------------------------------------------------------------------ encoding
class _Layers:
    """Each layer coded by each coder, once: {(layer, coder): Encoder, or None when the coder has no
    probabilities for the layer}."""

    def __init__(self, model, codes, prior, geometry=None, count_bits=True, barred=frozenset()):
        """`barred`: the (layer, coder) pairs `plan` never picks (context networks beyond `auto`'s budget)."""
        self.model, self.codes, self.prior, self.geometry, self._done = model, codes, prior, geometry, {}
        self.count_bits, self.barred = count_bits, barred

    def get(self, layer, coder):
        if (layer, coder) not in self._done:
            encoder = entropy.Encoder()
            ok = code_layer(encoder, self.model, coder, self.codes, layer, self.prior, self.geometry,
                            self.count_bits)
            self._done[layer, coder] = encoder if ok else None
        return self._done[layer, coder]

    def plan(self, layers, allowed, fallback=()):
        """{layer: (coder, Encoder)}: per layer the coder of `allowed` of fewest bits (ties: the first), else
        of `fallback`; None if a layer has neither."""
        layout = self.model.code_layout()
        out = {}
        for l in layers:
            for choices in (allowed, fallback):
                options = [(c, self.get(l, c)) for c in choices
                           if not _needs_above(c, l, layout, layers) and (l, c) not in self.barred]
                options = [(c, e) for c, e in options if e is not None]
                if options:
                    out[l] = min(options, key=lambda o: o[1].bits)
                    break
            else:
                return None
        return out


def _plans(model, codes, sent, chain, prior, coder, geometry=None, chosen=None, context_layers=None):
    """The candidate plans, each {layer: (coder, Encoder)} of the layers a file stores; `chosen` {layer: coder}:
    that plan alone (a layer whose coder gives no probabilities under the static prior); `context_layers`: the
    only layers a context prior may code (None: every layer)."""
    barred = frozenset() if context_layers is None else frozenset(
        (l, CONTEXT) for l in chain if l not in context_layers)
    layers = _Layers(model, codes, prior, geometry, count_bits=coder in CHOOSING and chosen is None, barred=barred)
    if chosen is not None:
        plan = {}
        for l, c in chosen.items():
            encoder = layers.get(l, c)
            plan[l] = (c, encoder) if encoder is not None else (STATIC, layers.get(l, STATIC))
        plans = [plan]
    elif coder == "fixed":
        plans = [layers.plan(sent, (UNIFORM,))]
    elif coder == "static":
        plans = [layers.plan(sent, (STATIC,))]
    elif coder in ("progressive", "context"):
        # a layer without a distribution of that kind (an HQA top) takes the static prior
        plans = [layers.plan(chain, (MODEL,) if coder == "progressive" else (CONTEXT,), (STATIC,))]
    else:  # every plan another coder would write, and the best coder of each layer: the smallest file wins
        plans = [layers.plan(chain, (UNIFORM, STATIC, MODEL, CONTEXT)), layers.plan(sent, (UNIFORM, STATIC)),
                 layers.plan(sent, (UNIFORM,)), layers.plan(sent, (STATIC,)),
                 layers.plan(chain, (MODEL,), (STATIC,)), layers.plan(chain, (CONTEXT,), (STATIC,))]
    return [p for p in plans if p is not None]


def _sample(images, geometry):
    """The central crop of at most `bands.SAMPLE_PIXELS` pixels of big images (whole tiles or strides), on which
    `auto` chooses their plan."""
    side = int(min(bands.SAMPLE_PIXELS, bands.BAND_PIXELS) ** 0.5)
    units = geometry.tile or (geometry.model.code_stride(),) * 2

    def span(total, unit):
        n = min(total, max(unit, side // unit * unit))
        start = (total - n) // 2 // unit * unit
        return slice(start, start + n)

    return images[:, span(images.shape[1], units[0]), span(images.shape[2], units[1])]


def digest_of(weights_hash, prior, coders):
    """D (`container.file_digest`) of a file whose layers use `coders`."""
    coders = set(coders)
    return container.file_digest(weights_hash, prior.digest if coders & {STATIC, MODEL} else None,
                                 prior.context.digest if CONTEXT in coders else None)


def encode_file(images, model_name, model, weights_hash, prior, layer, coder="auto", lossless=False,
                resized_from=None, context_layers=None, shorten=True):
    """Images (uint8 [N, H, W, C], any H and W) -> a version 4 file, as the `container.CompactFile` it is (`bytes()`
    of it: the file's bytes).

    With `coder="smallest"` every candidate plan is written whole and the smallest file is kept; for big images
    (`Geometry.big`) the plan it keeps for their central crop (`_sample`) is the one written. `"auto"` is the
    same, and for big images its context priors code only the layers `budget.context_layers` admits for the
    whole images (`context_layers`: given to the crop that chooses for them). `shorten`: whether the streams
    are shortened (`entropy.Encoder.shortest`; not for the crop, whose plan alone is wanted). `resized_from`:
    (h, w) when `images` were resized from h x w to the model's own size (`bilinear_matrix`); the file
    stores h x w and the RESIZED flag, and decodes to h x w images.
    """
    if coder not in CODER_CHOICES:
        raise ValueError(f"coder must be one of {CODER_CHOICES}, got {coder!r}.")
    images = np.asarray(images)
    n, height, width, _ = images.shape
    if not 1 <= n <= container.MAX_IMAGES:
        raise CodecError(f"A .tfvq file holds 1..{container.MAX_IMAGES} images, got {n}; split the batch into "
                         "several files.")
    if height * width > container.MAX_IMAGE_PIXELS:
        raise CodecError(f"The images are {height}x{width} pixels, more than a file holds "
                         f"({container.MAX_IMAGE_PIXELS} pixels); split them into tiles first.")
    geometry = Geometry(model, height, width)
    if coder == "auto" and geometry.big and context_layers is None:  # the budget of the whole image, not a crop
        context_layers = budget.context_layers(prior.context, geometry.layout.grids, n * geometry.tiles,
                                               n * height * width)
    chosen = None
    if coder in CHOOSING and geometry.big:  # the plan chosen for a central crop, then the image in one pass
        chosen = encode_file(_sample(images, geometry), model_name, model, weights_hash, prior, layer, coder,
                             lossless, context_layers=context_layers, shorten=False).coders
    banding, padded, tile = geometry.banding, geometry.padded, geometry.tile
    sized = model if banding is not None else geometry.sized  # a big image's windows each have their model
    x = _grids_of(images, padded, tile)
    layout = geometry.layout
    sent = layout.layers_sent(layer)
    chain = tuple(range(layer, layout.num_layers + 1))
    needed = set(chosen) if chosen else set(chain) if coder in (*CHOOSING, "progressive", "context") else set(sent)
    codes = encode_layers(sized, x, needed, prior.code_bias(), banding=banding)
    del x
    pixels = None
    if lossless:
        pixels = entropy.Encoder()
        code_pixels(pixels, geometry.sized if banding is not None else sized, [codes[l] for l in sent], layer,
                    images, padded, tile, geometry.big)
    own_size = (height, width) == tuple(model.image_shape[:2])
    if resized_from is not None and (lossless or not own_size):
        raise ValueError(f"Resized images must be lossy and of the model's own size {tuple(model.image_shape[:2])}"
                         f", got {height}x{width}{' (lossless)' if lossless else ''}.")
    stored_size = tuple(resized_from) if resized_from is not None else None if own_size else (height, width)
    best = None
    plans = _plans(sized, codes, sent, chain, prior, coder, geometry if geometry.big else None, chosen,
                   context_layers)
    written = set()
    for plan in plans:
        coders = {l: c for l, (c, _) in plan.items()}
        key = tuple(sorted(coders.items()))
        if key in written:  # the same coders make the same file: written already
            continue
        written.add(key)
        digest = digest_of(weights_hash, prior, coders.values())
        stream = entropy.Encoder()
        for l in sorted(plan, reverse=True):  # the top layer first
            stream.extend(plan[l][1])
        if pixels is not None:
            stream.extend(pixels)
        data = stream.shortest() if shorten else stream.bytes().rstrip(b"\0")
        f = container.write_file(model_name, digest, layer, coders, data, {l: codes[l] for l in plan},
                                 stored_size, n, lossless, resized_from is not None, images if lossless else None)
        if best is None or f.file_bytes < best.file_bytes:
            best = f
    return best


# ------------------------------------------------------------------------------------------------ decoding
def check_layers(name, layout, layers, first_layer, coders):
    """Checks the stored layers and their coders against the model's layout."""
    if layers[-1] > layout.num_layers:
        raise CodecError(f"The file holds the codes of {span(layers)}, but {name!r} has code layers "
                         f"1..{layout.num_layers}: the file was not made by this model.")
    sent = layout.layers_sent(first_layer)
    if not set(sent) <= set(layers):
        raise CodecError(f"The file holds {span(layers)}, but decoding layer {first_layer} of "
                         f"{name!r} needs {span(sent)}: the file was not made by this model.")
    for l, coder in coders.items():
        if _needs_above(coder, l, layout, layers):
            raise CodecError(f"The file codes layer {l} with the {container.CODER_TEXT[coder]} given layer {l + 1}, "
                             "which it does not hold: the file was written wrongly.")


def stop_layer(layout, layers, first_layer, layer):
    """The layer to decode at: `layer`, or the file's finest; checked against the layers the file holds."""
    if layer is None:
        return first_layer
    try:
        layout.check_layer(layer)
    except ValueError as err:
        raise CodecError(str(err)) from None
    sent = layout.layers_sent(layer)
    if not set(sent) <= set(layers):
        raise CodecError(f"The file holds {span(layers)}: it cannot be decoded at layer {layer}, "
                         f"which needs {span(sent)}. Decode at a layer it holds.")
    return layer


def check_context_priors(prior, layers, name):
    """Raises `CodecError` unless `prior` has context priors for every layer of `layers`."""
    missing = [l for l in layers if prior.context is None or not prior.context.has(l)]
    if missing:
        raise CodecError(f"The file codes layer(s) {missing} with context priors, which these weights of {name!r} "
                         "do not have: use the model folder (or weights) it was made with, priors included.")


def decoded_images(geometry, codes, stop, seed, images, height, width):
    """uint8 images [images, height, width, C]: the model's decode at layer `stop` of the `codes` {layer: [count, h,
    w]} of images coded as `geometry` says (tiles put back together, the padding cropped)."""
    if geometry.banding is not None:
        out = geometry.banding.decode(codes, stop, seed, images, geometry.model.image_shape[2])
        return out[:, :height, :width]
    sized, sent = geometry.sized, geometry.layout.layers_sent(stop)
    step = bands.TILE_BATCH if geometry.big else max(len(codes[stop]), 1)
    out = np.concatenate([np.asarray(sized.decode([codes[l][a: a + step] for l in sent], stop,
                                                  stochastic=seed is not None, seed=seed, dtype="uint8"))
                          for a in range(0, len(codes[stop]), step)])
    if geometry.tile is not None:
        out = from_tiles(out, images, *geometry.padded)
    return out[:, :height, :width]


def decode_compact(f, model, weights_hash, prior_for, layer=None, seed=None):
    """uint8 images [N, H, W, C] from a parsed version 4 file (`container.CompactFile`).

    Every stored layer (and a lossless file's pixels) is decoded and the CRC
    checked (`compact_codes`) before any image is made; then the images of
    `layer` (default: the file's finest).
    """
    stop = stop_layer(model.code_layout(), f.layers, f.first_layer, layer)
    codes, pixels, (geometry, height, width) = compact_codes(f, model, weights_hash, prior_for)
    if pixels is not None and stop == f.first_layer:
        return pixels
    images = decoded_images(geometry, codes, stop, seed, f.images, height, width)
    return resize_back(images, *f.image_size) if f.resized else images


def coded_size(f, model):
    """(H, W) a version 4 file's codes are of: the model's own size for resized images (and when no size is
    stored), else the stored image size."""
    own = tuple(model.image_shape[:2])
    return own if f.resized else f.image_size or own


def compact_codes(f, model, weights_hash, prior_for):
    """({layer: codes [count, h, w]}, pixels or None, (its `Geometry`, H, W)) of a version 4 file, its CRC
    checked. The model is asked for probabilities (and built for the file's size) only by MODEL layers and
    pixels."""
    name, layout = f.model, model.code_layout()
    check_layers(name, layout, f.layers, f.first_layer, f.coders)
    height, width = coded_size(f, model)
    geometry = Geometry(model, height, width)
    count = f.images * geometry.tiles
    sized_layout = geometry.layout
    for l in f.layers:
        gh, gw = sized_layout.grids[l - 1]
        if count * gh * gw > MAX_LAYER_SYMBOLS:
            raise CodecError(f"The file's layer {l} would hold {count * gh * gw} codes, more than "
                             f"{MAX_LAYER_SYMBOLS}: the file is corrupt.")
    coders = set(f.coders.values())
    prior = prior_for() if coders & {STATIC, MODEL, CONTEXT} else None
    if CONTEXT in coders:
        check_context_priors(prior, [l for l, c in f.coders.items() if c == CONTEXT], name)
    digest = digest_of(weights_hash, prior, coders)
    if digest[:container.TAG_BYTES] != f.tag:
        what = "weights or priors" if coders - {UNIFORM} else "weights"
        raise CodecError(f"The file was made with other {what} of {name!r} than these (tag {f.tag.hex()}, these "
                         f"{digest[:container.TAG_BYTES].hex()}): decode it with the model folder or weights it was "
                         "made with (--model=FOLDER or --weights=PATH), priors included.")
    decoder = entropy.Decoder(words=entropy.stream_words(f.stream), what="file's stream")
    codes = {}
    for l in sorted(f.layers, reverse=True):
        codes[l] = decode_layer(decoder, geometry, f.coders[l], codes, l, count, prior_for, name)
    pixels = None
    if f.lossless:
        channels = model.image_shape[2]
        if f.images * height * width * channels > MAX_LAYER_SYMBOLS:
            raise CodecError("The file's pixels would be more than this tfvq decodes: the file is corrupt.")
        sent = [codes[l] for l in sized_layout.layers_sent(f.first_layer)]
        pixels = decode_pixels(decoder, geometry.sized, sent, f.first_layer, f.images, channels, geometry.padded,
                               geometry.tile, height, width, name, geometry.big)
    f.check(digest, codes, pixels)
    return codes, pixels, (geometry, height, width)
