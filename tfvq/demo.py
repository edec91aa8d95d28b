"""A short, real demonstration of the quantizer layers on embedded data.

Trains a small convolutional autoencoder on scikit-learn's 8x8 digits (shipped
inside the scikit-learn wheel, so no download) with each of the three
quantizers in turn, and reports reconstruction MSE, code perplexity and the
fixed rate in bits per image. It is what `python train.py` runs until the HQA
trainer lands.
"""

import math
import time

import keras
import numpy as np
import tensorflow as tf

from tfvq.layers import RelaxedResponsibilityQuantizer, StochasticVectorQuantizer, VectorQuantizer

QUANTIZERS = {
    "vq": lambda k, d: VectorQuantizer(k, d, commitment_cost=0.25),
    "stochastic": lambda k, d: StochasticVectorQuantizer(k, d, temperature=0.66, seed=0),
    "rrvq": lambda k, d: RelaxedResponsibilityQuantizer(k, d, temperature=0.66, seed=0),
}


def load_digits_images():
    """Returns scikit-learn's digits as float32 [N, 8, 8, 1] in [0, 1]."""
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.float32) / 16.0
    return images[..., None]


def _autoencoder(code_dim):
    enc = keras.Sequential(
        [
            keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="mish"),
            keras.layers.Conv2D(32, 3, padding="same", activation="mish"),
            keras.layers.Conv2D(code_dim, 1),
        ]
    )
    dec = keras.Sequential(
        [
            keras.layers.Conv2D(32, 3, padding="same", activation="mish"),
            keras.layers.UpSampling2D(2),
            keras.layers.Conv2D(32, 3, padding="same", activation="mish"),
            keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid"),
        ]
    )
    return enc, dec


def run(name, steps=300, batch_size=64, num_codes=16, code_dim=16, seed=0, log=print):
    """Trains one quantizer's autoencoder and returns its test metrics."""
    keras.utils.set_random_seed(seed)
    images = load_digits_images()
    train, test = images[:1500], images[1500:]
    enc, dec = _autoencoder(code_dim)
    quantizer = QUANTIZERS[name](num_codes, code_dim)
    optimizer = keras.optimizers.Adam(1e-3)
    rng = np.random.default_rng(seed)

    @tf.function
    def step(x, temperature):
        if hasattr(quantizer, "temperature"):
            quantizer.temperature.assign(temperature)
        with tf.GradientTape() as tape:
            out = quantizer(enc(x, training=True), training=True)
            recon = dec(out["quantized"], training=True)
            mse = tf.reduce_mean(tf.square(recon - x))
            loss = mse + out["loss"]
        variables = enc.trainable_variables + dec.trainable_variables + quantizer.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return mse, out["perplexity"]

    start = time.time()
    for i in range(steps):
        batch = train[rng.integers(0, len(train), batch_size)]
        temperature = 0.66 + (0.01 - 0.66) * i / max(steps - 1, 1)  # linear anneal, HQA §5.1
        mse, perp = step(tf.constant(batch), tf.constant(temperature, tf.float32))
        if (i + 1) % 100 == 0 or i == steps - 1:
            log(f"  [{name}] step {i + 1}/{steps}  mse {float(mse):.4f}  perplexity {float(perp):.1f}")
    kwargs = {} if name == "vq" else {"stochastic": False}
    out = quantizer(enc(test, training=False), training=False, **kwargs)
    recon = dec(out["quantized"], training=False).numpy()
    grid = out["codes"].shape[1:]
    return {
        "quantizer": name,
        "test_mse": float(np.mean((recon - test) ** 2)),
        "test_perplexity": float(out["perplexity"]),
        "bits_per_image": int(np.prod(grid)) * math.ceil(math.log2(num_codes)),
        "seconds": time.time() - start,
    }


def main(steps=300, log=print):
    log("tfvq layer demo: 8x8 digits -> 4x4 codes of 16 (64 bits per image), each quantizer in turn")
    results = [run(name, steps=steps, log=log) for name in QUANTIZERS]
    log(f"{'quantizer':12s} {'test MSE':>9s} {'perplexity':>11s} {'bits/image':>11s} {'seconds':>8s}")
    for r in results:
        log(f"{r['quantizer']:12s} {r['test_mse']:9.4f} {r['test_perplexity']:11.1f} "
            f"{r['bits_per_image']:11d} {r['seconds']:8.1f}")
    return results
