"""Training throughput of hqa_mnist layer 1 at batch 512 (HQA Table 10), by precision.

The step is the trainer's own (`tfvq.train.loop.Trainer`): greedy layer-1
loss (HQA eq. 4), gradients, all-reduce, global-norm clipping and RAdam. Its
cost is dominated by the [131072, 256] distance / probability tensors (16x16
codes x 512 images x 256 codes). Variants, each in its own process (so each
has its own peak memory), compared as ratios in one run:

* `float32`: as `train.py` runs it: tfvq's quantizer maths (fused logits,
  `ops.relaxed_quantize` with its analytic gradient) and its runtime settings
  (BFC CPU allocator, oneDNN kernels, inter-op threads = 2 x cores).
* `mixed_bfloat16`, `mixed_float16`: the same with `--precision=...`.
* `float32-xla`, `mixed_bfloat16-xla`: with `--jit_compile`.
* `float32-keras-mish`, `mixed_bfloat16-keras-mish`: with Keras's Mish
  (three elementwise kernels forward, autodiff backward) instead of the
  fused one of `tfvq.layers.activations`, to show what that buys.
* `tf-defaults`: float32 with TensorFlow's defaults on this CPU (malloc
  allocator, no oneDNN, default thread pools).
* `straightforward`: the same model with the quantizer maths written plainly
  (distances as three ops, TFP's relaxed sample, entropy and commitment by
  autodiff), Keras's Mish and TensorFlow's defaults.

With `--interleave` the variants run in one process instead, their steps
taken in turn, so that a shared machine's changing load falls on all of them
alike (the fair ratio; no per-variant peak memory then).

With `--codec` it also measures encode and decode throughput and peak memory
of `hqa_digits` (`--codec_models`, e.g. `hqa_digits,rrvq_digits`) at batch 256
(`--codec_batch`) in float32 and mixed_bfloat16 (untrained weights; the time
does not depend on them), each in its own process.

The data are the embedded digits (MNIST is not downloadable here; the step
does not depend on pixel values). The first lines printed are the CPU's model
name and its bfloat16 / AMX flags: bfloat16 gains depend on them.

Usage:
  python benchmarks/hqa_train.py --steps 10 --codec
  python benchmarks/hqa_train.py --interleave --steps 10 \
      --variants float32,mixed_bfloat16,mixed_float16,float32-keras-mish,mixed_bfloat16-keras-mish
  python benchmarks/hqa_train.py --variants float32,mixed_bfloat16,float32-xla,straightforward
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from machine import print_setup

VARIANTS = ("float32", "mixed_bfloat16", "mixed_float16", "float32-xla", "mixed_bfloat16-xla", "float32-keras-mish",
            "mixed_bfloat16-keras-mish", "tf-defaults", "straightforward")
DEFAULT_VARIANTS = "float32,mixed_bfloat16"
TF_DEFAULTS = ("tf-defaults", "straightforward")
def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


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

    def distance_scores(x, codebook, scale=1.0):
        return scale * (tf.reduce_sum(codebook * codebook, -1) - 2.0 * tf.matmul(x, codebook, transpose_b=True))

    def relaxed_quantize(logits, codebook, temperature, seed):
        temperature = tf.cast(temperature, logits.dtype)
        y = tfp.distributions.RelaxedOneHotCategorical(temperature, logits=logits).sample(seed=seed)
        log_q = tf.nn.log_softmax(logits)
        q = tf.exp(log_q)
        return (tf.matmul(y, codebook), tf.argmax(y, -1, output_type=tf.int32),
                -tf.reduce_sum(q * log_q, -1), tf.reduce_sum(q * logits, -1))

    ops.scaled_distance_logits = scaled_distance_logits
    ops.distance_scores = distance_scores
    ops.relaxed_quantize = relaxed_quantize
    _install_keras_mish()
    del np


def _install_keras_mish(keras_mish=True):
    """Models built by the trainer from now on keep Keras's Mish (`precision_scope` no longer maps "mish" to
    the fused one), or get the fused one again (`keras_mish=False`)."""
    import contextlib

    from tfvq.layers import activations, precision

    precision.fused_activations = contextlib.nullcontext if keras_mish else activations.fused_activations


def _trainer_step(variant, batch_size):
    """The trainer's layer-1 step function and its data iterator for `variant` (built now)."""
    from tfvq.train import loop

    precision = variant.replace("-xla", "").replace("-keras-mish", "") if variant not in TF_DEFAULTS else "float32"
    trainer = loop.Trainer(loop.TrainOptions(model="hqa_mnist", dataset="digits", batch_size=batch_size,
                                             steps=10_000, layers=[1], model_dir=os.devnull + "_unused",
                                             verbose=False, precision=precision,
                                             jit_compile=variant.endswith("-xla")))
    return trainer.make_step(1), trainer.make_dataset(1, 0)


