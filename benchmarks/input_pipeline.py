"""Images/s of `tfvq.data.load` on a prepared tfds CelebA at 64x64 RGB: decoded every epoch, and kept decoded.

The script prepares a tfds `celeb_a` of `--images` 178x218 JPEGs (smooth colour fields with noise; tfds' own
builder encodes and writes them, with only its example generator replaced) in a temporary
data directory, so `tfvq.data.load("celeb_a", ...)` reads what it reads from a real one: tfds' TFRecord
shards, the JPEG decoded with only its central 148x148 window, resized to 64x64 (HQA §6.1). Then, at each
`--batch_sizes`, shuffled with a seed, each row times whole epochs to their last batch (the first two rows
from the `load` call, the later-epoch rows from the dataset `load` returned):

* `decode every epoch` (`cache="off"`, what a run without a cache does every epoch): one epoch;
* `cache file, first epoch` (`cache="file"` with no file yet): the one pass that decodes the split and writes
  `<data_dir>/tfvq_cache/celeb_a/train-64x64x3.npy`, then the epoch read from it;
* `cache file, later epochs` (the default `cache="auto"` finding that file, as a later run does):
  `--epochs` epochs in one repeated stream;
* `cache memory, later epochs` (`cache="memory"`): the same once `load` has decoded the split into memory.

Every batch is float32 in [0, 1] as the trainer receives it. Then the training step of `hqa_celeba64`
layer 1 (`--step_models`, at `--step_batch`, float32; random images, untrained weights) gives the images/s
this CPU's trainer consumes, and the step's floating-point operations per image (TensorFlow's profiler on
the loss and its gradients) turn an accelerator's sustained FLOP/s into the images/s it would consume.

Usage:
  python benchmarks/input_pipeline.py [--images 4096] [--batch_sizes 64,256] [--epochs 20] [--step_batch 32]
  python benchmarks/input_pipeline.py --batch_sizes= --step_models=rrvq_celeba64 --step_batch=4
"""

import argparse
import os
import shutil
import tempfile
import time

import numpy as np

import tfvq  # noqa: F401  (before TensorFlow: the CPU allocator)
import tensorflow as tf

from tfvq import data

from machine import print_setup


