"""Entropy-coded files (format version 3, `tfvq.codec.coded`): images of any size -> chunks -> images.

What the codec asks the model (the contract of `tfvq.models.base.CodeModel`):
`code_layout()`, `encode`, `decode`, `code_logits(codes, l)` (the
distribution of layer l-1 given the codes a file of layer l holds: HQA
Algorithm 3 / eq. 3, RRVQ eq. 7), `top_code_logits(n)` (RRVQ's top prior),
`pixel_likelihood(codes, l)` (RRVQ App. C's discretised logistic, for
lossless files), `code_stride()` and `with_image_shape(shape)` (fully
convolutional models code any size whole). It never asks for the class.

Which layers a file stores and how (`plan`):

* `coder="static"`: the layers `encode(x, l)` gives, each under its static prior.
* `coder="progressive"`: layers l..L, the top first, each lower layer under
  the model's distribution given the layers above (`code_logits`): one
  file, every rate; a reader may stop after any layer. For HQA that is the
  top code, then layer L-1 given layer L, ... down to layer l.
* `coder="context"`: layers l..L, the top first, each under its learned
  context prior (`tfvq.codec.context`: the layer above and the codes of
  earlier passes), a layer without one under its static prior.
* `coder="auto"` (the default): each chunk takes the smallest of its fixed,
  static, model and context codings, and for a model whose layer l decodes
  alone (HQA, VQ-VAE) the smaller of that chain and the layer alone under
  its static prior. The header says which coder each layer used.

Images of any size: a fully convolutional model (`code_stride()` not None)
codes the image whole, reflect-padded at the bottom and right to a multiple
of its stride; any other model (RRVQ-VAE) codes it in tiles of its
`image_shape`, the image reflect-padded to a whole number of tiles. The
decoder crops back to the stored size.
"""

import numpy as np

from tfvq.codec import coded, entropy
from tfvq.codec import format as fmt
from tfvq.codec.coded import CONTEXT, FIXED, MODEL, STATIC
from tfvq.codec.context import PASSES, pass_map
from tfvq.codec.format import CodecError
from tfvq.codec.images import from_tiles, pad_reflect, to_tiles

CODER_CHOICES = ("auto", "static", "progressive", "context", "fixed")
BATCH = 64
"""Code grids per `encode` call."""
GROUP = 16
"""A MODEL or PIXELS chunk codes its grids (images) in groups of GROUP: each group's escape flags, then its
symbols (part of the format: the decoder reads them in the same order)."""
_ZERO_HASH = bytes(fmt.HASH_BYTES)
_SIZED = {}  # (id(model), (Hp, Wp)) -> (model, the model it was made from)


