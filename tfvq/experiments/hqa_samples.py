"""HQA's MNIST sample figures (HQA Figures 4, 6, 7 and Tables 4, 8), each made by one command.

From one trained HQA stack (default: the bundled `hqa_mnist`, five layers
from a 16x16 grid down to one code of 256) and real digits (`mnist10k`: the
training split for the generative model of Figure 7, the test split only as
held-out digits to show), it writes one PNG per figure:

* `free` (HQA Figure 4, "free samples"): every code of the 1x1 top layer
  decoded into pixel space (`model.decode(codes, 5)`), a 16x16 grid.
* `interpolations` (HQA Table 4 and Table 8): `model.interpolate` between the
  z_e of a held-out 2 and a held-out 9, one row per layer, layer 5 (Table 4's
  8-bit 1x1 space) at the top down to layer 1 as in Table 8, the originals at
  both ends.
* `stochastic` (HQA Figure 6): per row a held-out digit, 14 stochastic decodes
  of its top-layer code (HQA Algorithm 3: layer 5's code kept, a code sampled
  at every layer below) and the mean of the 14.
* `vae` (HQA Figure 7): a vanilla VAE (Kingma & Welling 2014; dense, Gaussian
  latent, 8 dims by default) fitted to the continuous z_e of layer 4 (2x2x64)
  of the training digits; samples of its prior are decoded to a z_e, quantised at
  layer 4 (the most probable code) and decoded down the stack.

Run: `python -m tfvq.experiments.hqa_samples [free|interpolations|stochastic|vae|all] --out=docs`
(`all` by default). It prints the wall time of each figure (and the VAE's
training loss); `--quick` makes tiny versions for the tests.
"""

import argparse
import dataclasses
import math
import os
import sys
import time

import tfvq  # noqa: F401  (first: selects TensorFlow's CPU allocator)

import keras
import numpy as np
import tensorflow as tf

from tfvq import data, zoo
from tfvq.models.hqa import HQA
from tfvq.train.outputs import image_grid, write_png

FIGURES = ("free", "interpolations", "stochastic", "vae")
FILE_SUFFIXES = {
    "free": "free_samples",
    "interpolations": "interpolations",
    "stochastic": "stochastic_decodes_fig6",
    "vae": "vae_samples",
}
"""`<model name>_<suffix>.png` per figure, e.g. `hqa_mnist_free_samples.png`."""

LATENT_DIM = 8
"""The Figure 7 VAE's Gaussian latent: of 8, 16 and 32 dims (6000 steps each), 8 gave the fewest broken
digits among its prior samples, though the lowest -ELBO came with 16 and 32 (docs/results.md)."""

INTERPOLATION_PAIR = (2, 9)
"""The classes of the held-out pair to interpolate between: HQA Tables 4 and 8 go from a 2 to a 9."""


@dataclasses.dataclass(frozen=True)
class Counts:
    """How much each figure shows and trains (`FULL`, or `QUICK` for the tests)."""

    interpolation_steps: int
    """Decoded points between (and including) the two z_e; HQA Table 8 shows 10 between the originals."""
    stochastic_rows: int
    """Held-out digits of Figure 6, one of each class in turn."""
    stochastic_decodes: int
    """Stochastic decodes per digit (HQA Figure 6: 14, then their mean)."""
    vae_grid: int
    """Figure 7's samples: a `vae_grid` x `vae_grid` grid."""
    vae_steps: int
    """Adam steps of the latent VAE at batch `vae_batch`."""
    vae_batch: int
    vae_train_limit: int = None
    """The first N training digits for the VAE (None: all)."""


FULL = Counts(interpolation_steps=10, stochastic_rows=10, stochastic_decodes=14, vae_grid=10,
              vae_steps=6000, vae_batch=128)
QUICK = Counts(interpolation_steps=4, stochastic_rows=3, stochastic_decodes=4, vae_grid=4,
               vae_steps=30, vae_batch=64, vae_train_limit=256)


# --------------------------------------------------------------------------------- the figures
def _tile(images, columns):
    """Rows of `columns` images (the last one padded with black) for `image_grid`."""
    images = np.asarray(images, np.float32)
    rows = math.ceil(len(images) / columns)
    padded = np.zeros((rows * columns,) + images.shape[1:], np.float32)
    padded[: len(images)] = images
    return list(padded.reshape((rows, columns) + images.shape[1:]))


