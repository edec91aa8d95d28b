"""Writes `quantizers_2026.keras` and `quantizers_2026.npz` (run once; the files are frozen test data).

Run from the repository root with the code of the commit the files record (see README.md):

    python tests/layers/data/make_quantizers_2026.py

A functional model holds one layer of each quantizer class of `tfvq.layers` (their registered Keras
names `tfvq>VectorQuantizer`, ...), whose state was moved by a few training calls (EMA statistics,
code usage, codebooks); the `.npz` holds the inputs and the model's inference outputs.
`tests/layers/test_saved_quantizers.py` loads the file with today's code and expects the same outputs.
"""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfvq.layers import (  # noqa: E402
    FiniteScalarQuantizer,
    LookupFreeQuantizer,
    RelaxedResponsibilityQuantizer,
    ResidualVectorQuantizer,
    StochasticVectorQuantizer,
    VectorQuantizer,
)

HERE = pathlib.Path(__file__).parent
D = 4


def quantizers():
    return {
        "vq": VectorQuantizer(8, D, ema=True, decay=0.9, expire_codes_below=0.5, reset_window=3, seed=1, name="vq"),
        "vq_options": VectorQuantizer(8, D, distance="cosine", rotation_trick=True, seed=2, name="vq_options"),
        "svq": StochasticVectorQuantizer(8, D, temperature=0.3, distance_scale=0.5, reset_window=2, seed=3, name="svq"),
        "rrvq": RelaxedResponsibilityQuantizer(8, D, temperature=0.4, seed=4, name="rrvq"),
        "rvq": ResidualVectorQuantizer(2, 8, D, ema=True, dropout=True, seed=5, name="rvq"),
        "fsq": FiniteScalarQuantizer((5, 4, 3, 3), name="fsq"),
        "lfq": LookupFreeQuantizer(D, name="lfq"),
    }


def build_model(layers):
    z = keras.Input((3, D), name="z")
    prior = keras.Input((3, D), name="prior")
    outputs = {}
    for name, layer in layers.items():
        if name in ("svq", "rrvq"):
            kw = dict(prior=prior) if name == "rrvq" else {}
            out = layer(z, training=False, stochastic=False, **kw)
        else:
            out = layer(z, training=False)
        for key, value in out.items():
            outputs[f"{name}/{key}"] = value
    return keras.Model({"z": z, "prior": prior}, outputs)


def main():
    rng = np.random.default_rng(2026)
    layers = quantizers()
    model = build_model(layers)
    layers["rrvq"].log_variances.assign(rng.uniform(-1.0, 1.0, size=(8, D)))
    for step in range(4):  # move the state: EMA statistics, code usage, resets
        batch = tf.constant(rng.normal(size=(6, D)), tf.float32)
        for name, layer in layers.items():
            kw = dict(seed=tf.constant([step, 7])) if name in ("svq", "rrvq") else {}
            layer(batch, training=True, **kw)
    inputs = {
        "z": rng.normal(size=(5, 3, D)).astype(np.float32),
        "prior": rng.normal(size=(5, 3, D)).astype(np.float32),
    }
    outputs = {k: np.asarray(v) for k, v in model(inputs).items()}
    model.save(HERE / "quantizers_2026.keras")
    np.savez(
        HERE / "quantizers_2026.npz",
        **{f"input/{k}": v for k, v in inputs.items()},
        **{f"output/{k}": v for k, v in outputs.items()},
    )
    print(f"wrote {len(outputs)} outputs of {len(layers)} layers", file=sys.stderr)


if __name__ == "__main__":
    main()