def geometry(model, height, width):
    """How images of `height` x `width` are coded: (model, padded (Hp, Wp), tile or None, tiles per image)."""
    stride = model.code_stride()
    c = model.image_shape[2]
    if stride is not None:
        hp, wp = -(-height // stride) * stride, -(-width // stride) * stride
        key = (id(model), (hp, wp))
        if key not in _SIZED or _SIZED[key][1] is not model:
            _SIZED[key] = (model.with_image_shape((hp, wp, c)), model)
        return _SIZED[key][0], (hp, wp), None, 1
    th, tw = model.image_shape[:2]
    hp, wp = -(-height // th) * th, -(-width // tw) * tw
    return model, (hp, wp), (th, tw), (hp // th) * (wp // tw)


def _grids_of(images, padded, tile):
    x = pad_reflect(images, *padded)
    return x if tile is None else to_tiles(x, tile)


def _flatten(codes):
    return codes if isinstance(codes, (list, tuple)) else [codes]


def encode_layers(model, x, layers):
    """{layer: int32 [count, h, w]} of every layer in `layers` (the most probable codes, `encode`)."""
    layout = model.code_layout()
    out = {}
    starts = [min(layers)] if layout.cumulative else sorted(layers)
    for start in starts:
        parts = [[np.asarray(c) for c in _flatten(model.encode(x[a: a + BATCH], start))]
                 for a in range(0, len(x), BATCH)]
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


def _above(codes, layer, start, stop):
    above = codes.get(layer + 1)
    return None if above is None else above[start:stop]


def _context_chunk(context, codes, layer):
    """The bytes of a CONTEXT chunk: per group of grids, per pass, the pass's codes under the integer tables
    of the layer's context network (`ContextPriors.tables`: the same on every machine, so nothing is escaped)."""
    own = codes[layer]
    passes = pass_map(*own.shape[1:])
    encoder = entropy.Encoder()
    for a in range(0, len(own), GROUP):
        b = min(a + GROUP, len(own))
        for p in range(PASSES):
            tables = context.tables(layer, own[a:b], _above(codes, layer, a, b), p)
            encoder.tables(own[a:b][:, passes == p].ravel(), tables.reshape(-1, tables.shape[-1]))
    return encoder.bytes()


def _decode_context(decoder, context, codes, layer, count, grid):
    """The codes [count, h, w] of a CONTEXT chunk (`_context_chunk`), the layer above already in `codes`."""
    passes = pass_map(*grid)
    out = np.zeros((count,) + tuple(grid), np.int32)
    for a in range(0, count, GROUP):
        b = min(a + GROUP, count)
        for p in range(PASSES):
            at = passes == p
            tables = context.tables(layer, out[a:b], _above(codes, layer, a, b), p)
            out[a:b, at] = decoder.tables(tables.reshape(-1, tables.shape[-1])).reshape(b - a, -1)
    return out


def _code_chunk(model, coder, codes, layer, static_table, context=None):
    """The bytes of one layer's chunk, or None if the model (or its context priors) give no probabilities
    for it."""
    k = model.code_layout().num_codes[layer - 1]
    own = codes[layer]
    if coder == FIXED:
        return fmt.pack_codes(own, k)
    if coder == STATIC:
        return entropy.encode_symbols(own.ravel(), static_table)
    if coder == CONTEXT:
        if context is None or not context.has(layer):
            return None
        return _context_chunk(context, codes, layer)
    encoder = entropy.Encoder()
    for a in range(0, len(own), GROUP):  # per group of grids: the escape flags, then the codes
        lp = model_log_probs(model, codes, layer, a, min(a + GROUP, len(own)))
        if lp is None:
            return None
        tables, ambiguous = entropy.quantise_log_probs(lp)
        encoder.flags(ambiguous.ravel())
        encoder.escaped(own[a: a + GROUP].ravel(), tables.reshape(-1, k), ambiguous.ravel(), static_table)
    return encoder.bytes()


def _best_chunks(model, codes, layers, prior, allowed):
    """{layer: (coder, bytes)} choosing per layer the smallest coder of `allowed` (ties: the simpler coder);
    None for a layer no coder of `allowed` can code."""
    layout = model.code_layout()
    out = {}
    for l in layers:
        options = []
        for coder in allowed:
            if coder in (MODEL, CONTEXT) and l != layout.num_layers and l + 1 not in layers:
                continue  # its context is not in the file
            data = _code_chunk(model, coder, codes, l, prior.table(l), prior.context)
            if data is not None:
                options.append((coder, data))
        out[l] = min(options, key=lambda o: (len(o[1]), o[0])) if options else None
    return out


def encode_file(images, model_name, model, digest, prior, layer, coder="auto", lossless=False):
    """Images (uint8 [N, H, W, C], any H and W) -> the bytes of a version 3 file (see the module docstring)."""
    if coder not in CODER_CHOICES:
        raise ValueError(f"coder must be one of {CODER_CHOICES}, got {coder!r}.")
    images = np.asarray(images)
    n, height, width, _ = images.shape
    if height * width > coded.MAX_IMAGE_PIXELS:
        raise CodecError(f"The images are {height}x{width} pixels, more than a file holds ({coded.MAX_IMAGE_PIXELS} "
                         "pixels); split them into tiles first.")
    sized, padded, tile, tiles = geometry(model, height, width)
    x = _grids_of(images, padded, tile)
    count = len(x)
    if count > 0xFFFF:
        raise CodecError(f"{n} image(s) of {height}x{width} make {count} tiles of codes, more than a file holds "
                         "(65535); split the batch into several files.")
    layout = sized.code_layout()
    sent = layout.layers_sent(layer)
    chain = tuple(range(layer, layout.num_layers + 1))
    codes = encode_layers(sized, x, set(chain) if coder in ("auto", "progressive", "context") else set(sent))
    if coder == "fixed":
        chunks = {l: (FIXED, fmt.pack_codes(codes[l], layout.num_codes[l - 1])) for l in sent}
    elif coder == "static":
        chunks = _best_chunks(sized, codes, sent, prior, (STATIC,))
    elif coder in ("progressive", "context"):
        chunks = _best_chunks(sized, codes, chain, prior, (MODEL,) if coder == "progressive" else (CONTEXT,))
        for l in chain:  # a layer without a distribution of that kind (an HQA top) takes the static prior
            if chunks.get(l) is None:
                chunks[l] = _best_chunks(sized, codes, (l,), prior, (STATIC,))[l]
    else:
        chunks = _best_chunks(sized, codes, chain, prior, (FIXED, STATIC, MODEL, CONTEXT))
        if tuple(sent) != chain:  # compare whole files: each stored layer also costs its header entry
            alone = _best_chunks(sized, codes, sent, prior, (FIXED, STATIC))
            if sum(len(b) + coded.LAYER_ENTRY_BYTES for _, b in alone.values()) <= sum(
                    len(b) + coded.LAYER_ENTRY_BYTES for _, b in chunks.values()):
                chunks = alone
    uses_prior = any(c != FIXED for c, _ in chunks.values())
    uses_context = any(c == CONTEXT for c, _ in chunks.values())
    parts = [coded.Chunk(l, tuple(layout.grids[l - 1]), layout.num_codes[l - 1], c, data,
                         coded.crc_of_codes(codes[l])) for l, (c, data) in chunks.items()]
    pixels = None
    if lossless:
        pixels = _encode_pixels(sized, [codes[l] for l in sent], layer, images, padded, tile)
    prior_hash = prior.coding_digest(uses_context) if (uses_prior or lossless) else _ZERO_HASH
    return coded.write(model_name, digest, prior_hash, n,
                       (height, width), count, parts, pixels)


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


_UNIFORM_PIXELS = entropy.frequencies(np.zeros(256, np.int64))


def _encode_pixels(model, codes_sent, layer, images, padded, tile):
    n, height, width, c = images.shape
    encoder = entropy.Encoder()
    for a in range(0, n, GROUP):  # per group of images: the escape flags, then the pixels
        b = min(a + GROUP, n)
        params = _likelihood(model, codes_sent, layer, a, b, padded, tile, height, width)
        if params is None:
            raise CodecError("This model has no pixel likelihood p(x | z) (`pixel_likelihood` is None), so it "
                             "cannot code images losslessly; drop --lossless, or use a density model such as "
                             "rrvq_digits.")
        tables, ambiguous = entropy.pixel_frequencies(*params)
        encoder.flags(ambiguous.ravel())
        encoder.escaped(images[a:b].ravel(), tables.reshape(-1, 256), ambiguous.ravel(), _UNIFORM_PIXELS)
    return c, encoder.bytes(), coded.crc_of_pixels(images)


# ------------------------------------------------------------------------------------------------ decoding
def check_file(f, model, prior_for):
    """Checks a parsed version 3 file against the model; returns (model for its size, padded, tile)."""
    layout = model.code_layout()
    name = f.model
    layers = f.layers
    if layers[-1] > layout.num_layers:
        raise CodecError(f"The file holds the codes of layers {layers[0]}..{layers[-1]}, but {name!r} has code layers "
                         f"1..{layout.num_layers}: the file was not made by this model.")
    sent = layout.layers_sent(f.first_layer)
    if not set(sent) <= set(layers):
        raise CodecError(f"The file holds layers {layers[0]}..{layers[-1]}, but decoding layer {f.first_layer} of "
                         f"{name!r} needs layers {sent[0]}..{sent[-1]}: the file was not made by this model.")
    height, width = f.image_size
    sized, padded, tile, tiles = geometry(model, height, width)
    if f.count != f.images * tiles:
        raise CodecError(f"The file has {f.count} code grids for {f.images} image(s) of {height}x{width}, but "
                         f"{name!r} codes such an image in {tiles} grid(s): the file was written wrongly.")
    sized_layout = sized.code_layout()
    for chunk in f.chunks:
        l = chunk.layer
        want_grid, want_k = tuple(sized_layout.grids[l - 1]), sized_layout.num_codes[l - 1]
        if tuple(chunk.grid) != want_grid or chunk.num_codes != want_k:
            raise CodecError(f"The file's layer {l} is a {chunk.grid[0]}x{chunk.grid[1]} grid of K={chunk.num_codes} "
                             f"codes, but {name!r} gives {want_grid[0]}x{want_grid[1]} codes of K={want_k} for "
                             f"{height}x{width} images: the file was not made by this model.")
        if chunk.coder in (MODEL, CONTEXT) and l != layout.num_layers and l + 1 not in layers:
            raise CodecError(f"The file codes layer {l} with the {coded.CODER_TEXT[chunk.coder]} given layer "
                             f"{l + 1}, which it does not hold: the file was written wrongly.")
        if chunk.coder == FIXED and len(chunk.data) != fmt.payload_bytes(f.count * want_grid[0] * want_grid[1],
                                                                         want_k):
            raise CodecError(f"The file's layer {l} chunk is {len(chunk.data)} bytes, but its fixed-rate codes need "
                             f"{fmt.payload_bytes(f.count * want_grid[0] * want_grid[1], want_k)}.")
    if f.pixels is not None and f.pixels[0] != model.image_shape[2]:
        raise CodecError(f"The file's pixels have {f.pixels[0]} channels, but {name!r} takes "
                         f"{model.image_shape[2]}: the file was not made by this model.")
    if any(c.coder != FIXED for c in f.chunks) or f.pixels is not None:
        prior = prior_for()
        context_layers = [c.layer for c in f.chunks if c.coder == CONTEXT]
        if context_layers:
            missing = [l for l in context_layers if prior.context is None or not prior.context.has(l)]
            if missing:
                raise CodecError(f"The file codes layer(s) {missing} with context priors, which these weights of "
                                 f"{name!r} do not have: put the context priors it was made with beside the weights "
                                 "(`tfvq.codec.context_path_for`).")
        expected = prior.coding_digest(bool(context_layers))
        if expected != f.prior_hash:
            what = "other static and context priors" if context_layers else "another static prior"
            raise CodecError(f"The file was coded with {what} of {name!r} (prior hash {f.prior_hash.hex()}, these "
                             f"{expected.hex()}): use the prior files it was made with (beside the weights, "
                             "`tfvq.codec.prior_path_for` and `tfvq.codec.context_path_for`).")
    return sized, padded, tile


def decode_layers(f, sized, prior_for, stop):
    """{layer: int32 [count, h, w]} of the stored layers from the top down to `stop`, each checked by its CRC."""
    layout = sized.code_layout()
    codes = {}
    for chunk in f.chunks:  # the top layer first
        if chunk.layer < stop:
            break
        l, (h, w), k = chunk.layer, chunk.grid, chunk.num_codes
        n = f.count * h * w
        what = f"layer {l}"
        if chunk.coder == FIXED:
            (flat,) = fmt.unpack_layers(chunk.data, [n], [k], first_layer=l)
        else:
            decoder = entropy.Decoder(chunk.data, what)
            static = prior_for().table(l)
            if chunk.coder == STATIC:
                flat = decoder.static(static, n)
            elif chunk.coder == CONTEXT:
                flat = _decode_context(decoder, prior_for().context, codes, l, f.count, (h, w))
            else:
                parts = []
                for a in range(0, f.count, GROUP):
                    b = min(a + GROUP, f.count)
                    escaped = decoder.flags((b - a) * h * w)
                    lp = model_log_probs(sized, codes, l, a, b)
                    if lp is None:
                        raise CodecError(f"The file codes layer {l} with the model's probabilities, but {f.model!r} "
                                         "gives none for it: the file was not made by this model.")
                    tables, _ = entropy.quantise_log_probs(lp)
                    tables = tables.reshape(-1, k)
                    tables[escaped] = static
                    parts.append(decoder.tables(tables))
                flat = np.concatenate(parts)
        layer_codes = np.asarray(flat, np.int32).reshape(f.count, h, w)
        if coded.crc_of_codes(layer_codes) != chunk.crc:
            raise CodecError(
                f"Layer {l}'s decoded codes do not match the CRC the encoder stored ({chunk.crc:08x}): "
                f"{'the file is corrupt' if chunk.coder != MODEL else 'this machine computes other probabilities than the encoder did (beyond the quantisation margin of tfvq.codec.entropy), or the file is corrupt'}. "
                "Decode it with the same tfvq and weights it was made with.")
        codes[l] = layer_codes
    return codes


def decode_file(f, model, prior_for, layer=None, seed=None):
    """uint8 images [N, H, W, C] from a parsed version 3 file (`decompress`)."""
    layout = model.code_layout()
    sized, padded, tile = check_file(f, model, prior_for)
    stop = f.first_layer if layer is None else layer
    if layer is not None:
        try:
            layout.check_layer(layer)
        except ValueError as err:
            raise CodecError(str(err)) from None
        sent = layout.layers_sent(layer)
        if not set(sent) <= set(f.layers):
            raise CodecError(f"The file holds layers {f.layers[0]}..{f.layers[-1]}: it cannot be decoded at layer "
                             f"{layer}, which needs layers {sent[0]}..{sent[-1]}. Decode at a layer it holds.")
    sent = layout.layers_sent(stop)
    codes = decode_layers(f, sized, prior_for, min(sent))
    height, width = f.image_size
    codes_sent = [codes[l] for l in sent]
    if f.pixels is not None and stop == f.first_layer:
        channels, data, crc = f.pixels
        decoder = entropy.Decoder(data, "pixel")
        parts = []
        for a in range(0, f.images, GROUP):
            b = min(a + GROUP, f.images)
            escaped = decoder.flags((b - a) * height * width * channels)
            params = _likelihood(sized, codes_sent, stop, a, b, padded, tile, height, width)
            if params is None:
                raise CodecError(f"The file is lossless, but {f.model!r} has no pixel likelihood: the file was not "
                                 "made by this model.")
            tables, _ = entropy.pixel_frequencies(*params)
            tables = tables.reshape(-1, 256)
            tables[escaped] = _UNIFORM_PIXELS
            parts.append(decoder.tables(tables))
        pixels = np.concatenate(parts).astype(np.uint8).reshape(f.images, height, width, channels)
        if coded.crc_of_pixels(pixels) != crc:
            raise CodecError("The decoded pixels do not match the CRC the encoder stored: this machine computes "
                             "another p(x | z) than the encoder did, or the file is corrupt.")
        return pixels
    images = np.asarray(sized.decode(codes_sent, stop, stochastic=seed is not None, seed=seed, dtype="uint8"))
    if tile is not None:
        images = from_tiles(images, f.images, *padded)
    return images[:, :height, :width]
