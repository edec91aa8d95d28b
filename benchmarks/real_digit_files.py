"""Real 28x28 MNIST digits as PNG files, one `.tfvq` file each through `tfvq compress` and `tfvq decompress`,
beside WebP files of the same digits: what a new user gets with the command line's defaults.

    python benchmarks/real_digit_files.py [--images 100] [--dir DIR] [--layers 1,2,3,4,5] [--model hqa_mnist]

1. The first `--images` real test digits of `mnist10k` (28x28 uint8 as stored, `tfvq.data.embedded.mnist10k_raw`;
   the split is stored shuffled) are written as PNG files into DIR/png (default: a temporary directory).
2. For each layer: `tfvq compress DIR/png --model=hqa_mnist --layer=L -o DIR/...` and `tfvq decompress` of those
   files to PNG, through the command's own code (`tfvq.cli.main`, in this process, so the model loads once);
   the bytes are the `.tfvq` files' sizes on disk (`os.path.getsize`), the PSNR is each decoded PNG against its
   28x28 original, averaged over the images (`tfvq.evaluate.image_quality`). Once with the default
   `--resize=auto` (the digits resized to the model's 32x32 as it learned them, and back) and once with
   `--resize=off` (each digit padded to 32x32, as the codec did before it resized).
3. WebP (Pillow) files of the same digits at every quality 0..100, written to disk: its smallest (quality 0), and
   beside each tfvq layer the qualities whose mean file size is closest below and above the tfvq file's.
4. The filter that takes the model's 32x32 images back to 28x28: the least-squares inverse of the bilinear resize
   (`tfvq.codec.images.resize_back`, what `decompress` does) against `tf.image.resize`'s filters, PSNR against the
   originals of the images the files decode to at 32x32 (`model.reconstruct` of the resized digits, the same
   codes).

Prints the command, the CPU (`machine.print_setup`), a Markdown table, and whether a layer beats WebP's smallest
file on PSNR at no more bytes.
"""

import argparse
import contextlib
import io
import os
import tempfile
import time

import numpy as np

from machine import print_setup


def read_png(path):
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("L"))[..., None]


def quality(originals, decoded):
    """(PSNR, SSIM): the means over images of uint8 [N, 28, 28, 1] pairs (`tfvq.evaluate.image_quality`)."""
    from tfvq.evaluate import image_quality

    q = image_quality(originals.astype(np.float32) / 255, decoded.astype(np.float32) / 255)
    return q["psnr"], q["ssim"]


def tfvq_files(png_dir, out_dir, model, layer, resize, names):
    """Mean .tfvq bytes on disk, PSNR and SSIM of `tfvq compress` + `tfvq decompress` of every PNG in `png_dir`."""
    from tfvq import cli

    coded, decoded = os.path.join(out_dir, "tfvq"), os.path.join(out_dir, "decoded")
    with contextlib.redirect_stdout(io.StringIO()):  # one line per file
        for argv in (["compress", png_dir, f"--model={model}", f"--layer={layer}", f"--resize={resize}", "-o", coded],
                     ["decompress", coded, "-o", decoded]):
            if cli.main(argv) != 0:
                raise SystemExit(f"tfvq {' '.join(argv)} failed")
    sizes = [os.path.getsize(os.path.join(coded, f"{n}.tfvq")) for n in names]
    images = np.stack([read_png(os.path.join(decoded, f"{n}.png")) for n in names])
    return float(np.mean(sizes)), images


def webp_sweep(originals, out_dir):
    """{quality: (mean bytes on disk, PSNR, SSIM)} of Pillow WebP files of the digits, qualities 0..100."""
    from PIL import Image

    os.makedirs(out_dir, exist_ok=True)
    out = {}
    for q in range(101):
        sizes, decoded = [], []
        for i, x in enumerate(originals):
            path = os.path.join(out_dir, f"{i:03d}_q{q}.webp")
            Image.fromarray(x[..., 0]).save(path, format="WEBP", quality=q)
            sizes.append(os.path.getsize(path))
            decoded.append(read_png(path))
        out[q] = (float(np.mean(sizes)), *quality(originals, np.stack(decoded)))
    return out


FILTERS = (("bilinear", False), ("bilinear", True), ("area", False), ("bicubic", False), ("bicubic", True),
           ("lanczos3", False), ("lanczos3", True), ("lanczos5", False), ("mitchellcubic", False),
           ("gaussian", False), ("nearest", False))
"""The `tf.image.resize` methods (and antialias) measured against `resize_back`."""


