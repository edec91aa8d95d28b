"""HQA §4 / Figure 1: mode covering, mode dropping and stochastic quantized hierarchies on a toy density.

Reproduces the illustrative task of Williams et al. 2020 (HQA §4.1-4.4) on the
four-mode density of `tfvq.data.toy_modes` with small MLP autoencoders. The two
modules share a name because they are one idea at two levels: the data module
holds the density and its samples, this one the experiment run on them.

* **(b) VQ-VAE, 4 codes (2 bits) and 2 codes (1 bit)** (HQA §4.2): encoder MLP
  -> `VectorQuantizer` -> decoder MLP, trained on samples with MSE + the VQ
  loss (codebook + commitment, HQA eq. 2).
* **(c) HQA, deterministic** (HQA §4.3, Algorithm 1): layer 1 is the pretrained
  4-code VQ-VAE of (b); layer 2 is a new 2-code VQ-VAE trained to reconstruct
  layer 1's continuous encoder output z_e (MSE in latent space, HQA §5.2.2).
  Reconstruction: encode through layers 1 and 2, quantise (argmin), decode
  layer 2 to ẑ_e1, quantise ẑ_e1 with layer 1's quantizer (argmin), decode
  with layer 1.
* **(d) HQA, stochastic** (HQA §4.4, §5, Algorithms 2-3): the same hierarchy
  built from `StochasticVectorQuantizer` layers: layer 1 is a 4-code
  stochastic layer trained on the data, layer 2 a 2-code stochastic layer
  trained on layer 1's z_e, each with HQA eq. 4 (MSE + beta_e (-H[q]) +
  beta_c E_q||z_e - e_k||^2) and a Gumbel-softmax temperature linearly
  annealed from 0.66 to 0.01 (HQA App. C, MNIST). Reconstruction draws a hard
  sample from the posterior (HQA eq. 3) at both layers (Algorithm 3).

For HQA only the top (2-code, 1-bit) codes are transmitted; layer 1's codes are
generated during decoding (HQA Figure 1 caption). Rates are log2 of the
transmitted codebook size.

Choices of this package, not given by the paper: MLPs with 2 hidden layers of
64 ReLU units, code_dim 8, Adam (1e-3, cosine-annealed over the final third of
each layer's training, as HQA App. C), batches of 512 fresh samples,
`--steps` steps per trained layer (five layers are trained), dead-code
resetting (HQA App. C.4) for the first 75% of every layer's training, and
each layer's input normalised by statistics of its training input (HQA App. C
normalises the inputs of layers 2 and above; the statistics are fixed here
because the layer below is frozen).

Metrics (per system, on `EVAL_SAMPLES` fresh samples):

* `rate_bits`: bits transmitted per datapoint.
* `modes_covered`: how many of the 4 modes have at least `MIN_MODE_FRACTION`
  (5%) of all reconstructions that have it as their nearest mode AND lie within
  `LOW_DENSITY_THRESHOLD` (3) standard deviations of it.
* `unrealistic_fraction`: the fraction of reconstructions in a low-density
  region, i.e. more than 3 std from every mode (`toy_modes.is_low_density`).
* `mse`: mean squared error between reconstructions and inputs.

Run: `python -m tfvq.experiments.toy_modes [--steps N] [--out DIR] [--seed S]`.
It prints the table, writes `toy_modes.json` and (with matplotlib, the `viz`
extra) `toy_modes.png` into `--out`. The default run (3000 steps per layer,
seed 0) takes about one minute on 2 CPU cores and gives, for seeds 0-4 alike:
VQ-VAE 4 codes 4/4 modes, 0% unrealistic; VQ-VAE 2 codes 0/4, 100%
unrealistic; deterministic HQA 2/4, 0%; stochastic HQA 4/4, 0%.
"""

import argparse
import json
import math
import os
import sys
import time