def _interleaved_child(variants, batch_size, steps):
    """All `variants` in this one process, their steps taken in turn (round-robin), so that a change in the
    load of a shared machine falls on every variant alike; one JSON line per variant (no peak memory: the
    process holds them all)."""
    import numpy as np

    import tfvq  # noqa: F401
    import tensorflow as tf  # noqa: F401

    from tfvq.train.strategies import set_threads

    set_threads()
    steps_of = {}
    for variant in variants:
        _install_keras_mish(variant.endswith("-keras-mish"))
        step, iterator = _trainer_step(variant, batch_size)  # traced now, with this variant's Mish
        for _ in range(3):
            step(iterator)["loss"].numpy()
        steps_of[variant] = step, iterator
    times = {variant: [] for variant in variants}
    for _ in range(steps):
        for variant, (step, iterator) in steps_of.items():
            t0 = time.perf_counter()
            step(iterator)["loss"].numpy()
            times[variant].append(time.perf_counter() - t0)
    for variant in variants:
        ms = 1000 * float(np.median(times[variant]))
        print(json.dumps({"variant": variant, "ms": ms, "images_per_s": batch_size / ms * 1000, "peak_mb": None}))


def _child(variant, batch_size, steps):
    import numpy as np

    import tfvq  # noqa: F401  (before TensorFlow: selects the CPU allocator)
    import tensorflow as tf  # noqa: F401

    from tfvq.train.strategies import set_threads

    if variant not in TF_DEFAULTS:
        set_threads()  # what train.py does; the two baselines keep TensorFlow's defaults

    if variant == "straightforward":
        _install_straightforward()
    elif variant.endswith("-keras-mish"):
        _install_keras_mish()
    step, iterator = _trainer_step(variant, batch_size)
    for _ in range(3):
        step(iterator)["loss"].numpy()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step(iterator)["loss"].numpy()
        times.append(time.perf_counter() - t0)
    ms = 1000 * float(np.median(times))
    print(json.dumps({"variant": variant, "ms": ms, "images_per_s": batch_size / ms * 1000, "peak_mb": _peak_mb()}))


def codec_child(name, precision, batch_size, repeats):
    """Encode and decode throughput of zoo model `name` at `batch_size` in `precision` (JSON line)."""
    import numpy as np

    import tfvq  # noqa: F401
    import tensorflow as tf

    from tfvq.train.strategies import set_threads

    set_threads()
    from tfvq import zoo
    from tfvq.layers.precision import precision_scope

    with precision_scope(precision):
        model = zoo.build(name)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.integers(0, 256, (batch_size,) + tuple(model.image_shape), dtype=np.uint8))
    encode = tf.function(lambda x: model.encode(x))
    decode = tf.function(lambda codes: model.decode(codes, dtype="uint8"))
    codes = encode(images)
    decode(codes)

    def median_s(fn, arg):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            tf.nest.map_structure(lambda t: t.numpy(), fn(arg))
            times.append(time.perf_counter() - t0)
        return float(np.median(times))

    enc, dec = median_s(encode, images), median_s(decode, codes)
    print(json.dumps({"model": name, "precision": precision, "batch_size": batch_size,
                      "encode_images_per_s": batch_size / enc, "decode_images_per_s": batch_size / dec,
                      "peak_mb": _peak_mb()}))


