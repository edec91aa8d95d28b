"""Fitting the priors of a model's weights (TensorFlow and Keras): static counts and context networks.

The priors themselves are data and code with NumPy alone (`tfvq.codec.prior`,
`tfvq.codec.context`); this module makes them, on the codes a model gives its
training images, and evaluates the float context networks they were fitted as
(`float_bits`, to show what running them on integers costs).

    >>> static = tfvq.codec.fit_prior("hqa_digits")        # counts the training split's codes
    >>> priors = tfvq.codec.fit_context("hqa_digits")      # a context network per layer (minutes)
    >>> paths = tfvq.zoo.prior_paths(model)                 # where the model's priors live
    >>> static.save(paths["static"]); priors.save(paths["context"])

`tfvq fit-priors --model=NAME|FOLDER` does all of it.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfvq import data, zoo
from tfvq.codec import context
from tfvq.codec.coding import encode_layers
from tfvq.codec.context_net import ContextNet
from tfvq.codec.files import load_model
from tfvq.codec.prior import StaticPrior


def context_net(num_codes, above_codes=None, factor=1, **kwargs):
    """A built `tfvq.codec.context_net.ContextNet`."""
    net = ContextNet(num_codes, above_codes, factor, **kwargs)
    h = 2 * net.factor
    net((np.full((1, h, h), net.num_codes, np.int32), np.zeros((1, 2, 2), np.int32)))
    return net


def float_net(priors, layer):
    """The Keras `ContextNet` of layer `layer` of `priors`, with their float weights."""
    net = context_net(**priors.configs[layer])
    net.set_weights(priors.weights[layer])
    return net


def float_log_probs(priors, layer, codes, above, upto, net=None):
    """log p [n, h, w, K] (float64, normalised) of the float network for layer `layer`'s codes in pass
    `upto`, given the codes of the earlier passes (read from `codes` [n, h, w]) and the layer above."""
    net = net or float_net(priors, layer)
    known = context.known_input(codes, priors.num_codes(layer), upto)
    above = np.zeros((len(known), 1, 1), np.int32) if above is None else np.asarray(above, np.int32)
    logits = np.asarray(net((tf.constant(known), tf.constant(above))), np.float64)
    logits -= logits.max(axis=-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


def float_bits(priors, layer, codes, above):
    """The cross-entropy (bits) of `codes` [n, h, w] under the float network of layer `layer`: float [n]."""
    codes = np.asarray(codes, np.int32)
    passes = context.pass_map(*codes.shape[1:])
    net = float_net(priors, layer)
    total = np.zeros(len(codes))
    for p in range(context.PASSES):
        lp = np.take_along_axis(float_log_probs(priors, layer, codes, above, p, net), codes[..., None], -1)[..., 0]
        total -= (lp * (passes == p)[None]).sum(axis=(1, 2)) / np.log(2)
    return total


def training_images(model_name, images=None, weights=None, image_shape=None):
    """(images, what they are): the given images, or the training split of the dataset the model was trained
    on (a model folder's, `tfvq.zoo.refs.dataset_of`), else of the zoo entry's dataset."""
    if images is not None:
        return images, f"{len(images)} given images"
    dataset, _ = zoo.refs.dataset_of(model_name, weights)
    images = data.load_numpy(dataset, "train", image_shape=image_shape)
    return images, f"{dataset}/train, {len(images)} images"


def count_codes(model, images, batch_size=128, code_bias=None):
    """Every layer's code counts (int64 [K_l] per layer) over `images`: the codes `compress` sends (the most
    probable ones, or with `code_bias` those of `encode_biased`), one `encode` per group of layers a file
    carries."""
    layout = model.code_layout()
    counts = [np.zeros(k, np.int64) for k in layout.num_codes]
    starts = [1] if layout.cumulative else range(1, layout.num_layers + 1)
    for start in starts:
        codes = encode_layers(model, images, set(layout.layers_sent(start)), code_bias, batch_size)
        for l, c in codes.items():
            counts[l - 1] += np.bincount(c.ravel(), minlength=layout.num_codes[l - 1])
    return tuple(counts)


RATE_ROUNDS = 3
"""Rounds of counting with rate weights: the codes chosen under the last round's table, counted again (on
rrvq_mnist's top layer the table stops changing after two)."""