def free_samples(model, layer=None):
    """HQA Figure 4: every code of `layer` (default the top, a 1x1 grid) decoded to pixels, in rows of
    sqrt(K): `[K, H, W, C]` tiled row by row, code k at row k // 16, column k % 16 for K = 256."""
    layer = model.num_layers if layer is None else layer
    if model.code_shape(layer) != (1, 1):
        raise ValueError(f"Free samples enumerate a 1x1 code; layer {layer}'s grid is {model.code_shape(layer)}.")
    k = model.hqa_layers[layer - 1].num_codes
    codes = np.arange(k, dtype=np.int32).reshape(k, 1, 1)
    return _tile(model.decode(codes, layer).numpy(), math.ceil(math.sqrt(k)))


def interpolation_rows(model, a, b, steps):
    """HQA Tables 4 and 8: per layer, top first, `a`, `model.interpolate(a, b, layer, steps)`, `b`."""
    rows = []
    for layer in range(model.num_layers, 0, -1):
        rows.append(np.concatenate([a[None], model.interpolate(a, b, layer, steps).numpy(), b[None]]))
    return rows


def stochastic_decodes(model, images, decodes, seed=0):
    """HQA Figure 6: `decodes` stochastic decodes (seeds `[seed, i]`) of each image's top-layer code,
    float32 `[N, decodes, H, W, C]`."""
    top = model.num_layers
    codes = model.encode(images, top)
    return np.stack([model.decode(codes, top, stochastic=True, seed=[seed, i]).numpy() for i in range(decodes)],
                    axis=1)


def stochastic_rows(images, samples):
    """HQA Figure 6's rows: per image, the original, its stochastic decodes `samples[i]` and their mean."""
    return [np.concatenate([images[i: i + 1], samples[i], samples[i].mean(0, keepdims=True)])
            for i in range(len(images))]


