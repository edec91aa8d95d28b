"""Forward+backward time and peak memory of each quantizer layer.

Two tables, at the size of HQA layer 1 on a batch of 512 MNIST images:
N = 512 * 16 * 16 = 131072 positions, K = 256 codes, D = 64.

* naive: tfvq's distance maths (one matrix product, no [N, K, D] tensor)
  against a naive broadcast implementation `sum((x[:, None] - E[None])**2, -1)`
  installed in place of `tfvq.layers.ops`' distance functions, in float32. Only
  the layers whose distances come from `tfvq.layers.ops` take part (not FSQ or
  LFQ, which have no distances to compute).
* precision: every layer in float32 and under the Keras policy
  "mixed_bfloat16" (set before the layer is built; the input stays a float32
  variable and the layer casts it), the time ratio bf16 / f32, and the peak
  memory of each.

The step is `loss = mean(quantized^2) + out["loss"]` (`quantized` cast to
float32 first, a no-op in float32) and its gradients with respect to the input
and the layer's trainable weights. Layers and inputs:

  VectorQuantizer, VectorQuantizer(ema), StochasticVectorQuantizer,
  RelaxedResponsibilityQuantizer, VectorQuantizer(rotation) (rotation trick),
  VectorQuantizer(cosine): K codes, input [N, D].
  ResidualVectorQuantizer: 4 stages of K codes each, input [N, D].
  FiniteScalarQuantizer: levels (8, 5, 5, 5), 1000 implicit codes (FSQ paper
  Table 1), input [N, 4].
  LookupFreeQuantizer: code_dim 8, 2^8 = 256 implicit codes, input [N, 8], the
  layer's default codebook entropy; LookupFreeQuantizer(factorized) the same
  with codebook_entropy="factorized" (a failure is reported in its row if the
  layer has no such option).

Each measurement runs in its own subprocess so that peak memory (the growth of
the process's maximum resident set size over the step) is not shared between
runs. The naive version needs several [N, K, D] float32 tensors (8.6 GB each at
the full size); when they cannot fit in this machine's memory it is reported as
such and both implementations are also compared at the largest N that fits.

Every run first prints the command, the CPU model and its relevant flags.

Usage:
  python benchmarks/quantizers.py                      # both tables
  python benchmarks/quantizers.py --tables precision   # float32 vs mixed_bfloat16 only
  python benchmarks/quantizers.py --tables naive --repeats 5 --n 131072
  python benchmarks/quantizers.py --xla --layers VectorQuantizer
"""

import argparse
import json
import math
import os
import subprocess
import sys

from machine import print_setup

_ALLOCATOR = None  # None: the tfvq default (BFC); "bfc" or "default" from --allocator
LAYERS = ("VectorQuantizer", "VectorQuantizer(ema)", "StochasticVectorQuantizer", "RelaxedResponsibilityQuantizer")
"""The layers of the first version of this benchmark (and the default of --xla)."""
NEW_LAYERS = ("VectorQuantizer(rotation)", "VectorQuantizer(cosine)", "ResidualVectorQuantizer",
              "FiniteScalarQuantizer", "LookupFreeQuantizer", "LookupFreeQuantizer(factorized)")
ALL_LAYERS = LAYERS + NEW_LAYERS
NAIVE_LAYERS = tuple(l for l in ALL_LAYERS if not l.startswith(("FiniteScalarQuantizer", "LookupFreeQuantizer")))
"""The layers whose distances come from `tfvq.layers.ops`, so that the naive replacement applies to them."""
PRECISIONS = ("float32", "mixed_bfloat16")
RVQ_STAGES = 4
FSQ_LEVELS = (8, 5, 5, 5)
LFQ_BITS = 8
def layer_shape(layer, k, d):
    """`(input width, the codes as the tables show them)` of a layer of `ALL_LAYERS`."""
    if layer == "FiniteScalarQuantizer":
        return len(FSQ_LEVELS), f"{math.prod(FSQ_LEVELS)} ({'x'.join(map(str, FSQ_LEVELS))})"
    if layer.startswith("LookupFreeQuantizer"):
        return LFQ_BITS, f"{2**LFQ_BITS} (2^{LFQ_BITS})"
    if layer == "ResidualVectorQuantizer":
        return d, f"{RVQ_STAGES}x{k}"
    return d, str(k)


