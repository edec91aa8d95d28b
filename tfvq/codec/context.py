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
codes on the training split (`fit_context`), as the entropy models of
learned image codecs are.

Context priors live beside the weights they were fitted for, as one file
`<name>.context.npz` (`context_path_for`): every layer's network config and
weights as plain arrays (read with `allow_pickle=False`, so loading a
downloaded file runs no code) and the hash of the model weights they were
fitted for. A file coded with them records `ContextPriors.digest` combined
with the static prior's (`combined_digest`) in its header's prior hash field.
"""

import functools
import hashlib
import json
import os
import zipfile

import numpy as np

from tfvq.codec import entropy, integer_net
from tfvq.codec.format import HASH_BYTES, CodecError

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


def context_net(num_codes, above_codes=None, factor=1, **kwargs):
    """A built `tfvq.codec.context_net.ContextNet` (imported here: this module stays TensorFlow-free)."""
    from tfvq.codec.context_net import ContextNet

    net = ContextNet(num_codes, above_codes, factor, **kwargs)
    h = 2 * net.factor
    net((np.full((1, h, h), net.num_codes, np.int32), np.zeros((1, 2, 2), np.int32)))
    return net


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
    tables on any machine; the float Keras networks (`nets`, built on first
    use) are for fitting and for the float cross-entropy (`bits`).

    Attributes:
      model: zoo model name.
      weights_hash: hex `tfvq.codec.weights_hash` of the weights the networks were fitted for.
      configs, weights: {layer: `ContextNet` config}, {layer: its float32 weights}; a layer without one
        is coded otherwise.
      source: what they were fitted on, and their bits per image there.
    """

    def __init__(self, model, weights_hash, nets, source=""):
        """`nets`: {layer: a `ContextNet`, or (config, weights)}."""
        self.model, self.weights_hash, self.source = model, weights_hash, source
        self.configs, self.weights, self._nets, self._integer = {}, {}, {}, {}
        for layer, net in nets.items():
            if isinstance(net, tuple):
                config, weights = net
            else:
                config, weights = net_config(net), net.get_weights()
                self._nets[layer] = net
            self.configs[layer] = dict(config)
            self.weights[layer] = [np.asarray(w, np.float32) for w in weights]

    def has(self, layer):
        return layer in self.configs

    @property
    def nets(self):
        """{layer: Keras `ContextNet`} (built from the weights on first use)."""
        for layer in self.configs:
            if layer not in self._nets:
                net = context_net(**self.configs[layer])
                net.set_weights(self.weights[layer])
                self._nets[layer] = net
        return dict(self._nets)

    def integer_net(self, layer):
        """The `IntegerContextNet` of layer `layer` (built on first use)."""
        if layer not in self._integer:
            self._integer[layer] = integer_net.IntegerContextNet.from_weights(self.configs[layer],
                                                                              self.weights[layer])
        return self._integer[layer]

    def num_codes(self, layer):
        return int(self.configs[layer]["num_codes"])

    def logits(self, layer, known, above):
        """float32 logits [n, h, w, K] of the float network of layer `layer` from its input `known`."""
        import tensorflow as tf

        net = self.nets[layer]
        out = net((tf.constant(np.asarray(known, np.int32)), tf.constant(_above_input(above, len(known)))))
        return np.asarray(out, np.float32)

    def log_probs(self, layer, codes, above, upto):
        """log p [n, h, w, K] (float64, normalised) of the float network for layer `layer`'s codes in pass
        `upto`, given the codes of the earlier passes (read from `codes` [n, h, w]) and the layer above."""
        known = known_input(codes, self.num_codes(layer), upto)
        logits = self.logits(layer, known, above).astype(np.float64)
        logits -= logits.max(axis=-1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))

    def tables(self, layer, codes, above, upto):
        """The integer frequency tables [n, m, K] that code the m positions of pass `upto` of layer `layer`
        (in C order): the integer network's logits (`tfvq.codec.integer_net`) through
        `entropy.integer_logit_tables`. The same on every machine."""
        known = known_input(codes, self.num_codes(layer), upto)
        at = pass_map(*known.shape[1:]) == upto
        logits = self.integer_net(layer).logits(known, _above_input(above, len(known)), at)
        return entropy.integer_logit_tables(logits, integer_net.ACT_BITS)

    def bits(self, layer, codes, above):
        """The cross-entropy (bits) of `codes` [n, h, w] under the float network of layer `layer`: float [n]."""
        codes = np.asarray(codes, np.int32)
        passes = pass_map(*codes.shape[1:])
        total = np.zeros(len(codes))
        for p in range(PASSES):
            lp = np.take_along_axis(self.log_probs(layer, codes, above, p), codes[..., None], -1)[..., 0]
            total -= (lp * (passes == p)[None]).sum(axis=(1, 2)) / np.log(2)
        return total

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


def combined_digest(static_digest, context_digest):
    """The prior hash a file records when a layer is coded with context priors: both priors named at once."""
    return hashlib.sha256(bytes(static_digest) + bytes(context_digest)).digest()[:HASH_BYTES]


def context_path_for(model_name, weights=None):
    """Where the context priors of these weights live: `<weights>.context.npz`, beside the static prior."""
    from tfvq.codec.prior import SUFFIX as PRIOR_SUFFIX
    from tfvq.codec.prior import prior_path_for

    return prior_path_for(model_name, weights)[: -len(PRIOR_SUFFIX)] + SUFFIX


_LOADED = {}


