"""How often the TFLite encoders `tfvq compress` runs give other codes than TensorFlow's, on real digits.

    python benchmarks/tflite_codes.py                 # every bundled model with TFLite encoders
    python benchmarks/tflite_codes.py --models=hqa_mnist --limit=200

For each bundled grayscale model whose TFLite bundle holds encoders (`tfvq.codec.find_encoder`), on all 2004 real test
digits of `mnist10k` (`tfvq.data.load_numpy("mnist10k", "test")`: 32x32; `mnist10k_28` for a 28x28 model), one
image per call as `tfvq compress` encodes them (uint8 pixels):

* per layer l, the codes `encode(x, l)` gives (HQA: layer l; RRVQ-VAE: layers l..L, with the static prior's
  rate weights where it has them, `encode_biased`) through TensorFlow and through the TFLite encoders: the
  code positions that differ, and the images with any;
* the images whose file of the model's default layer (the layers `encode` sends there) holds other codes:
  the only files of `fixed`, `static` or `context` codes that differ (where the codes agree the two files
  are the same bytes, `tests/codec/test_lite_encoding.py`); `auto` and `progressive` encode the chain of layers
  above too (the rows of those layers).

TensorFlow encodes `--batch` images per call (64), as `tfvq.codec.compress` of many images does; one image per
call gives other codes at a few positions too (on `hqa_mnist` layer 1, 9 of 513,024 positions between batches of
1 and 256, against TFLite's 160), which the table does not separate.

A code is the argmax of close float32 scores; TFLite's kernels (XNNPACK) add the same products in another order
than TensorFlow's (oneDNN), so two codes within float rounding of each other can swap. The table says how
often; the two float margins of each differing position (best minus second-best score) are not printed.
"""

import argparse
import glob
import os
import sys
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=None, help="comma-separated models (default: every bundled model with "
                        "TFLite encoders)")
    parser.add_argument("--limit", type=int, default=None, help="the first N test digits (default: all 2004)")
    parser.add_argument("--batch", type=int, default=64, help="images per TensorFlow call (TFLite takes one)")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from machine import print_setup

    print_setup()
    from tfvq import codec, data, decoder_bundle
    from tfvq.codec import coding, files
    from tfvq.codec.lite_model import BUNDLED_WEIGHTS, LiteModel

    if args.models:
        names = args.models.split(",")
    else:
        names = sorted({decoder_bundle.read_manifest(p)["model"]
                        for p in glob.glob(os.path.join(BUNDLED_WEIGHTS, "*.decoders-*"))})
    names = [n for n in names if codec.find_encoder(n)[0] is not None]
    print(f"\nTensorFlow encodes {args.batch} images per call, TFLite one\n")
    print("| model | layer | code positions | differ | images | images with any | seconds TF / TFLite |")
    print("|---|---|---|---|---|---|---|")
    files_differ = {}
    for name in names:
        model, digest = files.load_model(name)
        if model.image_shape[2] != 1:
            continue  # the digits are grayscale
        lite = LiteModel(codec.find_encoder(name)[0])
        bias = files.load_prior(name, model, digest).code_bias()
        dataset = "mnist10k" if tuple(model.image_shape[:2]) == (32, 32) else "mnist10k_28"
        x = np.round(data.load_numpy(dataset, "test", limit=args.limit, image_shape=model.image_shape) * 255)
        x = x.astype(np.uint8)
        layout = model.code_layout()
        for layer in range(1, layout.num_layers + 1):
            t0 = time.perf_counter()
            want = coding.encode_layers(model, x, set(layout.layers_sent(layer)), bias, batch=args.batch)
            t1 = time.perf_counter()
            got = coding.encode_layers(lite, x, set(layout.layers_sent(layer)), bias, batch=1)
            t2 = time.perf_counter()
            differ = sum(int((want[l] != got[l]).sum()) for l in want)
            positions = sum(want[l].size for l in want)
            images = np.zeros(len(x), bool)
            for l in want:
                images |= (want[l] != got[l]).reshape(len(x), -1).any(axis=1)
            print(f"| `{name}` | {layer} | {positions} | {differ} ({differ / positions:.2e}) | {len(x)} | "
                  f"{int(images.sum())} | {t1 - t0:.1f} / {t2 - t1:.1f} |", flush=True)
            if layer == layout.default_layer:
                files_differ[name] = (int(images.sum()), len(x), layer)
    print("\n| model | default layer | files (one image each) | files with other codes |")
    print("|---|---|---|---|")
    for name, (n, total, layer) in files_differ.items():
        print(f"| `{name}` | {layer} | {total} | {n} ({n / total:.2%}) |")


if __name__ == "__main__":
    main()