def filters(model_name, originals, layers):
    """{filter: [PSNR per layer]} of the model's 32x32 images of the resized digits taken back to 28x28."""
    import tensorflow as tf

    from tfvq import codec
    from tfvq.codec.images import resize_back
    from tfvq.data.tfds_datasets import resize_bilinear

    model = codec.load_model(model_name)[0]
    x = np.asarray(resize_bilinear(originals, *model.image_shape[:2]))
    h, w = originals.shape[1:3]
    out = {}
    for layer in layers:
        y = model.reconstruct(x, layer).numpy()  # uint8, what a file of this layer decodes to at 32x32
        candidates = {"least-squares inverse of the bilinear resize (tfvq)": resize_back(y, h, w)}
        for method, antialias in FILTERS:
            back = tf.image.resize(y.astype(np.float32) / 255, (h, w), method=method, antialias=antialias).numpy()
            candidates[method + (", antialias" if antialias else "")] = np.clip(np.round(back * 255), 0, 255)
        for name, images in candidates.items():
            out.setdefault(name, []).append(quality(originals, images)[0])
    return out


def nearest(sweep, size):
    """The WebP qualities of the largest mean size no larger than `size` and of the smallest no smaller."""
    below = [q for q, v in sweep.items() if v[0] <= size]
    above = [q for q, v in sweep.items() if v[0] >= size]
    return (max(below, key=lambda q: (sweep[q][0], q)) if below else None,
            min(above, key=lambda q: (sweep[q][0], -q)) if above else None)


def cell(sweep, q):
    return "none" if q is None else f"q{q}: {sweep[q][0]:.1f} B, {sweep[q][1]:.2f} dB"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100, help="real test digits, one per file (default 100)")
    parser.add_argument("--dir", default=None, help="keep the PNG, .tfvq and WebP files here (default: a temporary "
                        "directory, removed after)")
    parser.add_argument("--layers", default="1,2,3,4,5", help="the layers to measure (default 1,2,3,4,5)")
    parser.add_argument("--model", default="hqa_mnist", help="the zoo model (default hqa_mnist)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.perf_counter()
    print_setup()
    from PIL import Image

    from tfvq.data.embedded import mnist10k_raw

    originals = mnist10k_raw("test")[0][:args.images][..., None]
    layers = [int(l) for l in args.layers.split(",")]
    with contextlib.ExitStack() as stack:
        root = args.dir or stack.enter_context(tempfile.TemporaryDirectory())
        png_dir = os.path.join(root, "png")
        os.makedirs(png_dir, exist_ok=True)
        names = [f"{i:03d}" for i in range(len(originals))]
        for n, x in zip(names, originals):
            Image.fromarray(x[..., 0]).save(os.path.join(png_dir, f"{n}.png"))
        print(f"data: the first {len(originals)} real test digits of mnist10k as 28x28 PNG files in {png_dir}; one "
              f"file per digit; PSNR and SSIM against the 28x28 originals, averaged over the digits\n")
        rows = []
        for resize in ("auto", "off"):
            for layer in layers:
                size, decoded = tfvq_files(png_dir, os.path.join(root, f"{args.model}_{resize}_layer{layer}"),
                                           args.model, layer, resize, names)
                assert decoded.shape == originals.shape, decoded.shape
                rows.append((f"`tfvq compress --model={args.model} --layer={layer}`"
                             + (" (default `--resize=auto`)" if resize == "auto" else " `--resize=off`"),
                             size, *quality(originals, decoded)))
        sweep = webp_sweep(originals, os.path.join(root, "webp"))
    q0_bytes, q0_psnr, q0_ssim = sweep[0]
    print("| file | mean bytes on disk | PSNR (dB) | SSIM | WebP no larger | WebP no smaller |")
    print("|---|---|---|---|---|---|")
    for label, size, psnr, ssim in rows:
        lo, hi = nearest(sweep, size)
        print(f"| {label} | {size:.1f} | {psnr:.2f} | {ssim:.3f} | {cell(sweep, lo)} | {cell(sweep, hi)} |")
    print(f"| WebP quality 0 (Pillow; its smallest) | {q0_bytes:.1f} | {q0_psnr:.2f} | {q0_ssim:.3f} | | |")
    print()
    wins = [r for r in rows if r[1] <= q0_bytes and r[2] > q0_psnr]
    if wins:
        best = max(wins, key=lambda r: r[2])
        print(f"target met: {best[0]} gives {best[2]:.2f} dB in {best[1]:.1f} B against WebP quality 0's "
              f"{q0_psnr:.2f} dB in {q0_bytes:.1f} B ({best[2] - q0_psnr:+.2f} dB in {best[1] / q0_bytes:.0%} of its "
              "bytes)")
    else:
        print(f"target not met: no layer beats WebP quality 0 ({q0_psnr:.2f} dB, {q0_bytes:.1f} B) at no more bytes")
    print("\nBack to 28x28 from the 32x32 images (PSNR in dB against the originals, per layer):\n")
    print("| filter | " + " | ".join(f"layer {l}" for l in layers) + " |")
    print("|---|" + "---|" * len(layers))
    table = filters(args.model, originals, layers)
    for name, row in sorted(table.items(), key=lambda kv: -kv[1][0]):
        print(f"| {name} | " + " | ".join(f"{p:.2f}" for p in row) + " |")
    print(f"\ntime: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