import tfvq  # noqa: F401  (sets the CPU allocator before TensorFlow starts)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfvq.data import toy_modes  # noqa: E402
from tfvq.layers import StochasticVectorQuantizer, VectorQuantizer  # noqa: E402

DEFAULT_STEPS = 3000
"""Training steps per layer (five layers are trained in all)."""

BATCH_SIZE = 512
HIDDEN_UNITS = 64
HIDDEN_LAYERS = 2
CODE_DIM = 8
LEARNING_RATE = 1e-3
COMMITMENT_COST = 0.25  # beta of HQA eq. 2 for the deterministic VQ layers
ENTROPY_COST = 1e-3  # beta_e of HQA eq. 4 / Algorithm 2 (Table 10, MNIST)
STOCHASTIC_COMMITMENT_COST = 1e-3  # beta_c of HQA eq. 4 / Algorithm 2 (Table 10, MNIST)
TEMPERATURE_START = 0.66  # HQA App. C, MNIST
TEMPERATURE_END = 0.01
CODE_RESET_FRACTION = 0.75  # HQA App. C.4: reset dead codes for the first 75% of training
EVAL_SAMPLES = 20000
MIN_MODE_FRACTION = 0.05
LOW_DENSITY_THRESHOLD = toy_modes.LOW_DENSITY_THRESHOLD

SYSTEMS = ("vqvae_4", "vqvae_2", "hqa_deterministic", "hqa_stochastic")
LABELS = {
    "vqvae_4": "VQ-VAE, 4 codes",
    "vqvae_2": "VQ-VAE, 2 codes",
    "hqa_deterministic": "HQA, deterministic",
    "hqa_stochastic": "HQA, stochastic",
}
DEFINITIONS = {
    "rate_bits": "bits transmitted per datapoint: log2 of the top (transmitted) codebook size",
    "modes_covered": (
        f"modes m with at least {MIN_MODE_FRACTION:.0%} of reconstructions having m as nearest mode "
        f"and lying within {LOW_DENSITY_THRESHOLD:g} std of it"
    ),
    "unrealistic_fraction": f"fraction of reconstructions more than {LOW_DENSITY_THRESHOLD:g} std from every mode",
    "mse": "mean squared error between reconstruction and input",
    "mode_fractions": "per mode, the fraction of reconstructions near it (as in modes_covered)",
}
VIZ_HINT = 'pip install -e ".[viz]"'


