"""Learned context priors: each layer's codes given the layer above and the codes already decoded.

A static prior codes every position of a layer under one table: every
position pays the layer's code entropy (on `hqa_digits` layer 1, about 3.4
bits). Neighbouring codes and the layer above say much more: the codes of a
stroke continue the stroke, and the background is background. A context
prior is a small convolutional network that gives, for every position of layer l, a
distribution over its K codes from

* the codes of layer l+1 (already in the file: HQA's decoder reads the top
  first), embedded and repeated up to layer l's grid; and
* the codes of layer l decoded so far.

What "decoded so far" means is fixed by a pass schedule over a 2x2 lattice
(`PASS_OF`): pass 0 codes one position of every 2x2 block given only layer
l+1, pass 1 the diagonal one given pass 0, passes 2 and 3 the other two
given every earlier pass, so that the last quarter of the positions sees
three of its four neighbours on every side. This is the multi-pass
generalisation of the checkerboard context of He et al. (2021, "Checkerboard
context model for efficient learned image compression"): four network
evaluations per layer, whatever the grid's size, instead of one per position
for a raster-order (PixelCNN) context, so images of any size decode in the
same four passes. A code not yet known enters the network as an extra
"unknown" symbol K, so the encoder computes exactly the inputs the decoder
will have. Coding runs the fitted network on integers
(`tfvq.codec.integer_net`, Ballé et al. 2019), so those inputs give the same
logits, and the same tables, on every machine and with any kernels.

HQA's own prediction of layer l-1 from layer l (Algorithm 3, the
`progressive` coder) costs more than the static prior on `hqa_digits`: its
quantizer's distribution is not fitted to code the encoder's choices. A
context prior is fitted on exactly that: the cross-entropy of the encoder's
codes on the training split (`tfvq.codec.fit.fit_context`), as the entropy models of
learned image codecs are.

Context priors live with the weights they were fitted for, in the model's
folder (`tfvq.zoo.prior_paths`: `model.context.npz` beside
`model.weights.h5`), as one file: every layer's network config and weights
as plain arrays (read with `allow_pickle=False`, so loading a downloaded file
runs no code) and the hash of the model weights they were fitted for. A file
coded with them names `ContextPriors.digest` in its digest
(`tfvq.codec.container`). NumPy only: fitting and the float networks are
`tfvq.codec.fit`.
"""

import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import os
import zipfile

import numpy as np

from tfvq.codec import entropy, integer_net
from tfvq.codec.container import HASH_BYTES
from tfvq.codec.errors import CodecError
from tfvq.codec.prior import read_prior

SUFFIX = ".context.npz"
PASSES = 4
PASS_OF = np.array([[0, 2], [3, 1]], np.int32)
"""The pass of each position of a 2x2 block: (0, 0) first, then (1, 1), (0, 1) and (1, 0)."""


def pass_map(height, width):
    """int32 [height, width]: the pass (0..PASSES-1) in which each position of a grid is coded."""
    rows = np.arange(height)[:, None] % 2
    cols = np.arange(width)[None, :] % 2
    return PASS_OF[rows, cols]


_CONFIG_KEYS = ("num_codes", "above_codes", "factor", "width", "depth", "embed", "mix")


def net_config(net):
    """The arguments that rebuild `net` (`context_net(**net_config(net))`)."""
    return {k: getattr(net, k) for k in _CONFIG_KEYS}


def known_input(codes, num_codes, upto):
    """The network's input for pass `upto`: the codes of passes < `upto`, `num_codes` (unknown) elsewhere."""
    codes = np.asarray(codes, np.int32)
    passes = pass_map(*codes.shape[1:])
    return np.where(passes[None] < upto, codes, np.int32(num_codes)).astype(np.int32)


def _above_input(above, count):
    return np.zeros((count, 1, 1), np.int32) if above is None else np.asarray(above, np.int32)


def weight_shapes(config):
    """The shapes of a `ContextNet`'s weights (`get_weights()` order) from its config alone."""
    k, e, width, mix = config["num_codes"], config["embed"], config["width"], config["mix"]
    shapes = [(k + 1, e)]
    if config.get("above_codes") is not None:
        shapes.append((config["above_codes"], e))
    channels = 2 * e if config.get("above_codes") is not None else e
    for _ in range(config["depth"]):
        shapes += [(3, 3, channels, width), (width,)]
        channels = width
    return shapes + [(1, 1, channels, mix), (mix,), (1, 1, mix, k), (k,)]


def multiply_adds(config):
    """The multiply-adds of a `ContextNet` with `config` per position of its grid, as its float network counts
    them: the 3x3 convolutions (the first over the own and the above embeddings), the 1x1 mixing layer and the
    logits of every code."""
    k, e, width, mix, depth = (int(config[key]) for key in ("num_codes", "embed", "width", "mix", "depth"))
    channels = 2 * e if config.get("above_codes") is not None else e
    convs = 9 * channels * width + (depth - 1) * 9 * width * width if depth else 0
    return convs + (width if depth else channels) * mix + mix * k