def run_child(args_list, tf_defaults=False, all_lines=False):
    """Runs this script (or another benchmark's) with `args_list` in a subprocess; returns its last JSON line
    (or all of them, `all_lines`) and None, or None and the last line of its error output."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if tf_defaults:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = "false"
        env["TF_ENABLE_ONEDNN_OPTS"] = "0"
    else:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = "true"
        env["TF_ENABLE_ONEDNN_OPTS"] = "1"
    proc = subprocess.run([sys.executable] + args_list, capture_output=True, text=True, env=env)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode or not lines:
        return None, (proc.stderr.strip().splitlines() or ["?"])[-1]
    return ([json.loads(l) for l in lines] if all_lines else json.loads(lines[-1])), None


def codec_table(models, batch_size, repeats, script):
    """Encode/decode throughput of `models` in float32 and mixed_bfloat16, one process each."""
    print(f"\nencode / decode at batch {batch_size}, median of {repeats} calls, one process each (peak = the "
          "process's peak resident memory)")
    print(f"{'model':14s} {'precision':15s} {'encode img/s':>13s} {'decode img/s':>13s} {'peak MB':>8s}")
    rows = {}
    for name in models:
        for precision in ("float32", "mixed_bfloat16"):
            row, err = run_child([script, "--codec_child", name, "--precision", precision,
                                  "--codec_batch", str(batch_size), "--steps", str(repeats)])
            if row is None:
                print(f"{name:14s} {precision:15s} failed: {err}")
                continue
            rows[name, precision] = row
            base = rows.get((name, "float32"))
            ratio = "" if base is None or precision == "float32" else (
                f"  ({row['encode_images_per_s'] / base['encode_images_per_s']:.2f}x, "
                f"{row['decode_images_per_s'] / base['decode_images_per_s']:.2f}x)")
            print(f"{name:14s} {precision:15s} {row['encode_images_per_s']:13.0f} {row['decode_images_per_s']:13.0f} "
                  f"{row['peak_mb']:8.0f}{ratio}", flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"Comma-separated, from {', '.join(VARIANTS)}.")
    parser.add_argument("--codec", action="store_true", help="Also measure encode/decode throughput (--codec_models).")
    parser.add_argument("--codec_models", default="hqa_digits", help="Comma-separated zoo names.")
    parser.add_argument("--codec_batch", type=int, default=256)
    parser.add_argument("--interleave", action="store_true",
                        help="Run the variants in one process, their steps in turn (fair ratios on a shared "
                             "machine; no per-variant peak memory). Not for tf-defaults / straightforward.")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--interleaved_child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--codec_child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.batch_size, args.steps)
        return
    if args.interleaved_child:
        _interleaved_child(args.interleaved_child.split(","), args.batch_size, args.steps)
        return
    if args.codec_child:
        codec_child(args.codec_child, args.precision, args.codec_batch, args.steps)
        return
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    print_setup()
    variants = args.variants.split(",")
    if args.interleave:
        if set(variants) & set(TF_DEFAULTS):
            parser.error(f"--interleave runs in one process with train.py's settings: not {', '.join(TF_DEFAULTS)}")
        print(f"hqa_mnist layer 1, batch {args.batch_size}, median of {args.steps} training steps per variant, all "
              "variants in one process, their steps in turn")
        rows, err = run_child([__file__, "--interleaved_child", ",".join(variants), "--batch_size",
                               str(args.batch_size), "--steps", str(args.steps)], all_lines=True)
        results = [(row["variant"], row, None) for row in rows] if rows else [(v, None, err) for v in variants]
    else:
        print(f"hqa_mnist layer 1, batch {args.batch_size}, median of {args.steps} training steps, one process each "
              "(peak = the process's peak resident memory)")
        results = ((v, *run_child([__file__, "--child", v, "--batch_size", str(args.batch_size), "--steps",
                                   str(args.steps)], tf_defaults=v in TF_DEFAULTS)) for v in variants)
    print(f"{'variant':26s} {'ms/step':>9s} {'images/s':>9s} {'vs float32':>11s} {'peak MB':>8s}", flush=True)
    base = None
    for variant, row, err in results:
        if row is None:
            print(f"{variant:26s} failed: {err}", flush=True)
            continue
        base = row if variant == "float32" else base
        ratio = f"{base['ms'] / row['ms']:.2f}x" if base else "-"
        peak = "-" if row["peak_mb"] is None else f"{row['peak_mb']:.0f}"
        print(f"{variant:26s} {row['ms']:9.0f} {row['images_per_s']:9.0f} {ratio:>11s} {peak:>8s}", flush=True)
    if args.codec:
        codec_table([m for m in args.codec_models.split(",") if m], args.codec_batch, args.steps, __file__)


if __name__ == "__main__":
    main()
