"""Training throughput of hqa_mnist layer 1 at batch 512 (HQA Table 10).

The step is the trainer's own (`tfvq.train.loop.Trainer`): greedy layer-1
loss (HQA eq. 4), gradients, all-reduce, global-norm clipping and RAdam. Its
cost is dominated by the [131072, 256] distance / probability tensors (16x16
codes x 512 images x 256 codes). Variants, each in its own process, compared
as ratios in one run:

* `tfvq`: as `train.py` runs it: tfvq's quantizer maths (fused logits,
  `ops.relaxed_quantize` with its analytic gradient) and its runtime settings
  (BFC CPU allocator, oneDNN kernels, inter-op threads = 2 x cores).
* `tfvq-tf-defaults`: tfvq's maths with TensorFlow's defaults on this CPU
  (malloc allocator, no oneDNN, default thread pools).
* `straightforward`: the same model with the quantizer maths written plainly
  (distances as three ops, TFP's relaxed sample, entropy and commitment by
  autodiff) and TensorFlow's defaults.

The data are the embedded digits (MNIST is not downloadable here; the step
does not depend on pixel values).

Usage:
  python benchmarks/hqa_train.py [--steps 10] [--variants tfvq,straightforward]
"""

import argparse
import json
import os
import subprocess
import sys

VARIANTS = ("tfvq", "tfvq-tf-defaults", "straightforward")
TF_DEFAULTS = ("tfvq-tf-defaults", "straightforward")


def _install_straightforward():
    """Replaces tfvq's quantizer maths by a plain autodiff version (same maths)."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_probability as tfp

    from tfvq.layers import ops

    def scaled_distance_logits(x, codebook, scale=1.0):
        d = (tf.reduce_sum(x * x, -1, keepdims=True) - 2.0 * tf.matmul(x, codebook, transpose_b=True)
             + tf.reduce_sum(codebook * codebook, -1))
        return -scale * d

    def relaxed_quantize(logits, codebook, temperature, seed):
        temperature = tf.cast(temperature, logits.dtype)
        y = tfp.distributions.RelaxedOneHotCategorical(temperature, logits=logits).sample(seed=seed)
        log_q = tf.nn.log_softmax(logits)
        q = tf.exp(log_q)
        return (tf.matmul(y, codebook), tf.argmax(y, -1, output_type=tf.int32),
                -tf.reduce_sum(q * log_q, -1), tf.reduce_sum(q * logits, -1))

    ops.scaled_distance_logits = scaled_distance_logits
    ops.relaxed_quantize = relaxed_quantize
    del np


def _child(variant, batch_size, steps):
    import time

    import numpy as np

    import tfvq  # noqa: F401  (before TensorFlow: selects the CPU allocator)
    import tensorflow as tf

    from tfvq.train.strategies import set_threads

    if variant not in TF_DEFAULTS:
        set_threads()  # what train.py does; the two baselines keep TensorFlow's defaults

    if variant == "straightforward":
        _install_straightforward()
    from tfvq.train import loop

    trainer = loop.Trainer(loop.TrainOptions(model="hqa_mnist", dataset="digits", batch_size=batch_size,
                                             steps=10_000, layers=[1], model_dir=os.devnull + "_unused",
                                             verbose=False))
    step = trainer._make_step(1)
    iterator = trainer._dataset(1, 0)
    for _ in range(3):
        step(iterator)["loss"].numpy()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step(iterator)["loss"].numpy()
        times.append(time.perf_counter() - t0)
    ms = 1000 * float(np.median(times))
    print(json.dumps({"variant": variant, "ms": ms, "images_per_s": batch_size / ms * 1000}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.batch_size, args.steps)
        return
    print(f"hqa_mnist layer 1, batch {args.batch_size}, median of {args.steps} training steps (2-core CPU)")
    rows = []
    for variant in args.variants.split(","):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        tf_defaults = variant in TF_DEFAULTS
        env["TF_CPU_ALLOCATOR_USE_BFC"] = "false" if tf_defaults else "true"
        env["TF_ENABLE_ONEDNN_OPTS"] = "0" if tf_defaults else "1"
        cmd = [sys.executable, __file__, "--child", variant, "--batch_size", str(args.batch_size),
               "--steps", str(args.steps)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
        if proc.returncode or not lines:
            print(f"{variant:16s} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        rows.append(json.loads(lines[-1]))
    base = next((r for r in rows if r["variant"] == "straightforward"), None)
    print(f"{'variant':16s} {'ms/step':>9s} {'images/s':>9s} {'vs straightforward':>19s}")
    for r in rows:
        ratio = f"{base['ms'] / r['ms']:.2f}x" if base else "-"
        print(f"{r['variant']:16s} {r['ms']:9.0f} {r['images_per_s']:9.0f} {ratio:>19s}")


if __name__ == "__main__":
    main()
