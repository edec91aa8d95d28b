"""Forward+backward time and peak memory of each quantizer layer.

Compares tfvq's distance maths (one matrix product, no [N, K, D] tensor) with a
naive broadcast implementation `sum((x[:, None] - E[None])**2, -1)` at the size
of HQA layer 1 on a batch of 512 MNIST images: N = 512 * 16 * 16 = 131072
positions, K = 256 codes, D = 64.

Each measurement runs in its own subprocess so that peak memory (the growth of
the process's maximum resident set size over the step) is not shared between
runs. The naive version needs several [N, K, D] float32 tensors (8.6 GB each at
the full size); when they cannot fit in this machine's memory it is reported as
such and both implementations are also compared at the largest N that fits.

Usage:
  python benchmarks/quantizers.py            # full table
  python benchmarks/quantizers.py --repeats 5 --n 131072
"""

import argparse
import json
import os
import subprocess
import sys

_ALLOCATOR = None  # None: the tfvq default (BFC); "bfc" or "default" from --allocator
LAYERS = ("VectorQuantizer", "VectorQuantizer(ema)", "StochasticVectorQuantizer", "RelaxedResponsibilityQuantizer")


def _naive_ops():
    """Installs broadcast versions of the distance maths into tfvq.layers.ops."""
    import math

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


def _child(layer_name, impl, n, k, d, repeats):
    """Runs in a subprocess: times one layer and prints a JSON line."""
    import resource
    import time

    import numpy as np

    import tfvq  # noqa: F401  (before TensorFlow: selects the CPU allocator)
    import tensorflow as tf

    if impl == "naive":
        _naive_ops()  # "xla" is tfvq's maths compiled with jit_compile=True
    from tfvq.layers import RelaxedResponsibilityQuantizer, StochasticVectorQuantizer, VectorQuantizer

    layer = {
        "VectorQuantizer": lambda: VectorQuantizer(k, d),
        "VectorQuantizer(ema)": lambda: VectorQuantizer(k, d, ema=True),
        "StochasticVectorQuantizer": lambda: StochasticVectorQuantizer(k, d, code_reset=True),
        "RelaxedResponsibilityQuantizer": lambda: RelaxedResponsibilityQuantizer(k, d),
    }[layer_name]()
    layer.build((None, d))
    x = tf.Variable(np.random.default_rng(0).normal(size=(n, d)).astype(np.float32))

    @tf.function(jit_compile=(impl == "xla"))
    def step():
        with tf.GradientTape() as tape:
            out = layer(x, training=True)
            y = tf.reduce_mean(tf.square(out["quantized"])) + out["loss"]
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
    print(json.dumps({"ms": 1000 * float(np.median(times)), "peak_mb": (peak - base) / 1024.0}))


def _measure(layer, impl, n, k, d, repeats):
    cmd = [sys.executable, __file__, "--child", layer, impl, str(n), str(k), str(d), str(repeats)]
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


def _table(n, k, d, repeats):
    print(f"N={n} K={k} D={d}, median of {repeats} forward+backward steps (float32, CPU, {_ALLOCATOR} allocator)")
    print(f"{'layer':32s} {'tfvq ms':>9s} {'tfvq MB':>9s} {'naive ms':>9s} {'naive MB':>9s} {'speed-up':>9s} {'memory':>8s}")
    rows = []
    for layer in LAYERS:
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
    parser.add_argument("--xla", action="store_true",
                        help="Compare tfvq with the same step compiled by XLA (jit_compile=True) instead of naive.")
    parser.add_argument("--layers", default=",".join(LAYERS), help="Comma-separated layer names to measure.")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global _ALLOCATOR
    _ALLOCATOR = args.allocator
    if args.child:
        layer, impl, n, k, d, repeats = args.child
        _child(layer, impl, int(n), int(k), int(d), int(repeats))
        return
    layers = [l for l in args.layers.split(",") if l]
    if args.xla:
        _xla_table(args.n, args.k, args.d, args.repeats, layers)
        return
    rows = _table(args.n, args.k, args.d, args.repeats)
    if any(naive is None for _, _, naive in rows):
        n = args.n
        while n > 1024 and not _naive_fits(n, args.k, args.d):
            n //= 2
        print()
        _table(n, args.k, args.d, args.repeats)


if __name__ == "__main__":
    main()