def faces(count, seed=0):
    """`count` uint8 images [218, 178, 3]: smooth colour fields plus noise (JPEG sizes like CelebA's)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:218, 0:178].astype(np.float32)
    for _ in range(count):
        a, b, c = rng.uniform(0.01, 0.05, 3)
        base = np.stack([np.sin(a * xx + b * yy), np.cos(b * xx - c * yy), np.sin(c * (xx + yy))], -1)
        yield np.clip(127.5 + 90 * base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def prepare_celeb_a(data_dir, count):
    """Writes a tfds `celeb_a` whose train split is `count` generated faces (validation and test: 8 each)."""
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()
    real = type(tfds.builder("celeb_a"))
    features = real(data_dir=data_dir).info.features
    extra = {"attributes": {k: False for k in features["attributes"].keys()}, "identity": {"Identity_No": 0},
             "landmarks": {k: 0 for k in features["landmarks"].keys()}}
    sizes = {"train": count, "validation": 8, "test": 8}

    class Generated(real, skip_registration=True):
        code_path = None  # no checksums file for a class defined here

        def _split_generators(self, dl_manager):
            return {split: ((i, dict(extra, image=image)) for i, image in enumerate(faces(n, seed=len(split))))
                    for split, n in sizes.items()}

    Generated.name = "celeb_a"
    Generated(data_dir=data_dir).download_and_prepare()


def epochs_per_s(ds, images, epochs=1, start=None):
    """Images/s of `epochs` epochs of `images` images from `ds`, timed from `start` (default: now)."""
    start = time.perf_counter() if start is None else start
    n = 0
    for batch in ds:
        n += int(batch.shape[0])
    assert n == images * epochs, (n, images, epochs)
    return n / (time.perf_counter() - start)


def rows(data_dir, images, batch_size, epochs):
    """[(row name, images/s)] at one batch size (the cache file is removed first, so the first epoch writes it)."""
    path = data.cache_file("celeb_a", "train", data_dir)
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    common = dict(batch_size=batch_size, data_dir=data_dir, shuffle=True, seed=0)
    out = []
    start = time.perf_counter()
    out.append(("decode every epoch", epochs_per_s(data.load("celeb_a", **common, cache="off"), images, 1, start)))
    start = time.perf_counter()
    out.append(("cache file, first epoch", epochs_per_s(data.load("celeb_a", **common, cache="file"), images, 1,
                                                         start)))
    ds = data.load("celeb_a", **common, cache="auto", repeat=True).take(images * epochs // batch_size)
    out.append((f"cache file, later epochs ({epochs})", epochs_per_s(ds, images, epochs)))
    ds = data.load("celeb_a", **common, cache="memory", repeat=True).take(images * epochs // batch_size)
    out.append((f"cache memory, later epochs ({epochs})", epochs_per_s(ds, images, epochs)))
    return out


def step_figures(name, batch_size, steps=3):
    """(images/s of the first stage's training step at `batch_size` in float32, GFLOP per image of its loss and
    gradients as TensorFlow's profiler counts them)."""
    from tfvq import zoo
    from tfvq.train.optimizers import make_optimizer
    from tfvq.train.step import make_step

    model = zoo.build(name)
    stage = model.training_stages(zoo.get(name).train, steps=1000)[0]
    variables = stage.variables()

    @tf.function(input_signature=[tf.TensorSpec((batch_size,) + model.image_shape, tf.float32)])
    def loss_and_grads(images):
        with tf.GradientTape() as tape:
            loss = stage.loss(images, tf.constant([0, 1], tf.int32))["loss"]
        return tape.gradient(loss, variables)

    options = tf.compat.v1.profiler.ProfileOptionBuilder(
        tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()).with_empty_output().build()
    flops = tf.compat.v1.profiler.profile(graph=loss_and_grads.get_concrete_function().graph, options=options)
    gflop = flops.total_float_ops / batch_size / 1e9

    optimizer = make_optimizer(stage.optimizer, stage.steps)
    optimizer.build(variables)
    counter = tf.Variable(0, dtype=tf.int64)
    images = np.random.default_rng(0).integers(0, 256, (batch_size,) + model.image_shape).astype(np.float32) / 255
    iterator = iter(tf.data.Dataset.from_tensors(images).repeat())
    step = make_step(tf.distribute.get_strategy(), stage, optimizer, counter, [0, 1])
    step(iterator)["loss"].numpy()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(iterator)["loss"].numpy()
        times.append(time.perf_counter() - start)
    return batch_size / float(np.median(times)), gflop


def pipelines(args, batch_sizes):
    """Prepares the generated celeb_a and prints the rows of every batch size."""
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="tfvq_input_pipeline_")
    try:
        start = time.perf_counter()
        prepare_celeb_a(data_dir, args.images)
        shards = os.path.join(data_dir, "celeb_a")
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(shards) for f in fs
                   if "train.tfrecord" in f)
        print(f"tfds celeb_a, train split: {args.images} generated 178x218 JPEGs in TFRecord shards "
              f"({size / args.images / 1024:.1f} KB each; prepared in {time.perf_counter() - start:.0f} s); "
              "tfvq.data.load(..., shuffle=True, seed=0) to float32 64x64x3 batches", flush=True)
        print(f"{'pipeline':34s} {'batch':>5s} {'images/s':>9s}")
        for batch_size in batch_sizes:
            for name, rate in rows(data_dir, args.images, batch_size, args.epochs):
                print(f"{name:34s} {batch_size:5d} {rate:9.0f}", flush=True)
    finally:
        if not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096, help="Training images of the generated tfds celeb_a.")
    parser.add_argument("--batch_sizes", default="64,256", help="Comma-separated batch sizes; empty: time the "
                        "training steps only.")
    parser.add_argument("--epochs", type=int, default=20, help="Epochs timed in the later-epochs rows.")
    parser.add_argument("--step_batch", type=int, default=32, help="Batch of the training steps measured.")
    parser.add_argument("--step_models", default="hqa_celeba64", help="Comma-separated zoo models whose first "
                        "stage's step is timed; empty: none.")
    parser.add_argument("--data_dir", help="Where to prepare the generated celeb_a (default: a temporary "
                        "directory, removed at the end).")
    args = parser.parse_args()
    from tfvq.train.strategies import set_threads

    set_threads()
    print_setup()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    if batch_sizes:
        pipelines(args, batch_sizes)
    models = [m for m in args.step_models.split(",") if m]
    if not models:
        return
    print(f"\ntraining step (first stage, batch {args.step_batch}, float32, median of 3)")
    print(f"{'model':22s} {'images/s':>9s} {'GFLOP/image':>12s}")
    for name in models:
        rate, gflop = step_figures(name, args.step_batch)
        print(f"{name:22s} {rate:9.1f} {gflop:12.2f}", flush=True)


if __name__ == "__main__":
    main()
