"""Training step time and peak memory of the RRVQ-VAE zoo models at batch 64 (RRVQ App. C), by precision.

One step is what `tfvq.train` runs for an end-to-end model, in one
`tf.function`: the temperature schedule, `model.train_loss` (free-bits
negative ELBO in bits/dim, relaxed samples) under a gradient tape, gradients,
global-norm clipping (the recipe's `clip_norm`) and an AdaMax update with
the recipe's learning rate. It runs on one device without a distribution
strategy (on one device the trainer's all-reduce is an identity). The stateless
sampling seed and the step counter are tensor arguments, so the function is
traced once. The images are random 8-bit images (k / 255) of the model's
shape; the step does not depend on pixel values.

Each model runs in each precision (`--precisions`, default float32 and
mixed_bfloat16: the model built under that Keras dtype policy, as
`train.py --precision` builds it) in its own subprocess of this script, so
every run's peak memory (the process's resident-set high-water mark,
`ru_maxrss`) is its own. The first line printed is the CPU's model name and
its bfloat16 / AMX flags. With `--codec` it also measures encode and decode
throughput and peak memory of `hqa_digits` and `rrvq_digits` (`--codec_models`)
at batch 256 in both precisions, each in its own process.
The first step (tracing, graph optimisation and one run) is reported as the
compile time; the step time is the median of the timed steps after the
warm-up steps. A final table compares the models' step times, per latent
layer too, so the growth from L = 5 to L = 32 can be read off.

Usage:
  python benchmarks/rrvq_train.py [--steps 4] [--models rrvq_cifar10_l5,rrvq_cifar10] [--codec]
  python benchmarks/rrvq_train.py --models= --codec   # encode/decode only
  python benchmarks/rrvq_train.py --models rrvq_digits,rrvq_swatches --steps 2   # quick check
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

from machine import print_setup

DEFAULT_MODELS = "rrvq_cifar10_l5,rrvq_cifar10"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)  # run from a checkout without installing tfvq


def _rss_mb():
    """The process's current resident set (VmRSS), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def _child(name, batch_size, steps, warmup, threads, precision):
    """Runs in a subprocess: times one model's training step and prints a JSON line."""
    import resource

    import numpy as np

    import tfvq  # noqa: F401  (before TensorFlow: selects the CPU allocator and oneDNN)
    import tensorflow as tf
    import keras

    from tfvq import zoo
    from tfvq.layers.precision import precision_scope
    from tfvq.train.optimizers import OPTIMIZERS
    from tfvq.train.strategies import set_threads

    set_threads(threads)  # what train.py does: inter-op threads = twice the cores unless given
    keras.utils.set_random_seed(0)

    t0 = time.perf_counter()
    with precision_scope(precision):
        model = zoo.build(name)
    recipe = zoo.get(name).train
    optimizer = OPTIMIZERS[recipe.optimizer](learning_rate=recipe.learning_rate)
    variables = model.trainable_variables
    optimizer.build(variables)
    build_s = time.perf_counter() - t0
    params = int(sum(np.prod(v.shape) for v in variables))
    clip = recipe.clip_norm
    total_steps = recipe.steps[0]

    @tf.function
    def train_step(images, seed, step):
        model.set_temperature(step, total_steps)
        with tf.GradientTape() as tape:
            terms = model.train_loss(images, training=True, seed=seed)
        grads = tape.gradient(terms["loss"], variables)
        grads = [tf.convert_to_tensor(g) if g is not None else tf.zeros_like(v) for g, v in zip(grads, variables)]
        grads, norm = tf.clip_by_global_norm(grads, clip)
        optimizer.apply_gradients(zip(grads, variables))
        return terms["loss"], norm

    rng = np.random.default_rng(0)
    images = tf.constant(rng.integers(0, 256, size=(batch_size,) + model.image_shape).astype(np.float32) / 255.0)
    base_seed = tf.constant([0, 1], tf.int32)

    def run(i):
        step = tf.constant(i, tf.int64)
        seed = tf.random.experimental.stateless_fold_in(base_seed, step)
        start = time.perf_counter()
        loss, norm = train_step(images, seed, step)
        loss = float(loss.numpy())  # waits for the step
        return time.perf_counter() - start, loss, float(norm.numpy())

    rss_before = _rss_mb()
    compile_s, first_loss, _ = run(0)
    for i in range(1, warmup):
        run(i)
    times, losses = [], []
    for i in range(warmup, warmup + steps):
        dt, loss, _ = run(i)
        times.append(dt)
        losses.append(loss)
        print(f"  {name} ({precision}) step {i}: {dt:.2f} s, loss {loss:.3f}", flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    traces = train_step.experimental_get_tracing_count()
    print(json.dumps({
        "model": name, "precision": precision, "params": params, "L": model.num_latent_layers, "image_shape": list(model.image_shape),
        "batch_size": batch_size, "build_s": build_s, "compile_s": compile_s, "times": times,
        "step_s": float(np.median(times)), "peak_mb": peak_mb, "rss_before_mb": rss_before,
        "first_loss": first_loss, "last_loss": losses[-1], "traces": traces,
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
    }), flush=True)


def _run_child(name, precision, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--batch_size", str(args.batch_size),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--precision", precision]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    lines = []
    # The child's stdout: per-step progress (echoed as it comes) and the JSON result; its stderr (TensorFlow's
    # start-up logging) is kept aside and shown only if the child fails.
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        for line in proc.stdout:
            if line.startswith("{"):
                lines.append(line)
            else:
                print(line, end="", flush=True)
        proc.wait()
        if proc.returncode or not lines:
            err.seek(0)
            tail = err.read().strip().splitlines()[-5:]
            print(f"{name} ({precision}): failed (exit code {proc.returncode})", *tail, sep="\n", flush=True)
            return None
    row = json.loads(lines[-1])
    row["wall_s"] = time.perf_counter() - start
    return row


def _fmt_time(s):
    return f"{s:.2f}" if s < 10 else f"{s:.1f}"


def _report(rows, args, command):
    print()
    print(f"Training step (train_loss + gradients + clipping + AdaMax, one tf.function), batch {args.batch_size}, "
          f"median of {args.steps} steps after {args.warmup} warm-up step(s), "
          f"{os.cpu_count()}-core CPU, inter-op threads {rows[0]['inter_op']}")
    print(f"{'model':18s} {'precision':15s} {'L':>3s} {'params':>8s} {'compile s':>10s} {'s/step':>8s} {'images/s':>9s} "
          f"{'vs float32':>11s} {'peak MB':>8s} {'traces':>7s}")
    base = {r["model"]: r for r in rows if r["precision"] == "float32"}
    for r in rows:
        b = base.get(r["model"])
        ratio = f"{b['step_s'] / r['step_s']:.2f}x" if b else "-"
        print(f"{r['model']:18s} {r['precision']:15s} {r['L']:3d} {r['params'] / 1e6:7.1f}M {r['compile_s']:10.1f} "
              f"{_fmt_time(r['step_s']):>8s} {r['batch_size'] / r['step_s']:9.1f} {ratio:>11s} "
              f"{r['peak_mb']:8.0f} {r['traces']:7d}")
    print("(timed steps, s: " + "; ".join(f"{r['model']} {r['precision']} " + ", ".join(f"{t:.2f}" for t in r["times"])
                                          for r in rows) + ")")

    # Growth of the step time with depth, per precision: every model against the shallowest one.
    print()
    for precision in dict.fromkeys(r["precision"] for r in rows):
        same = [r for r in rows if r["precision"] == precision]
        small = min(same, key=lambda r: (r["L"], r["step_s"]))
        deep = max(same, key=lambda r: (r["L"], r["step_s"]))
        if deep["L"] != small["L"]:
            print(f"{precision}: {deep['model']} (L={deep['L']}) / {small['model']} (L={small['L']}): "
                  f"step time {deep['step_s'] / small['step_s']:.2f}x, "
                  f"per-layer step time {(deep['step_s'] / deep['L']) / (small['step_s'] / small['L']):.2f}x, "
                  f"parameters {deep['params'] / small['params']:.2f}x, "
                  f"peak memory {deep['peak_mb'] / small['peak_mb']:.2f}x")

    print()
    print("Markdown:")
    print()
    print("| model | precision | L | parameters | compile (s) | s/step | images/s | vs float32 | peak memory (MB) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        b = base.get(r["model"])
        ratio = f"{b['step_s'] / r['step_s']:.2f}x" if b else "-"
        print(f"| `{r['model']}` | {r['precision']} | {r['L']} | {r['params'] / 1e6:.1f}M | {r['compile_s']:.0f} | "
              f"{_fmt_time(r['step_s'])} | {r['batch_size'] / r['step_s']:.1f} | {ratio} | {r['peak_mb']:.0f} |")
    print()
    print(f"Command: {command}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="Comma-separated zoo names.")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16",
                        help="Comma-separated: float32, mixed_bfloat16 (the step has no loss scaling, so not "
                             "mixed_float16; train.py adds it).")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4, help="Timed steps (the median is reported).")
    parser.add_argument("--warmup", type=int, default=1,
                        help="Untimed steps before the timed ones; the first is reported as the compile time.")
    parser.add_argument("--threads", type=int, default=None,
                        help="TensorFlow inter-op threads (default: train.py's, twice the CPU cores).")
    parser.add_argument("--codec", action="store_true", help="Also measure encode/decode throughput (--codec_models).")
    parser.add_argument("--codec_models", default="hqa_digits,rrvq_digits", help="Comma-separated zoo names.")
    parser.add_argument("--codec_batch", type=int, default=256)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 1:
        parser.error("--steps and --warmup must be >= 1 (the first warm-up step is the compile).")
    precisions = [p for p in args.precisions.split(",") if p]
    bad = [p for p in precisions if p not in ("float32", "mixed_bfloat16")]
    if bad:
        parser.error(f"--precisions takes float32 and mixed_bfloat16, got {bad}.")
    if args.child:
        _child(args.child, args.batch_size, args.steps, args.warmup, args.threads, args.precision)
        return
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import hqa_train  # noqa: PLC0415  (the CPU description and the codec benchmark, shared)

    models = [m for m in args.models.split(",") if m]
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:])
    print_setup()
    rows = []
    for name in models:
        for precision in precisions:
            row = _run_child(name, precision, args)
            if row is None:
                continue
            print(f"{name} ({precision}): L={row['L']}, {row['params']:,} parameters, build {row['build_s']:.1f} s, "
                  f"compile (first step) {row['compile_s']:.1f} s, {row['step_s']:.2f} s/step "
                  f"({row['batch_size'] / row['step_s']:.1f} images/s), peak RSS {row['peak_mb']:.0f} MB "
                  f"({row['rss_before_mb']:.0f} MB before the first step), loss {row['first_loss']:.3f} -> "
                  f"{row['last_loss']:.3f}, {row['wall_s']:.0f} s in all", flush=True)
            rows.append(row)
    if rows:
        _report(rows, args, command)
    if args.codec:
        hqa_train.codec_table([m for m in args.codec_models.split(",") if m], args.codec_batch, max(args.steps, 5),
                              os.path.join(os.path.dirname(os.path.abspath(__file__)), "hqa_train.py"))


if __name__ == "__main__":
    main()