def fit_prior(model_name, weights=None, images=None, batch_size=128, rate_weights=None, rounds=RATE_ROUNDS):
    """Counts every layer's codes (the most probable ones, as `compress` sends) over a training split.

    With `rate_weights` {layer: lambda}, those layers' codes are chosen by rate, as the encoder will choose
    them with this prior (`StaticPrior.code_bias`: `argmax_k log q(k) + lambda log p(k)`): the first count
    is of q's most probable codes, and each of `rounds` more counts the codes chosen under the previous
    count's table (a fixed point of choice and table, as the alternating design of entropy-constrained VQ,
    Chou, Lookabaugh & Gray 1989).

    Args:
      model_name: a zoo model with discrete codes, or a model folder.
      weights: None for the bundled weights (a folder: its own), or a path `tfvq.zoo.load` accepts.
      images: uint8 or float images of the model's shape; None: the training
        split of the dataset a model folder was trained on, else of the zoo entry's dataset (`tfvq.data.load_numpy(dataset, "train")`).
      batch_size: images per `encode` call.
      rate_weights: None, or {layer: lambda > 0} (see above); the model must offer `encode_biased`.
      rounds: counts after the first, with `rate_weights`.

    Returns:
      a `StaticPrior` (save it with `.save(tfvq.zoo.prior_paths(model)["static"])`).
    """
    model, digest = load_model(model_name, weights)
    images, source = training_images(model_name, images, weights, tuple(model.image_shape))
    name = zoo.refs.file_name(model_name)
    prior = StaticPrior(name, digest.hex(), count_codes(model, images, batch_size), source)
    if rate_weights:
        prior = dataclasses.replace(prior, rate_weights=dict(rate_weights))  # checks the layers and weights
        if model.encode_biased(images[:1], prior.code_bias(), 1) is None:
            raise ValueError(f"{model_name!r} has no q to choose codes by rate (`encode_biased`): fit its prior "
                             "without rate weights.")
        for _ in range(int(rounds)):
            prior = dataclasses.replace(prior, counts=count_codes(model, images, batch_size, prior.code_bias()))
    return prior


def _shifted(images, shifts):
    """The images moved by (dy, dx) pixels for each shift, edges repeated: more code grids to fit on."""
    images = np.asarray(images)
    h, w = images.shape[1:3]
    r = max(max(abs(dy), abs(dx)) for dy, dx in shifts)
    padded = np.pad(images, ((0, 0), (r, r), (r, r), (0, 0)), mode="edge")
    return np.concatenate([padded[:, r - dy: r - dy + h, r - dx: r - dx + w] for dy, dx in shifts])


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
      `ContextPriors` (save them with `.save(tfvq.zoo.prior_paths(model)["context"])`).
    """
    model, digest = load_model(model_name, weights)
    layout = model.code_layout()
    if layout.cumulative:
        raise ValueError(f"{model_name!r} sends its layers together and codes them under its own prior "
                         "(coder 'model'); context priors are for models whose layers decode alone (HQA, VQ-VAE).")
    factors = context.layer_factors(layout)
    layers = sorted(factors) if layers is None else sorted(layers)
    for l in layers:
        if l not in factors:
            raise ValueError(f"Layer {l} of {model_name!r} cannot have a context prior (allowed: "
                             f"{sorted(factors)}): its grid is not a whole multiple of the layer above's.")
    images, source = training_images(model_name, images, weights, tuple(model.image_shape))
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
        passes = tf.constant(context.pass_map(*own.shape[1:]))
        optimizer = keras.optimizers.Adam(learning_rate)

        @tf.function
        def step(c, a, net=net, optimizer=optimizer, passes=passes, k=k):
            with tf.GradientTape() as tape:
                loss = 0.0
                for p in range(context.PASSES):
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
        fitted = context.ContextPriors(zoo.refs.file_name(model_name), digest.hex(), {l: net})
        n = len(images)
        plain = slice(moves.index((0, 0)) * n, (moves.index((0, 0)) + 1) * n)  # the images as given
        mean_bits = float(np.mean(fitted.coded_bits(l, own[plain], None if above_k is None else above[plain])))
        report.append(f"layer {l} {mean_bits:.1f} bits")
    return context.ContextPriors(zoo.refs.file_name(model_name), digest.hex(), nets,
                                 f"{source}; " + ", ".join(report))