# ----------------------------------------------------------------- metrics
def mode_fractions(reconstructions, threshold=LOW_DENSITY_THRESHOLD):
    """Fraction of `reconstructions` that have mode m as nearest mode and lie
    within `threshold` std of it, for each of the 4 modes (float64 `[4]`)."""
    x = np.asarray(reconstructions, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return np.zeros(len(toy_modes.MODES))
    near = ~toy_modes.is_low_density(x, threshold=threshold)
    nearest = toy_modes.nearest_mode(x)
    counts = np.bincount(nearest[near], minlength=len(toy_modes.MODES))
    return counts / x.size


def modes_covered(reconstructions, min_fraction=MIN_MODE_FRACTION, threshold=LOW_DENSITY_THRESHOLD):
    """Number of modes covered: modes holding at least `min_fraction` of all
    reconstructions within `threshold` std (see `mode_fractions`)."""
    return int(np.sum(mode_fractions(reconstructions, threshold) >= min_fraction))


def unrealistic_fraction(reconstructions, threshold=LOW_DENSITY_THRESHOLD):
    """Fraction of reconstructions in low-density regions (`toy_modes.is_low_density`)."""
    x = np.asarray(reconstructions, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return 0.0
    return float(np.mean(toy_modes.is_low_density(x, threshold=threshold)))


def evaluate(inputs, reconstructions, rate_bits):
    """The table row of one system (without its name)."""
    inputs = np.asarray(inputs, dtype=np.float64).reshape(-1)
    reconstructions = np.asarray(reconstructions, dtype=np.float64).reshape(-1)
    if inputs.shape != reconstructions.shape:
        raise ValueError(f"inputs {inputs.shape} and reconstructions {reconstructions.shape} differ in shape.")
    return {
        "rate_bits": float(rate_bits),
        "modes_covered": modes_covered(reconstructions),
        "unrealistic_fraction": unrealistic_fraction(reconstructions),
        "mse": float(np.mean((reconstructions - inputs) ** 2)),
        "mode_fractions": [float(f) for f in mode_fractions(reconstructions)],
    }


# ------------------------------------------------------------------ models
def _mlp(out_dim, name):
    return keras.Sequential(
        [keras.layers.Dense(HIDDEN_UNITS, activation="relu") for _ in range(HIDDEN_LAYERS)]
        + [keras.layers.Dense(out_dim)],
        name=name,
    )


class Stage:
    """One layer of a quantized hierarchy: encoder MLP -> quantizer -> decoder MLP.

    The stage's input is normalised by a fixed `shift` and `scale` (statistics
    of its training input, see `fit_normalisation`); its decoder predicts the
    normalised input and `decode` undoes the normalisation.

    Args:
      name: a name for logs.
      in_dim: size of the stage's input (1 for data, `CODE_DIM` for z_e).
      quantizer: a `VectorQuantizer` or `StochasticVectorQuantizer` with
        `code_dim == CODE_DIM`.
    """

    def __init__(self, name, in_dim, quantizer):
        self.name = name
        self.in_dim = int(in_dim)
        self.quantizer = quantizer
        self.encoder = _mlp(CODE_DIM, f"{name}_encoder")
        self.decoder = _mlp(self.in_dim, f"{name}_decoder")
        self.shift = tf.Variable(tf.zeros([self.in_dim]), trainable=False, name=f"{name}_shift")
        self.scale = tf.Variable(1.0, trainable=False, name=f"{name}_scale")
        self.encoder.build((None, self.in_dim))
        self.decoder.build((None, CODE_DIM))
        self.quantizer.build((None, CODE_DIM))

    @property
    def num_codes(self):
        return self.quantizer.num_codes

    @property
    def stochastic(self):
        return isinstance(self.quantizer, StochasticVectorQuantizer)

    @property
    def trainable_variables(self):
        return (
            self.encoder.trainable_variables
            + self.decoder.trainable_variables
            + self.quantizer.trainable_variables
        )

    def fit_normalisation(self, inputs):
        """Sets `shift` to the per-dimension mean and `scale` to the RMS deviation of `inputs`."""
        inputs = np.asarray(inputs, dtype=np.float32)
        mean = inputs.mean(axis=0)
        rms = float(np.sqrt(np.mean((inputs - mean) ** 2)))
        self.shift.assign(mean)
        self.scale.assign(max(rms, 1e-6))

    def normalise(self, inputs):
        return (tf.convert_to_tensor(inputs, tf.float32) - self.shift) / self.scale

    def encode(self, inputs, training=False):
        """z_e of (un-normalised) inputs `[N, in_dim]` -> `[N, CODE_DIM]`."""
        return self.encoder(self.normalise(inputs), training=training)

    def quantize(self, z_e, stochastic=True):
        """Inference-time quantisation of z_e: `(codes int32 [N], code vectors [N, CODE_DIM])`.

        A `VectorQuantizer` takes the nearest code (HQA eq. 1); a
        `StochasticVectorQuantizer` draws a hard sample of HQA eq. 3 when
        `stochastic` (Algorithm 3) and takes the most probable code otherwise.
        The code vectors are looked up from the codebook by index, so they are
        exactly codebook rows."""
        if self.stochastic:
            codes = self.quantizer(z_e, training=False, stochastic=stochastic)["codes"]
        else:
            codes = self.quantizer(z_e, training=False)["codes"]
        return codes, self.quantizer.lookup(codes)

    def decode(self, z_q):
        """Decoder output, mapped back to the stage's (un-normalised) input space."""
        return self.decoder(z_q, training=False) * self.scale + self.shift

    def code_outputs(self):
        """`decode` of every codebook vector: the `[K, in_dim]` outputs this stage can produce."""
        return self.decode(self.quantizer.lookup(tf.range(self.num_codes))).numpy()


def _make_quantizer(num_codes, stochastic, seed):
    if stochastic:
        return StochasticVectorQuantizer(
            num_codes,
            CODE_DIM,
            temperature=TEMPERATURE_START,
            entropy_cost=ENTROPY_COST,
            commitment_cost=STOCHASTIC_COMMITMENT_COST,
            code_reset=True,
            seed=seed,
        )
    return VectorQuantizer(num_codes, CODE_DIM, commitment_cost=COMMITMENT_COST, code_reset=True, seed=seed)


def _learning_rate(i, steps):
    """Constant, then cosine-annealed to 0 over the final third (HQA App. C)."""
    start = 2 * steps // 3
    if i < start:
        return LEARNING_RATE
    progress = (i - start) / max(steps - start, 1)
    return LEARNING_RATE * 0.5 * (1.0 + math.cos(math.pi * progress))


def train_stage(stage, sample_batch, steps, lower=None, log=print):
    """Trains one stage greedily (HQA Algorithm 2).

    The reconstruction target is the stage's normalised input: data for layer
    1, and for higher layers the continuous z_e of the frozen layer below
    (`lower`, no quantisation; HQA §5.2.2). The loss is MSE plus the
    quantizer's loss: codebook + commitment (HQA eq. 2) for a `VectorQuantizer`,
    `beta_c E_q||z_e - e_k||^2 - beta_e H[q]` (HQA eq. 4) for a
    `StochasticVectorQuantizer`, whose temperature is annealed linearly from
    `TEMPERATURE_START` to `TEMPERATURE_END`.

    Args:
      stage: the `Stage` to train (its normalisation must already be fitted).
      sample_batch: `f(n) -> float32 [n, 1]` data samples.
      steps: number of optimiser steps.
      lower: callable mapping data to the z_e of the layer below, or None.
      log: print-like function for progress.

    Returns:
      The final batch's reconstruction MSE (normalised space).
    """
    optimizer = keras.optimizers.Adam(LEARNING_RATE)
    variables = stage.trainable_variables
    optimizer.build(variables)
    quantizer = stage.quantizer

    @tf.function
    def step(x, temperature, learning_rate):
        inputs = x if lower is None else tf.stop_gradient(lower(x))
        target = stage.normalise(inputs)
        if stage.stochastic:
            quantizer.temperature.assign(temperature)
        optimizer.learning_rate.assign(learning_rate)
        with tf.GradientTape() as tape:
            z_e = stage.encoder(target, training=True)
            out = quantizer(z_e, training=True)
            recon = stage.decoder(out["quantized"], training=True)
            mse = tf.reduce_mean(tf.square(recon - target))
            loss = mse + out["loss"]
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return mse, out["perplexity"]

    reset_until = int(CODE_RESET_FRACTION * steps)
    report_every = max(steps // 4, 1)
    mse = float("nan")
    for i in range(steps):
        if i == reset_until:
            quantizer.reset_enabled.assign(False)
        frac = i / max(steps - 1, 1)
        temperature = TEMPERATURE_START + (TEMPERATURE_END - TEMPERATURE_START) * frac
        mse, perplexity = step(
            tf.constant(sample_batch(BATCH_SIZE)),
            tf.constant(temperature, tf.float32),
            tf.constant(_learning_rate(i, steps), tf.float32),
        )
        if (i + 1) % report_every == 0 or i == steps - 1:
            log(
                f"  [{stage.name}] step {i + 1}/{steps}  mse {float(mse):.4f}  "
                f"code perplexity {float(perplexity):.2f}/{stage.num_codes}"
            )
    if steps <= reset_until:  # very short runs: stop resetting anyway
        quantizer.reset_enabled.assign(False)
    return float(mse)


# ---------------------------------------------------------- reconstruction
def reconstruct_vqvae(stage, x):
    """Single-layer VQ-VAE reconstruction: decode(quantize(encode(x)))."""
    _, z_q = stage.quantize(stage.encode(x), stochastic=False)
    return stage.decode(z_q).numpy()


def reconstruct_hqa(layer1, layer2, x, stochastic):
    """Two-layer HQA reconstruction (HQA Algorithm 1; Algorithm 3 when `stochastic`).

    `e1 = Encoder1(x)`, `e2 = Encoder2(e1)`, `q2 = Quantize2(e2)` (the
    transmitted code), `ê1 = Decoder2(q2)`, `q̂1 = Quantize1(ê1)` (this resolves
    layer 2's mode covering in layer 1's latent space), `x̂ = Decoder1(q̂1)`.
    With `stochastic`, each Quantize is a hard sample of HQA eq. 3; otherwise
    the nearest (most probable) code.

    Returns:
      `(x_hat [N, 1], top_codes [N], layer1_codes [N])` as NumPy arrays.
    """
    z_e1 = layer1.encode(x)
    codes2, z_q2 = layer2.quantize(layer2.encode(z_e1), stochastic=stochastic)
    z_e1_hat = layer2.decode(z_q2)
    codes1, z_q1 = layer1.quantize(z_e1_hat, stochastic=stochastic)
    x_hat = layer1.decode(z_q1)
    return x_hat.numpy(), codes2.numpy(), codes1.numpy()


# ------------------------------------------------------------------ training
def train_systems(steps=DEFAULT_STEPS, seed=0, log=print):
    """Trains the five layers behind the four systems of HQA Figure 1.

    Returns:
      A dict of `Stage`s: `vq4` (4-code VQ-VAE, also deterministic HQA layer 1),
      `vq2` (2-code VQ-VAE), `hqa_det_l2` (2-code VQ on `vq4`'s z_e),
      `sto_l1` (4-code stochastic layer on data), `sto_l2` (2-code stochastic
      layer on `sto_l1`'s z_e).
    """
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    keras.utils.set_random_seed(seed)
    data_rng = np.random.default_rng([seed, 1])
    norm_sample = toy_modes.sample(EVAL_SAMPLES, seed=np.random.default_rng([seed, 2]))

    def sample_batch(n):
        return toy_modes.sample(n, seed=data_rng)

    def layer1(name, num_codes, stochastic, qseed):
        stage = Stage(name, 1, _make_quantizer(num_codes, stochastic, qseed))
        stage.fit_normalisation(norm_sample)
        log(f"training {name}: {num_codes} codes on data ({'stochastic' if stochastic else 'deterministic'})")
        train_stage(stage, sample_batch, steps, log=log)
        return stage

    def layer2(name, below, stochastic, qseed):
        stage = Stage(name, CODE_DIM, _make_quantizer(2, stochastic, qseed))
        stage.fit_normalisation(below.encode(norm_sample).numpy())
        log(f"training {name}: 2 codes on {below.name}'s z_e ({'stochastic' if stochastic else 'deterministic'})")
        train_stage(stage, sample_batch, steps, lower=below.encode, log=log)
        return stage

    base = 1000 * int(seed)
    systems = {}
    systems["vq4"] = layer1("vq4", 4, False, base + 1)
    systems["vq2"] = layer1("vq2", 2, False, base + 2)
    systems["hqa_det_l2"] = layer2("hqa_det_l2", systems["vq4"], False, base + 3)
    systems["sto_l1"] = layer1("sto_l1", 4, True, base + 4)
    systems["sto_l2"] = layer2("sto_l2", systems["sto_l1"], True, base + 5)
    return systems


def reconstruct_all(systems, x):
    """Reconstructions `{system name: [N, 1]}` of `x` by the four systems."""
    return {
        "vqvae_4": reconstruct_vqvae(systems["vq4"], x),
        "vqvae_2": reconstruct_vqvae(systems["vq2"], x),
        "hqa_deterministic": reconstruct_hqa(systems["vq4"], systems["hqa_det_l2"], x, stochastic=False)[0],
        "hqa_stochastic": reconstruct_hqa(systems["sto_l1"], systems["sto_l2"], x, stochastic=True)[0],
    }


RATES = {"vqvae_4": math.log2(4), "vqvae_2": math.log2(2), "hqa_deterministic": 1.0, "hqa_stochastic": 1.0}


# ------------------------------------------------------------------- output
def format_table(table):
    """The table as text, one row per system."""
    lines = [
        f"{'system':20s} {'rate (bits)':>11s} {'modes covered':>14s} {'unrealistic':>12s} {'MSE':>8s}",
    ]
    for row in table:
        lines.append(
            f"{row['label']:20s} {row['rate_bits']:11g} {row['modes_covered']:>12d}/4 "
            f"{row['unrealistic_fraction']:12.3f} {row['mse']:8.4f}"
        )
    return "\n".join(lines)


def _smoothed_density(values, grid, bandwidth):
    """Gaussian KDE of `values` on the uniform `grid` (binned, then convolved)."""
    dx = grid[1] - grid[0]
    edges = np.concatenate([grid - dx / 2, [grid[-1] + dx / 2]])
    counts, _ = np.histogram(values, bins=edges)
    half = int(math.ceil(5 * bandwidth / dx))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) * dx / bandwidth) ** 2)
    kernel /= kernel.sum()
    return np.convolve(counts, kernel, mode="same") / (max(len(values), 1) * dx)