def _naive_ops():
    """Installs broadcast versions of the distance maths into tfvq.layers.ops."""
    import tensorflow as tf

    from tfvq.layers import ops

    def squared_distances(x, codebook):
        return tf.reduce_sum(tf.square(x[:, None, :] - codebook[None, :, :]), axis=-1)

    def gaussian_log_density_logits(x, means, log_variances=None):
        d = tf.cast(tf.shape(x)[-1], x.dtype)
        const = -0.5 * d * math.log(2 * math.pi)
        if log_variances is None:
            return -0.5 * squared_distances(x, means) + const
        var = tf.broadcast_to(tf.exp(log_variances), tf.shape(means))
        quad = tf.reduce_sum(tf.square(x[:, None, :] - means[None]) / var[None], axis=-1)
        return -0.5 * quad - 0.5 * tf.reduce_sum(tf.math.log(var), -1) + const

    def distance_scores(x, codebook, scale=1.0):
        return scale * squared_distances(x, codebook)

    def scaled_distance_logits(x, codebook, scale=1.0):
        return -scale * squared_distances(x, codebook)

    ops.squared_distances = squared_distances
    ops.distance_scores = distance_scores
    ops.scaled_distance_logits = scaled_distance_logits
    ops.gaussian_log_density_logits = gaussian_log_density_logits


def _child(layer_name, impl, n, k, d, repeats, precision="float32"):
    """Runs in a subprocess: times one layer and prints a JSON line."""
    import resource
    import time

    import numpy as np

    import tfvq  # noqa: F401  (before TensorFlow: selects the CPU allocator)
    import keras
    import tensorflow as tf

    if impl == "naive":
        _naive_ops()  # "xla" is tfvq's maths compiled with jit_compile=True
    from tfvq.layers import (
        FiniteScalarQuantizer,
        LookupFreeQuantizer,
        RelaxedResponsibilityQuantizer,
        ResidualVectorQuantizer,
        StochasticVectorQuantizer,
        VectorQuantizer,
    )

    keras.config.set_dtype_policy(precision)  # before the layer is built: it reads the global policy
    layer = {
        "VectorQuantizer": lambda: VectorQuantizer(k, d),
        "VectorQuantizer(ema)": lambda: VectorQuantizer(k, d, ema=True),
        "StochasticVectorQuantizer": lambda: StochasticVectorQuantizer(k, d, code_reset=True),
        "RelaxedResponsibilityQuantizer": lambda: RelaxedResponsibilityQuantizer(k, d),
        "VectorQuantizer(rotation)": lambda: VectorQuantizer(k, d, rotation_trick=True),
        "VectorQuantizer(cosine)": lambda: VectorQuantizer(k, d, distance="cosine"),
        "ResidualVectorQuantizer": lambda: ResidualVectorQuantizer(
            num_quantizers=RVQ_STAGES, num_codes=k, code_dim=d),
        "FiniteScalarQuantizer": lambda: FiniteScalarQuantizer(levels=FSQ_LEVELS),
        "LookupFreeQuantizer": lambda: LookupFreeQuantizer(code_dim=LFQ_BITS),
        # The factorised codebook entropy, where the layer offers a choice (its default at 8 bits may be exact)
        "LookupFreeQuantizer(factorized)": lambda: LookupFreeQuantizer(
            code_dim=LFQ_BITS, codebook_entropy="factorized"),
    }[layer_name]()
    width, _ = layer_shape(layer_name, k, d)
    layer.build((None, width))
    x = tf.Variable(np.random.default_rng(0).normal(size=(n, width)).astype(np.float32))

    @tf.function(jit_compile=(impl == "xla"))
    def step():
        with tf.GradientTape() as tape:
            out = layer(x, training=True)
            # quantized is bfloat16 under mixed_bfloat16; the losses are float32 (the cast is a no-op in float32)
            y = tf.reduce_mean(tf.square(tf.cast(out["quantized"], tf.float32))) + out["loss"]
        grads = tape.gradient(y, [x] + layer.trainable_weights)
        return [tf.convert_to_tensor(g) for g in grads if g is not None]

    def rss_kb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    base = rss_kb()
    grads = step()  # trace + first run
    _ = [g.numpy() for g in grads]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        grads = step()
        _ = [g.numpy() for g in grads]
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"ms": 1000 * float(np.median(times)), "peak_mb": (peak - base) / 1024.0,
                      "dtype": _out_dtype(layer, x)}))