RULE = (f"integer net: act 2^-{integer_net.ACT_BITS}, weights 2^-{integer_net.WEIGHT_BITS}, limit "
        f"2^{integer_net.ACT_LIMIT_BITS}; logits to 2^-{entropy.INTEGER_STEP_BITS} nats, "
        f"{entropy.INTEGER_LEVELS} levels; total 2^{entropy.PRECISION}")
"""What turns fitted weights into tables; part of `ContextPriors.digest`, so files follow the rule they were
written with."""


class ContextPriors:
    """The context networks of a model's layers, fitted for one set of its weights.

    The fitted float weights are the priors (they are what the file keeps and
    what the digest names). Coding runs each network on integers
    (`tfvq.codec.integer_net`, `tables`), so encoder and decoder get the same
    tables on any machine; the float Keras networks (`tfvq.codec.fit.float_net`)
    are for fitting and for the float cross-entropy (`tfvq.codec.fit.float_bits`).

    Attributes:
      model: zoo model name.
      weights_hash: hex `tfvq.zoo.weights_hash` of the weights the networks were fitted for.
      configs, weights: {layer: `ContextNet` config}, {layer: its float32 weights}; a layer without one
        is coded otherwise.
      source: what they were fitted on, and their bits per image there.
    """

    def __init__(self, model, weights_hash, nets, source=""):
        """`nets`: {layer: a fitted `ContextNet` (anything with its config attributes and `get_weights`), or
        (config, weights)}."""
        self.model, self.weights_hash, self.source = model, weights_hash, source
        self.configs, self.weights, self._integer = {}, {}, {}
        for layer, net in nets.items():
            if isinstance(net, tuple):
                config, weights = net
            else:
                config, weights = net_config(net), net.get_weights()
            self.configs[layer] = dict(config)
            self.weights[layer] = [np.asarray(w, np.float32) for w in weights]

    def has(self, layer):
        return layer in self.configs

    def integer_net(self, layer):
        """The `IntegerContextNet` of layer `layer` (built on first use)."""
        if layer not in self._integer:
            self._integer[layer] = integer_net.IntegerContextNet.from_weights(self.configs[layer],
                                                                              self.weights[layer])
        return self._integer[layer]

    def num_codes(self, layer):
        return int(self.configs[layer]["num_codes"])

    def multiply_adds(self, layer):
        """Layer `layer`'s network's multiply-adds per position (`multiply_adds`)."""
        return multiply_adds(self.configs[layer])

    def tables(self, layer, codes, above, upto, rows=None):
        """The integer frequency tables [n, m, K] (float64, as the range coder takes them) that code the m
        positions of pass `upto` of layer `layer` (in C order): the integer network's logits
        (`tfvq.codec.integer_net`) through `entropy.integer_logit_tables`. The same on every machine. `rows`
        (a, b): only the positions of those rows of `codes` (a band's own rows, the rest its context: `halo`)."""
        known = known_input(codes, self.num_codes(layer), upto)
        at = pass_map(*known.shape[1:]) == upto
        if rows is not None:
            at[:rows[0]], at[rows[1]:] = False, False
        net, above = self.integer_net(layer), _above_input(above, len(known))

        def tables_at(part):
            return net.logits(known, above, part, then=tables_of, dtype=np.float64)

        def tables_of(logits, out):
            entropy.integer_logit_tables(logits, integer_net.ACT_BITS, out=out)

        return _in_parts(tables_at, at)

    def halo(self, layer):
        """(rows of context, alignment): a position's tables depend on the codes within `depth` rows of it (one
        per 3x3 convolution), so a band of layer `layer`'s grid with that many rows of codes above and below gives
        the tables of the whole grid; bands start on rows that are multiples of the alignment (the 2x2 pass
        lattice and the layer above's factor)."""
        config = self.configs[layer]
        align = 2 * int(config.get("factor") or 1) if config.get("above_codes") is not None else 2
        return -(-(int(config["depth"]) + 1) // align) * align, align

    def coded_bits(self, layer, codes, above):
        """What coding `codes` [n, h, w] costs under the integer tables (`tables`), in bits: float [n]."""
        codes = np.asarray(codes, np.int32)
        passes = pass_map(*codes.shape[1:])
        total = np.zeros(len(codes))
        for p in range(PASSES):
            f = np.take_along_axis(self.tables(layer, codes, above, p), codes[:, passes == p][..., None], -1)
            total -= np.log2(f[..., 0] / entropy.TOTAL).sum(axis=1)
        return total

    @functools.cached_property
    def digest(self):
        """8 bytes naming the networks and the rule that makes tables of them (`RULE`): SHA-256 of the rule,
        the configs and the weights (big-endian float32)."""
        h = hashlib.sha256(RULE.encode())
        for layer in sorted(self.configs):
            h.update(json.dumps({"layer": layer, **self.configs[layer]}, sort_keys=True).encode())
            for w in self.weights[layer]:
                h.update(np.ascontiguousarray(w, ">f4").tobytes())
        return h.digest()[:HASH_BYTES]

    def save(self, path):
        """Writes `<name>.context.npz`: the fields as JSON and every network's weights as arrays."""
        meta = {"model": self.model, "weights_hash": self.weights_hash, "source": self.source,
                "nets": {str(l): c for l, c in sorted(self.configs.items())}}
        arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
        for l, weights in self.weights.items():
            for i, w in enumerate(weights):
                arrays[f"layer{l}_{i}"] = w
        with open(os.fspath(path), "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path):
        """Reads a file written by `save` (NumPy only, no pickle); any damage is a `CodecError` that says
        how to refit."""
        try:
            with np.load(os.fspath(path), allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode())
                nets = {}
                for key, config in meta["nets"].items():
                    config = {k: config[k] for k in _CONFIG_KEYS}
                    weights = []
                    for i, shape in enumerate(weight_shapes(config)):
                        w = np.asarray(data[f"layer{key}_{i}"])
                        if w.dtype != np.float32 or w.shape != tuple(shape):
                            raise ValueError(f"layer {key} weight {i} is {w.dtype} {w.shape}, expected float32 "
                                             f"{tuple(shape)}")
                        weights.append(w)
                    nets[int(key)] = (config, weights)
            priors = cls(str(meta["model"]), str(meta["weights_hash"]), nets, str(meta.get("source", "")))
            for layer in priors.configs:  # the integer networks coding will use; checks the values too
                priors.integer_net(layer)
            return priors
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as err:
            raise CodecError(f"Cannot read the context priors {path}: {err}. Refit them with "
                             "`tfvq.codec.fit_context` and save them there.") from None


THREADS = min(2, os.cpu_count() or 1)
"""Threads that build a pass's tables, each for a part of its rows (NumPy lets go of the GIL in its loops)."""
PART_POSITIONS = 1 << 11
"""... when the pass codes at least this many positions per thread."""
_POOL = {}


def _in_parts(tables_at, at):
    """`tables_at(at)` [n, at.sum(), K], computed as the concatenation of `tables_at` of masks of consecutive rows
    of `at` on `THREADS` threads (the same tables: a position's table depends on its codes only)."""
    counts = np.cumsum(at.sum(axis=1))
    parts = min(THREADS, int(counts[-1]) // PART_POSITIONS) if len(counts) else 0
    if parts < 2:
        return tables_at(at)
    cuts = [0, *(int(np.searchsorted(counts, counts[-1] * i / parts)) + 1 for i in range(1, parts)), len(at)]
    masks = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        mask = np.zeros_like(at)
        mask[a:b] = at[a:b]
        masks.append(mask)
    key = (os.getpid(), parts)  # a forked process has none of its parent's threads: a pool of its own
    if key not in _POOL:
        _POOL[key] = concurrent.futures.ThreadPoolExecutor(parts, thread_name_prefix="tfvq-context")
    with integer_net.one_blas_thread():  # one BLAS thread per table thread
        return np.concatenate(list(_POOL[key].map(tables_at, masks)), axis=1)


def read_context(path, model_name, num_codes, weights_hash):
    """The context priors in the file `path` for weights `weights_hash` (8 bytes) of a model with codebooks of
    `num_codes`, or None if there is no such file (read once per file and kept).

    Raises `CodecError` if the file is damaged, or was fitted for other weights or another layout.
    """
    if path is None or not os.path.exists(path):
        return None
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
    if key not in _LOADED:  # reading and converting costs more than coding a small file
        _LOADED.clear()
        _LOADED[key] = ContextPriors.load(path)
    priors = _LOADED[key]
    digest = bytes(weights_hash).hex()
    if priors.weights_hash != digest:
        raise CodecError(f"The context priors {path} were fitted for other weights of {model_name!r} (hash "
                         f"{priors.weights_hash}, these weights {digest}); refit them with `tfvq fit-priors`, or "
                         "delete the file.")
    for l in priors.configs:
        if not 1 <= l <= len(num_codes) or priors.num_codes(l) != num_codes[l - 1]:
            raise CodecError(f"The context priors {path} have a network for layer {l} with K = {priors.num_codes(l)}, "
                             f"which {model_name!r} does not have; refit them with `tfvq fit-priors`.")
    return priors


_LOADED = {}


def read_priors(paths, model_name, num_codes, weights_hash):
    """The static prior of some weights (`read_prior`: the uniform prior without a file) with their context
    priors attached (`read_context`: None without a file), from `paths` {"static": path, "context": path}
    (either may be missing or None)."""
    paths = paths or {}
    prior = read_prior(paths.get("static"), model_name, num_codes, weights_hash)
    return dataclasses.replace(prior, context=read_context(paths.get("context"), model_name, num_codes, weights_hash))


def layer_factors(layout):
    """{layer: grid factor to the layer above (None for the top)} of the layers a context net can serve:
    those whose grid is a whole multiple, the same in both axes, of the layer above's."""
    out = {}
    for l in range(1, layout.num_layers + 1):
        (h, w) = layout.grids[l - 1]
        if l == layout.num_layers:
            if h * w > 1:  # a 1x1 top has no context: its static prior is the same thing
                out[l] = None
            continue
        (ha, wa) = layout.grids[l]
        if h % ha == 0 and w % wa == 0 and h // ha == w // wa:
            out[l] = h // ha
    return out