def plot_figure(recons, table, path):
    """Writes the 4-panel HQA Figure 1 reproduction to `path`.

    Reconstruction densities are Gaussian KDEs with bandwidth `toy_modes.STD`
    (a deterministic decoder outputs one value per code, so a raw histogram
    would be a set of spikes); shaded bands mark the realistic region (within
    3 std of a mode). Returns `path`, or None when matplotlib is not installed.
    """
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    all_values = np.concatenate([np.asarray(r).reshape(-1) for r in recons.values()])
    lo = min(-4.5, float(all_values.min()) - 1.0)
    hi = max(4.5, float(all_values.max()) + 1.0)
    grid = np.arange(lo, hi, 0.005)
    truth = toy_modes.density(grid)
    rows = {row["system"]: row for row in table}

    curves_max = max(
        [float(truth.max())]
        + [float(_smoothed_density(np.asarray(r).reshape(-1), grid, toy_modes.STD).max()) for r in recons.values()]
    )
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8), sharey=True)
    panels = [
        ("(a) True target density", []),
        ("(b) VQ-VAE, 4 and 2 codes", [("vqvae_4", "tab:red"), ("vqvae_2", "tab:green")]),
        ("(c) 2-layer HQA, deterministic", [("hqa_deterministic", "tab:red")]),
        ("(d) 2-layer HQA, stochastic", [("hqa_stochastic", "tab:red")]),
    ]
    band = LOW_DENSITY_THRESHOLD * toy_modes.STD
    for ax, (title, curves) in zip(axes, panels):
        for m in toy_modes.MODES:
            ax.axvspan(m - band, m + band, color="0.9", lw=0)
        ax.fill_between(grid, truth, color="tab:blue", alpha=0.25, lw=0)
        ax.plot(grid, truth, color="tab:blue", lw=1.0, label="true density")
        for name, color in curves:
            r = rows[name]
            label = (
                f"{r['label']} ({r['rate_bits']:g} bit{'s' if r['rate_bits'] != 1 else ''}): "
                f"{r['modes_covered']}/4 modes, {r['unrealistic_fraction']:.0%} unrealistic"
            )
            ax.plot(grid, _smoothed_density(np.asarray(recons[name]).reshape(-1), grid, toy_modes.STD),
                    color=color, lw=1.5, label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlim(lo, hi)
        ax.set_ylim(0.0, 1.6 * curves_max)
        ax.set_xlabel("x")
        ax.legend(fontsize=7, loc="upper center", frameon=False)
    axes[0].set_ylabel("density")
    fig.suptitle("HQA Figure 1 reproduction (tfvq.experiments.toy_modes); reconstructions as KDEs, bw = 1 std",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run(steps=DEFAULT_STEPS, seed=0, out_dir=None, log=print):
    """Trains all systems, evaluates them and writes the outputs.

    Args:
      steps: training steps per layer (five layers are trained).
      seed: seeds Keras/TF/NumPy, the quantizers' streams and the data.
      out_dir: where to write `toy_modes.json` and `toy_modes.png`; None writes nothing.
      log: print-like function.

    Returns:
      A dict: `table` (a list of rows, one per system in `SYSTEMS` order, each
      with `system`, `label`, `rate_bits`, `modes_covered`,
      `unrealistic_fraction`, `mse`, `mode_fractions`), `config`,
      `definitions`, `density`, `seconds`, and `files` (`json`, `figure`
      paths or None).
    """
    start = time.time()
    systems = train_systems(steps=steps, seed=seed, log=log)
    x = toy_modes.sample(EVAL_SAMPLES, seed=np.random.default_rng([seed, 3]))
    recons = reconstruct_all(systems, x)
    table = []
    for name in SYSTEMS:
        row = {"system": name, "label": LABELS[name]}
        row.update(evaluate(x, recons[name], RATES[name]))
        table.append(row)
    result = {
        "table": table,
        "config": {
            "steps_per_layer": int(steps),
            "seed": int(seed),
            "batch_size": BATCH_SIZE,
            "hidden_units": HIDDEN_UNITS,
            "hidden_layers": HIDDEN_LAYERS,
            "code_dim": CODE_DIM,
            "learning_rate": LEARNING_RATE,
            "vq_commitment_cost": COMMITMENT_COST,
            "entropy_cost": ENTROPY_COST,
            "stochastic_commitment_cost": STOCHASTIC_COMMITMENT_COST,
            "temperature": [TEMPERATURE_START, TEMPERATURE_END],
            "code_reset_fraction": CODE_RESET_FRACTION,
            "eval_samples": EVAL_SAMPLES,
        },
        "definitions": DEFINITIONS,
        "density": {"modes": [float(m) for m in toy_modes.MODES], "std": toy_modes.STD, "weights": "equal"},
        "files": {"json": None, "figure": None},
    }
    log("")
    log(format_table(table))
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        figure = plot_figure(recons, table, os.path.join(out_dir, "toy_modes.png"))
        if figure is None:
            log(f"figure skipped: matplotlib is not installed; get it with {VIZ_HINT}")
        else:
            log(f"figure: {figure}")
        result["files"]["figure"] = figure
        result["files"]["json"] = os.path.join(out_dir, "toy_modes.json")
    result["seconds"] = time.time() - start
    if out_dir is not None:
        with open(result["files"]["json"], "w") as f:
            json.dump(result, f, indent=2)
        log(f"table: {result['files']['json']}")
    log(f"total time {result['seconds']:.1f} s")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tfvq.experiments.toy_modes",
        description="Reproduce HQA Figure 1 (§4): VQ-VAE vs deterministic and stochastic quantized "
        "hierarchies on a 1-D four-mode density. Prints a table, writes a JSON and a PNG (needs "
        f"matplotlib: {VIZ_HINT}).",
    )
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help=f"training steps per layer; five layers are trained (default {DEFAULT_STEPS})")
    parser.add_argument("--out", default="toy_modes_results",
                        help="output directory for toy_modes.json and toy_modes.png (default ./toy_modes_results)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    run(steps=args.steps, seed=args.seed, out_dir=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