def _out_dtype(layer, x):
    """The dtype of the layer's `quantized` (bfloat16 under mixed_bfloat16), as a check of the policy."""
    return layer(x[:2], training=False)["quantized"].dtype.name


def _measure(layer, impl, n, k, d, repeats, precision="float32"):
    cmd = [sys.executable, __file__, "--child", layer, impl, str(n), str(k), str(d), str(repeats), precision]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if _ALLOCATOR:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = "true" if _ALLOCATOR == "bfc" else "false"
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        raise RuntimeError(f"{layer} ({impl}) failed: {tail[0]}")
    return json.loads(lines[-1])


def _available_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _naive_fits(n, k, d):
    # Forward keeps x - E and its square; backward adds one more of each.
    return 4 * n * k * d * 4 < 0.8 * _available_bytes()


def _table(n, k, d, repeats, layers=NAIVE_LAYERS):
    print(f"N={n} K={k} D={d}, median of {repeats} forward+backward steps (float32, CPU, {_ALLOCATOR} allocator)")
    if "ResidualVectorQuantizer" in layers:
        print(f"(ResidualVectorQuantizer: {RVQ_STAGES} stages of K codes)")
    print(f"{'layer':32s} {'tfvq ms':>9s} {'tfvq MB':>9s} {'naive ms':>9s} {'naive MB':>9s} {'speed-up':>9s} {'memory':>8s}")
    rows = []
    for layer in layers:
        ours = _measure(layer, "tfvq", n, k, d, repeats)
        naive = _measure(layer, "naive", n, k, d, repeats) if _naive_fits(n, k, d) else None
        if naive is None:
            need = 4 * n * k * d * 4 / 2**30
            print(f"{layer:32s} {ours['ms']:9.1f} {ours['peak_mb']:9.0f} {'n/a':>9s} {'n/a':>9s}"
                  f"   naive needs ~{need:.0f} GiB: does not fit")
        else:
            print(f"{layer:32s} {ours['ms']:9.1f} {ours['peak_mb']:9.0f} {naive['ms']:9.1f} {naive['peak_mb']:9.0f}"
                  f" {naive['ms'] / ours['ms']:8.1f}x {naive['peak_mb'] / max(ours['peak_mb'], 1):7.1f}x")
        rows.append((layer, ours, naive))
    return rows