def load_context(model_name, model, digest, weights=None):
    """The context priors of `model` (weights hash `digest`), or None if there is no file for them.

    Raises `CodecError` if the file was fitted for other weights or another layout.
    """
    path = context_path_for(model_name, weights)
    if not os.path.exists(path):
        return None
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
    if key not in _LOADED:  # reading and converting costs more than coding a small file
        _LOADED.clear()
        _LOADED[key] = ContextPriors.load(path)
    priors = _LOADED[key]
    if priors.weights_hash != digest.hex():
        raise CodecError(f"The context priors {path} were fitted for other weights of {model_name!r} (hash "
                         f"{priors.weights_hash}, these weights {digest.hex()}); refit them with "
                         "`tfvq.codec.fit_context` and save them there, or delete the file.")
    layout = model.code_layout()
    for l in priors.configs:
        if not 1 <= l <= layout.num_layers or priors.num_codes(l) != layout.num_codes[l - 1]:
            raise CodecError(f"The context priors {path} have a network for layer {l} with K = {priors.num_codes(l)}, "
                             f"which {model_name!r} does not have; refit them with `tfvq.codec.fit_context`.")
    return priors


def _shifted(images, shifts):
    """The images moved by (dy, dx) pixels for each shift, edges repeated: more code grids to fit on."""
    images = np.asarray(images)
    h, w = images.shape[1:3]
    r = max(max(abs(dy), abs(dx)) for dy, dx in shifts)
    padded = np.pad(images, ((0, 0), (r, r), (r, r), (0, 0)), mode="edge")
    return np.concatenate([padded[:, r - dy: r - dy + h, r - dx: r - dx + w] for dy, dx in shifts])


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


def fit_context(model_name, weights=None, images=None, layers=None, steps=3000, batch_size=64, learning_rate=2e-3,
                shifts=1, seed=0, verbose=True, **net_kwargs):
    """Fits a context network per layer on the codes of a training split (their cross-entropy, in bits).

    Args:
      model_name: a zoo model with discrete codes whose layers are coded top-down (HQA, VQ-VAE).
      weights: None for the bundled weights, or a path `tfvq.zoo.load` accepts.
      images: uint8 or float images of the model's shape; None: the zoo entry's training split.
      layers: the layers to fit (default: every layer `layer_factors` allows).
      steps, batch_size, learning_rate: Adam on the cross-entropy summed over the four passes.
      shifts: the images are also coded moved by up to this many pixels in each axis, edges repeated
        ((2 shifts + 1)^2 code grids per image): digits give few images, and a network fitted on the grids
        of 1500 images alone learns them by heart.
      seed: the seed of the networks' initialisation and of the batches.
      **net_kwargs: `ContextNet` sizes (width, depth, embed).

    Returns:
      `ContextPriors` (save them with `.save(context_path_for(model_name, weights))`).
    """
    import keras
    import tensorflow as tf

    from tfvq.codec.coding import encode_layers
    from tfvq.codec.files import load_model
    from tfvq.codec.prior import training_images

    model, digest = load_model(model_name, weights)
    layout = model.code_layout()
    if layout.cumulative:
        raise ValueError(f"{model_name!r} sends its layers together and codes them under its own prior "
                         "(coder 'model'); context priors are for models whose layers decode alone (HQA, VQ-VAE).")
    factors = layer_factors(layout)
    layers = sorted(factors) if layers is None else sorted(layers)
    for l in layers:
        if l not in factors:
            raise ValueError(f"Layer {l} of {model_name!r} cannot have a context prior (allowed: "
                             f"{sorted(factors)}): its grid is not a whole multiple of the layer above's.")
    images, source = training_images(model_name, images)
    moves = [(dy, dx) for dy in range(-shifts, shifts + 1) for dx in range(-shifts, shifts + 1)]
    x = _shifted(np.asarray(images), moves)
    needed = set(layers) | {l + 1 for l in layers if factors[l] is not None}
    codes = encode_layers(model, x, needed)
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    nets, report = {}, []
    for l in layers:
        k = layout.num_codes[l - 1]
        above_k = None if factors[l] is None else layout.num_codes[l]
        net = context_net(k, above_k, factors[l] or 1, **net_kwargs)
        own = codes[l]
        above = codes[l + 1] if above_k is not None else np.zeros((len(own), 1, 1), np.int32)
        passes = tf.constant(pass_map(*own.shape[1:]))
        optimizer = keras.optimizers.Adam(learning_rate)

        @tf.function
        def step(c, a, net=net, optimizer=optimizer, passes=passes, k=k):
            with tf.GradientTape() as tape:
                loss = 0.0
                for p in range(PASSES):
                    logits = net((tf.where(passes[None] < p, c, k), a))
                    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(c, logits)
                    loss += tf.reduce_sum(ce * tf.cast(passes == p, tf.float32)[None])
                loss = loss / tf.cast(tf.shape(c)[0], tf.float32) / np.log(2.0)
            grads = tape.gradient(loss, net.trainable_variables)
            optimizer.apply_gradients(zip(grads, net.trainable_variables))
            return loss

        progress = keras.utils.Progbar(steps, stateful_metrics=["bits"]) if verbose else None
        for i in range(steps):
            idx = rng.integers(0, len(own), batch_size)
            bits = step(tf.constant(own[idx]), tf.constant(above[idx]))
            if progress is not None and (i % 50 == 0 or i == steps - 1):
                progress.update(i + 1, [("bits", float(bits))])
        nets[l] = net
        fitted = ContextPriors(model_name, digest.hex(), {l: net})
        n = len(images)
        plain = slice(moves.index((0, 0)) * n, (moves.index((0, 0)) + 1) * n)  # the images as given
        mean_bits = float(np.mean(fitted.coded_bits(l, own[plain], None if above_k is None else above[plain])))
        report.append(f"layer {l} {mean_bits:.1f} bits")
    return ContextPriors(model_name, digest.hex(), nets, f"{source}; " + ", ".join(report))
