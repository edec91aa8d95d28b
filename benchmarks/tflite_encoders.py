"""File size and single-threaded LiteRT latency of the TFLite encoders, every variant side by side.

Measures, in one run on this machine, the float32, float16, dynamic and int8
encoders (`tfvq.export.tflite`) of:
  * `hqa_celeba64` at layer 4 (8x8 codes of 512: the 576-bit rate of HQA
    Table 1), with fresh untrained weights -- speed and size do not depend on
    the weights, and no trained CelebA weights ship with tfvq. Its int8 file
    keeps only the code decision in float (`min_agreement=0`): the
    mixed-precision search needs trained weights to mean anything, and every
    op it keeps in float costs speed (see the README).
  * `hqa_digits` at every layer, bundled weights, converted as `export.py`
    converts them (calibrated and checked on the training split).

Latency: the median over `--repeats` invokes of one image (batch 1), after
warm-up, with `ai_edge_litert` and `num_threads=1`. The CPU model and its
int8 / bfloat16 features (avx512_vnni, amx_int8, ...) are printed first: int8
speed depends on them.

Usage:
  python benchmarks/tflite_encoders.py
  python benchmarks/tflite_encoders.py --repeats 200 --models hqa_celeba64
"""

import argparse
import os
import time

from machine import print_setup

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

def median_ms(path, image, repeats):
    import numpy as np

    from tfvq.export import tflite

    runner = tflite.interpreter(path, num_threads=1).get_signature_runner("encode")
    x = tflite.quantize_input(image[None], runner.get_input_details()["images"])
    for _ in range(max(repeats // 10, 3)):
        runner(images=x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner(images=x)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def measure(name, layers, images, train, repeats, out_dir, **kwargs):
    from tfvq import zoo
    from tfvq.export import tflite

    model = zoo.load(name, weights="bundled" if zoo.get(name).bundled_weights else None)
    written = tflite.export_conversions(model, out_dir, name, layers, tflite.VARIANTS, train, **kwargs)
    rows = []
    for (layer, variant), (path, conversion) in sorted(written.items()):
        rows.append(dict(model=name, layer=layer, variant=variant, bytes=os.path.getsize(path),
                         ms=median_ms(path, images[0], repeats), float_ops=len(conversion.float_ops)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="hqa_celeba64,hqa_digits")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--out", default=None, help="where to write the .tflite files (default: a temporary folder)")
    args = parser.parse_args()

    import tempfile

    import numpy as np
    import tensorflow as tf

    import ai_edge_litert
    from tfvq import data

    print_setup()
    print(f"TensorFlow {tf.__version__}, ai_edge_litert {getattr(ai_edge_litert, '__version__', '?')}; "
          f"single-threaded LiteRT (num_threads=1), batch 1, median of {args.repeats} invokes")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or tmp
        for model in args.models.split(","):
            if model == "hqa_celeba64":
                rng = np.random.default_rng(0)
                images = rng.integers(0, 256, (64, 64, 64, 3), dtype=np.uint8)
                rows += measure(model, [4], images, images, args.repeats, out, min_agreement=0)
            elif model == "hqa_digits":
                rows += measure(model, None, data.load_numpy("digits", "test"), data.load_numpy("digits", "train"),
                                args.repeats, out)
            else:
                raise SystemExit(f"--models takes hqa_celeba64 and/or hqa_digits, got {model!r}")
    print(f"\n{'model':>13s} {'layer':>5s} {'variant':>8s} {'size (KiB)':>10s} {'x float32':>9s} {'ms/image':>9s} "
          f"{'speed-up':>8s} {'float ops':>9s}")
    base = {(r["model"], r["layer"]): r for r in rows if r["variant"] == "float32"}
    for r in rows:
        b = base[(r["model"], r["layer"])]
        print(f"{r['model']:>13s} {r['layer']:5d} {r['variant']:>8s} {r['bytes'] / 1024:10.1f} "
              f"{r['bytes'] / b['bytes']:9.2f} {r['ms']:9.3f} {b['ms'] / r['ms']:7.2f}x {r['float_ops']:9d}")


if __name__ == "__main__":
    main()
