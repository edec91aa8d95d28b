"""Lossless files of real 28x28 MNIST digits, one digit per file: tfvq against PNG and lossless WebP.

    python benchmarks/lossless_digits.py [--images 100] [--model rrvq_mnist] [--dir DIR]

The first `--images` real test digits of `mnist10k` (28x28 uint8 as stored; the split is stored shuffled) are
written as PNG files (Pillow's defaults, and again with `optimize=True`) and as lossless WebP files (Pillow,
`lossless=True`, `quality=100`, `method=6`: its smallest lossless files). tfvq codes them with the command line's
defaults, `tfvq compress DIR --model=MODEL --lossless` then `tfvq decompress` (the command's own code,
`tfvq.cli.main`, in this process so that the model loads once); every decoded file must equal its original
exactly. Sizes are the files' bytes on disk; bits per pixel are 8 x bytes / 784.

Prints the command, the CPU (`machine.print_setup`) and a Markdown table.
"""

import argparse
import contextlib
import io
import os
import tempfile
import time

import numpy as np

from machine import print_setup
from real_digit_files import read_png


def sizes_of(paths):
    return np.array([os.path.getsize(p) for p in paths], np.float64)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100, help="real test digits, one per file (default 100)")
    parser.add_argument("--model", default="rrvq_mnist", help="the zoo model or model folder (default rrvq_mnist)")
    parser.add_argument("--dir", default=None, help="keep the files here (default: a temporary directory)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.perf_counter()
    print_setup()
    from PIL import Image

    from tfvq import cli
    from tfvq.data.embedded import mnist10k_raw

    originals = mnist10k_raw("test")[0][:args.images]
    pixels = originals.shape[1] * originals.shape[2]
    names = [f"{i:03d}" for i in range(len(originals))]
    with contextlib.ExitStack() as stack:
        root = args.dir or stack.enter_context(tempfile.TemporaryDirectory())
        dirs = {k: os.path.join(root, k) for k in ("png", "png_optimized", "webp", "tfvq", "decoded")}
        for d in dirs.values():
            os.makedirs(d, exist_ok=True)
        for n, x in zip(names, originals):
            image = Image.fromarray(x)
            image.save(os.path.join(dirs["png"], f"{n}.png"))
            image.save(os.path.join(dirs["png_optimized"], f"{n}.png"), optimize=True)
            image.save(os.path.join(dirs["webp"], f"{n}.webp"), format="WEBP", lossless=True, quality=100, method=6)
            assert np.array_equal(read_png(os.path.join(dirs["webp"], f"{n}.webp"))[..., 0], x)
        with contextlib.redirect_stdout(io.StringIO()):  # one line per file
            for argv in (["compress", dirs["png"], f"--model={args.model}", "--lossless", "-o", dirs["tfvq"]],
                         ["decompress", dirs["tfvq"], "-o", dirs["decoded"]]):
                if cli.main(argv) != 0:
                    raise SystemExit(f"tfvq {' '.join(argv)} failed")
        decoded = np.stack([read_png(os.path.join(dirs["decoded"], f"{n}.png"))[..., 0] for n in names])
        exact = bool(np.array_equal(decoded, originals))
        measured = {
            "PNG (Pillow)": sizes_of([os.path.join(dirs["png"], f"{n}.png") for n in names]),
            "PNG (Pillow, optimize=True)": sizes_of([os.path.join(dirs["png_optimized"], f"{n}.png") for n in names]),
            "lossless WebP (Pillow, method 6)": sizes_of([os.path.join(dirs["webp"], f"{n}.webp") for n in names]),
            f"tfvq `{args.model}` --lossless": sizes_of([os.path.join(dirs["tfvq"], f"{n}.tfvq") for n in names]),
        }
    webp = measured["lossless WebP (Pillow, method 6)"].mean()
    print(f"data: the first {len(originals)} real test digits of mnist10k, 28x28, one file per digit; tfvq's "
          f"decoded digits equal the originals: {exact}\n")
    print("| file | mean bytes on disk | bits per pixel | against lossless WebP |")
    print("|---|---|---|---|")
    for label, sizes in measured.items():
        print(f"| {label} | {sizes.mean():.1f} | {8 * sizes.mean() / pixels:.3f} | {sizes.mean() / webp:.2f}x |")
    print(f"\ntime: {time.perf_counter() - start:.0f} s")
    if not exact:
        raise SystemExit("tfvq's lossless files did not decode to the originals")


if __name__ == "__main__":
    main()
