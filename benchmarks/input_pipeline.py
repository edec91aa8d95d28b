"""Images/s of the CelebA input pipeline (decode, 148x148 crop, resize to 64x64) beside the training step's needs.

tfds stores CelebA as 178x218 (W x H) JPEGs; `tfvq.data.tfds_datasets` decodes
only the central 148x148 window (`tf.image.decode_and_crop_jpeg`) and resizes
it to 64x64 with antialiased bilinear filtering (HQA §6.1, RRVQ §4), in a
`tf.data` map with `num_parallel_calls=AUTOTUNE`, then batches and prefetches.
This script generates `--images` 178x218 JPEGs (smooth colour fields with
noise, quality 90, about the size of CelebA's files), holds them in memory
(no disk reads: the decode is the cost measured) and times, over the same
bytes, one pass of:

* `tfvq (parallel)`: tfvq's own preprocessing functions, as `source()` maps
  them (`num_parallel_calls=AUTOTUNE`), batched and prefetched;
* `tfvq (sequential)`: the same functions, `num_parallel_calls=None`;
* `decode whole`: full-image decode, then crop and resize (AUTOTUNE), what
  decoding without the crop window would cost.

Then the training step of `hqa_celeba64` layer 1 (`--step_models`; the
fastest CelebA consumer of the zoo, at `--step_batch` images, float32 and
mixed_bfloat16; random images, untrained weights) gives the images/s the
trainer consumes (`rrvq_celeba64_l5` consumes far fewer: about 2 images/s). The pipeline is not the bottleneck when it delivers more.

Usage:
  python benchmarks/input_pipeline.py [--images 1024] [--step_batch 32]
"""

import argparse
import time

import numpy as np

import tfvq  # noqa: F401  (before TensorFlow: the CPU allocator)
import tensorflow as tf

from tfvq.data import tfds_datasets as tds

from machine import print_setup


def make_jpegs(count, seed=0):
    """`count` JPEG-encoded 218x178x3 images (smooth fields plus noise), as a list of bytes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:218, 0:178].astype(np.float32)
    out = []
    for _ in range(count):
        a, b, c = rng.uniform(0.01, 0.05, 3)
        base = np.stack([np.sin(a * xx + b * yy), np.cos(b * xx - c * yy), np.sin(c * (xx + yy))], -1)
        img = np.clip(127.5 + 90 * base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        out.append(tf.io.encode_jpeg(img, quality=90).numpy())
    return out


def pipeline(encoded, batch_size, parallel=True, crop_while_decoding=True):
    calls = tf.data.AUTOTUNE if parallel else None
    ds = tf.data.Dataset.from_tensor_slices(encoded)
    if crop_while_decoding:
        fn = lambda e: tds.PREPROCESS["celeb_a"](tds._decode_and_crop_celeb_a(e))  # noqa: E731
    else:
        fn = lambda e: tds._preprocess_celeb_a(tf.io.decode_jpeg(e, channels=3))  # noqa: E731
    return ds.map(fn, num_parallel_calls=calls).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def images_per_s(ds, count):
    for _ in ds.take(1):  # warm-up: builds the pipeline's threads
        pass
    start = time.perf_counter()
    n = 0
    for batch in ds:
        n += int(batch.shape[0])
    assert n == count
    return n / (time.perf_counter() - start)


def step_images_per_s(name, precision, batch_size, steps=3):
    """Images/s of the first training stage of zoo model `name` at `batch_size` (the trainer's step)."""
    from tfvq import zoo
    from tfvq.layers.precision import precision_scope
    from tfvq.train.optimizers import make_optimizer
    from tfvq.train.step import make_step

    strategy = tf.distribute.get_strategy()
    with precision_scope(precision):
        model = zoo.build(name)
    stage = model.training_stages(zoo.get(name).train, steps=1000)[0]
    optimizer = make_optimizer(stage.optimizer, stage.steps)
    optimizer.build(stage.variables())
    counter = tf.Variable(0, dtype=tf.int64)
    images = np.random.default_rng(0).integers(0, 256, (batch_size,) + model.image_shape).astype(np.float32) / 255
    iterator = iter(tf.data.Dataset.from_tensors(images).repeat())
    step = make_step(strategy, stage, optimizer, counter, [0, 1])
    step(iterator)["loss"].numpy()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(iterator)["loss"].numpy()
        times.append(time.perf_counter() - start)
    return batch_size / float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024, help="Generated JPEGs (one pass over them is timed).")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--step_batch", type=int, default=32, help="Batch of the training steps measured.")
    parser.add_argument("--step_models", default="hqa_celeba64", help="Comma-separated zoo models whose first "
                        "stage's step is timed; empty: none.")
    args = parser.parse_args()
    from tfvq.train.strategies import set_threads

    set_threads()
    print_setup()
    encoded = make_jpegs(args.images)
    kb = np.mean([len(e) for e in encoded]) / 1024
    print(f"{args.images} generated 178x218 JPEGs ({kb:.1f} KB each), in memory; one pass each, batch {args.batch_size}")
    encoded = tf.constant(encoded)
    rows = [
        ("tfvq (parallel)", pipeline(encoded, args.batch_size)),
        ("tfvq (sequential)", pipeline(encoded, args.batch_size, parallel=False)),
        ("decode whole", pipeline(encoded, args.batch_size, crop_while_decoding=False)),
    ]
    print(f"{'pipeline':22s} {'images/s':>9s}")
    for name, ds in rows:
        print(f"{name:22s} {images_per_s(ds, args.images):9.0f}", flush=True)
    models = [m for m in args.step_models.split(",") if m]
    if not models:
        return
    print(f"\ntraining step (first stage, batch {args.step_batch}, median of 3), images/s consumed")
    for name in models:
        for precision in ("float32", "mixed_bfloat16"):
            print(f"{name:22s} {precision:15s} {step_images_per_s(name, precision, args.step_batch):9.1f}", flush=True)


if __name__ == "__main__":
    main()