def _precision_table(n, k, d, repeats, layers):
    """tfvq in float32 and under mixed_bfloat16, each in its own process, one after the other per layer."""
    print(f"N={n} K={k} D={d}, median of {repeats} forward+backward steps (tfvq, CPU, {_ALLOCATOR} allocator): "
          "float32 vs mixed_bfloat16")
    print(f"{'layer':32s} {'width':>5s} {'codes':>14s} {'f32 ms':>9s} {'bf16 ms':>9s} {'bf16/f32':>9s}"
          f" {'f32 MB':>8s} {'bf16 MB':>8s}")
    rows = []
    for layer in layers:
        width, codes = layer_shape(layer, k, d)
        try:
            f32, bf16 = (_measure(layer, "tfvq", n, k, d, repeats, p) for p in PRECISIONS)
        except RuntimeError as e:
            print(f"{layer:32s} {width:5d} {codes:>14s}   {e}")
            continue
        note = "" if bf16.get("dtype") == "bfloat16" else f"  (quantized is {bf16.get('dtype')})"
        print(f"{layer:32s} {width:5d} {codes:>14s} {f32['ms']:9.1f} {bf16['ms']:9.1f} {bf16['ms'] / f32['ms']:8.2f}x"
              f" {f32['peak_mb']:8.0f} {bf16['peak_mb']:8.0f}{note}")
        rows.append((layer, f32, bf16))
    return rows


def _xla_table(n, k, d, repeats, layers):
    print(f"N={n} K={k} D={d}, median of {repeats} forward+backward steps (float32, CPU, {_ALLOCATOR} allocator)")
    print(f"{'layer':32s} {'tfvq ms':>9s} {'XLA ms':>9s} {'XLA / tfvq':>11s}")
    for layer in layers:
        ours = _measure(layer, "tfvq", n, k, d, repeats)
        xla = _measure(layer, "xla", n, k, d, repeats)
        print(f"{layer:32s} {ours['ms']:9.1f} {xla['ms']:9.1f} {xla['ms'] / ours['ms']:10.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=131072)
    parser.add_argument("--k", type=int, default=256)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--allocator", choices=["bfc", "default"], default="bfc",
        help="TensorFlow CPU allocator: 'bfc' (tfvq's default) or TensorFlow's 'default' (malloc).")
    parser.add_argument(
        "--tables", choices=["both", "naive", "precision"], default="both",
        help="naive: tfvq vs a naive broadcast implementation (float32); precision: tfvq in float32 vs "
             "mixed_bfloat16; both (the default): the naive table, then the precision table.")
    parser.add_argument("--xla", action="store_true",
                        help="Compare tfvq with the same step compiled by XLA (jit_compile=True) instead "
                             "(float32; default layers: " + ",".join(LAYERS) + ").")
    parser.add_argument(
        "--layers", default=None,
        help="Comma-separated layer names to measure, of: " + ",".join(ALL_LAYERS) + ". Default: all of them "
             "(the naive table leaves out FiniteScalarQuantizer and LookupFreeQuantizer, which have no distances).")
    parser.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global _ALLOCATOR
    _ALLOCATOR = args.allocator
    if args.child:
        layer, impl, n, k, d, repeats, precision = args.child
        _child(layer, impl, int(n), int(k), int(d), int(repeats), precision)
        return
    layers = ALL_LAYERS if args.layers is None else [l for l in args.layers.split(",") if l]
    unknown = [l for l in layers if l not in ALL_LAYERS]
    if unknown:
        parser.error(f"unknown layer(s) {', '.join(unknown)}; choose from {', '.join(ALL_LAYERS)}")
    sys.stdout.reconfigure(line_buffering=True)  # rows appear as they are measured, also through a pipe
    print_setup()
    if args.xla:
        _xla_table(args.n, args.k, args.d, args.repeats, LAYERS if args.layers is None else layers)
        return
    if args.tables in ("both", "naive"):
        naive_layers = [l for l in layers if l in NAIVE_LAYERS]
        rows = _table(args.n, args.k, args.d, args.repeats, naive_layers)
        if any(naive is None for _, _, naive in rows):
            n = args.n
            while n > 1024 and not _naive_fits(n, args.k, args.d):
                n //= 2
            print()
            _table(n, args.k, args.d, args.repeats, naive_layers)
        if args.tables == "both":
            print()
    if args.tables in ("both", "precision"):
        _precision_table(args.n, args.k, args.d, args.repeats, layers)


if __name__ == "__main__":
    main()