# ------------------------------------------------------------------------ Figure 7: a latent VAE
class LatentVAE(keras.Model):
    """A vanilla VAE (Kingma & Welling 2014) of flat vectors: a dense encoder to the mean and log-variance
    of a Gaussian q(z|x) of `latent_dim`, a N(0, I) prior, and a dense decoder to the mean of a Gaussian
    p(x|z) with one learned scale per dimension.

    Args:
      input_dim: D, the length of the (standardised) vectors.
      latent_dim: the Gaussian latent's dimensions.
      hidden: the width of the two hidden layers of each network.
      seed: seed of the initial weights.
    """

    def __init__(self, input_dim, latent_dim=LATENT_DIM, hidden=256, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.latent_dim = int(latent_dim)
        self.hidden = int(hidden)
        self.seed = int(seed)
        seeds = iter(range(self.seed * 6, self.seed * 6 + 6))

        def mlp(out, name):
            widths = ((self.hidden, "relu"), (self.hidden, "relu"), (out, None))
            init = keras.initializers.GlorotUniform
            return keras.Sequential([keras.layers.Dense(units, activation, kernel_initializer=init(next(seeds)))
                                     for units, activation in widths], name=name)

        self.encoder = mlp(2 * self.latent_dim, "encoder")
        self.decoder = mlp(self.input_dim, "decoder")
        self.encoder.build((None, self.input_dim))
        self.decoder.build((None, self.latent_dim))
        self.log_scale = self.add_weight(shape=(self.input_dim,), initializer="zeros", name="log_scale")

    def negative_elbo(self, x, eps):
        """(-log p(x|z) with z = mean + std * eps, KL(q(z|x) || N(0, I))): nats per vector, each [B]."""
        mean, log_var = tf.split(self.encoder(x), 2, axis=-1)
        loc = self.decoder(mean + tf.exp(0.5 * log_var) * eps)
        nll = tf.reduce_sum(0.5 * tf.square((x - loc) * tf.exp(-self.log_scale)) + self.log_scale
                            + 0.5 * math.log(2.0 * math.pi), axis=-1)
        kl = 0.5 * tf.reduce_sum(tf.exp(log_var) + tf.square(mean) - 1.0 - log_var, axis=-1)
        return nll, kl

    def sample(self, z):
        """The decoder's mean for prior samples `z` [N, latent_dim]."""
        return self.decoder(z)


def fit_latent_vae(vectors, steps, batch_size=128, latent_dim=LATENT_DIM, learning_rate=1e-3, seed=0):
    """Fits a `LatentVAE` to `vectors` [N, D] (standardised per dimension) with Adam.

    Returns `(sample, stats)`: `sample(n, seed)` gives n prior samples decoded to vectors [n, D] in the
    input's units, and `stats` the -ELBO (nats per vector) at the first step (`first_loss`) and its mean over
    the last `last_steps` (up to 100) steps (`loss` = `nll` + `kl`), and the training `seconds`.
    """
    vectors = np.asarray(vectors, np.float32)
    mean, std = vectors.mean(0), vectors.std(0) + 1e-6
    standardised = tf.constant((vectors - mean) / std)
    vae = LatentVAE(vectors.shape[1], latent_dim=latent_dim, seed=seed)
    optimizer = keras.optimizers.Adam(learning_rate)
    rng = tf.random.Generator.from_seed(seed)
    batch_size = min(int(batch_size), len(vectors))

    @tf.function
    def step():
        x = tf.gather(standardised, rng.uniform([batch_size], 0, len(vectors), dtype=tf.int32))
        eps = rng.normal([batch_size, vae.latent_dim])
        with tf.GradientTape() as tape:
            nll, kl = vae.negative_elbo(x, eps)
            loss = tf.reduce_mean(nll + kl)
        optimizer.apply_gradients(zip(tape.gradient(loss, vae.trainable_variables), vae.trainable_variables))
        return tf.stack([loss, tf.reduce_mean(nll), tf.reduce_mean(kl)])

    start = time.perf_counter()
    history = np.stack([step().numpy() for _ in range(int(steps))])
    seconds = time.perf_counter() - start
    last_steps = min(100, len(history))
    last = history[-last_steps:].mean(0)
    stats = {"steps": int(steps), "batch_size": batch_size, "seconds": seconds, "first_loss": float(history[0, 0]),
             "loss": float(last[0]), "nll": float(last[1]), "kl": float(last[2]), "dims": int(vectors.shape[1]),
             "latent_dim": vae.latent_dim, "last_steps": last_steps}

    def sample(n, seed=0):
        z = tf.random.stateless_normal([int(n), vae.latent_dim], seed=[seed, 1])
        return vae.sample(z).numpy() * std + mean

    return sample, stats


def vae_samples(model, train_images, count, steps, batch_size=128, seed=0, layer=None, latent_dim=LATENT_DIM):
    """HQA Figure 7: a `LatentVAE` on layer `layer`'s z_e (default the layer below the top: 2x2x64 for
    `hqa_mnist`) of `train_images`; `count` prior samples -> z_e -> the layer's most probable codes
    -> `model.decode(codes, layer)`. The codes are the layer's `HQALayer.codes_of` (its most probable code,
    for either kind of quantizer), as `HQA.encode` and `HQA.interpolate` take them.

    Returns `(images [count, H, W, C] float32 in [0, 1], stats)`: `fit_latent_vae`'s stats plus the codes
    the samples and the training digits use.
    """
    layer = model.num_layers - 1 if layer is None else layer
    hqa_layer = model.hqa_layers[layer - 1]
    z_train = model.encode_continuous(train_images, layer).numpy()
    sample, stats = fit_latent_vae(z_train.reshape(len(z_train), -1), steps, batch_size, latent_dim, seed=seed)
    z = sample(count, seed).reshape((count,) + z_train.shape[1:])
    codes = hqa_layer.codes_of(tf.constant(z))
    train_codes = hqa_layer.codes_of(tf.constant(z_train)).numpy()
    stats.update(layer=layer, codes_used=len(np.unique(codes.numpy())), train_codes_used=len(np.unique(train_codes)),
                 num_codes=hqa_layer.num_codes)
    return model.decode(codes, layer).numpy(), stats


# ------------------------------------------------------------------------------------ the command
def held_out_digits(images, labels, classes):
    """The first image of each class in `classes` (the first `len(classes)` images without labels)."""
    if labels is None:
        return images[: len(classes)]
    labels = np.asarray(labels)
    return np.stack([images[int(np.flatnonzero(labels == c)[0])] for c in classes])


def make_figure(figure, model, data_name, counts, seed=0, latent_dim=LATENT_DIM, log=print):
    """One figure's image rows for `image_grid` (and, for `vae`, a line on the VAE)."""
    if figure == "free":
        return free_samples(model)
    test = data.load_numpy(data_name, "test")
    labels = data.load_labels(data_name, "test")
    if figure == "interpolations":
        a, b = held_out_digits(test, labels, INTERPOLATION_PAIR)
        return interpolation_rows(model, a, b, counts.interpolation_steps)
    if figure == "stochastic":
        digits = held_out_digits(test, labels, [i % 10 for i in range(counts.stochastic_rows)])
        samples = stochastic_decodes(model, digits, counts.stochastic_decodes, seed)
        log(f"  {len(digits)} held-out digits, {counts.stochastic_decodes} decodes each: per-pixel std across a "
            f"digit's decodes {samples.std(1).mean():.4f} (mean over pixels and digits; pixels in [0, 1])")
        return stochastic_rows(digits, samples)
    train = data.load_numpy(data_name, "train", limit=counts.vae_train_limit)
    images, stats = vae_samples(model, train, counts.vae_grid ** 2, counts.vae_steps, counts.vae_batch, seed,
                                latent_dim=latent_dim)
    log(f"  VAE ({stats['latent_dim']}-dim latent) on layer {stats['layer']}'s z_e ({stats['dims']} dims) of "
        f"{len(train)} training images: {stats['steps']} steps at batch {stats['batch_size']} in "
        f"{stats['seconds']:.1f} s; -ELBO {stats['first_loss']:.1f} -> {stats['loss']:.1f} nats per z_e "
        f"(reconstruction {stats['nll']:.1f}, KL {stats['kl']:.1f}, mean of the last {stats['last_steps']} steps); "
        f"the samples use {stats['codes_used']} of {stats['num_codes']} layer-{stats['layer']} codes (training "
        f"digits: {stats['train_codes_used']})")
    return _tile(images, counts.vae_grid)


def run(figures, out, model_ref="hqa_mnist", dataset=None, seed=0, quick=False, latent_dim=LATENT_DIM,
        vae_steps=None, log=print):
    """Writes the PNG of each of `figures` into `out`; returns {figure: (path, wall seconds)}.

    `quick` takes the `QUICK` counts instead of `FULL`; `vae_steps` (if given) replaces their VAE steps.
    """
    start = time.perf_counter()
    model = zoo.load(model_ref, weights=zoo.refs.default_weights(model_ref))
    if not isinstance(model, HQA):
        raise ValueError(f"{model_ref} is a {type(model).__name__}; these figures need an HQA stack.")
    data_name, _ = zoo.refs.dataset_of(model_ref, None, dataset)
    name = os.path.basename(os.path.normpath(zoo.refs.file_name(model_ref)))
    counts = QUICK if quick else FULL
    if vae_steps is not None:
        counts = dataclasses.replace(counts, vae_steps=int(vae_steps))
    os.makedirs(out, exist_ok=True)
    log(f"{zoo.refs.describe(model_ref)} on {data_name}: loaded in {time.perf_counter() - start:.1f} s")
    written = {}
    for figure in figures:
        start = time.perf_counter()
        rows = make_figure(figure, model, data_name, counts, seed, latent_dim, log)
        path = write_png(os.path.join(out, f"{name}_{FILE_SUFFIXES[figure]}.png"), image_grid(rows))
        written[figure] = (path, time.perf_counter() - start)
        log(f"{figure}: wrote {path} in {written[figure][1]:.1f} s")
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tfvq.experiments.hqa_samples",
                                     description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figure", nargs="?", default="all", choices=FIGURES + ("all",),
                        help="which figure (default: all)")
    parser.add_argument("--out", default="docs", help="where the PNGs go (default docs/)")
    parser.add_argument("--model", default="hqa_mnist", help="an HQA zoo name with bundled weights, or a model "
                        "folder (default hqa_mnist)")
    parser.add_argument("--dataset", default=None, help="held-out and training digits (default: the data the "
                        "weights learned, mnist10k for hqa_mnist)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stochastic decodes and the VAE (default 0)")
    parser.add_argument("--latent_dim", type=int, default=LATENT_DIM,
                        help=f"the Figure 7 VAE's Gaussian latent dims (default {LATENT_DIM})")
    parser.add_argument("--vae_steps", type=int, default=None,
                        help=f"the Figure 7 VAE's training steps (default {FULL.vae_steps}, --quick {QUICK.vae_steps})")
    parser.add_argument("--quick", action="store_true", help="tiny counts and few VAE steps (for the tests)")
    args = parser.parse_args(argv)
    if args.latent_dim < 1 or (args.vae_steps is not None and args.vae_steps < 1):
        parser.error("--latent_dim and --vae_steps must be >= 1")
    figures = FIGURES if args.figure == "all" else (args.figure,)
    start = time.perf_counter()
    run(figures, args.out, args.model, args.dataset, args.seed, args.quick, args.latent_dim, args.vae_steps)
    print(f"total: {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
