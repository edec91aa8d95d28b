"""Wall time and peak memory of `tfvq compress` and `tfvq decompress` of one large image, each a fresh process.

    python benchmarks/large_images.py                       # 1000x1000, 2000x2000, 3000x4000; gray and RGB
    python benchmarks/large_images.py --sizes 1000x1000 --coders static,auto

Gray images go through `hqa_mnist --layer=1` (its finest grid: a code of K = 256 per 2x2 pixels, the most
symbols and the largest tables any bundled model makes of an image), RGB ones through `rrvq_swatches` (the
bundled RGB model: 32x32 tiles, five layers), each with `--coder=static` and `--coder=auto` (the default;
`--coders static,auto,smallest` adds `smallest`, auto without its budget of context work).
The images are made here: gray, a mosaic of real test digits (what `hqa_mnist` learned); RGB, smooth colour
waves with noise. A figure is one fresh process: its wall time and peak resident memory (GNU time's
%M), the file's bytes, and whether the decoded image has the input's size. The machine is shared:
compare within a run, as ratios (the last columns: seconds per megapixel, and each coder's time over static's).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import print_setup  # noqa: E402

CASES = {"gray": ("hqa_mnist", ["--layer=1"]), "rgb": ("rrvq_swatches", [])}


def gray_image(height, width, seed=0):
    """uint8 [height, width]: real test digits (embedded `digits`, 32x32) side by side, cut to the size."""
    from tfvq.data import load_numpy

    digits = np.round(load_numpy("digits", "test") * 255).astype(np.uint8)[..., 0]
    rows, cols = -(-height // 32), -(-width // 32)
    pick = np.random.default_rng(seed).integers(0, len(digits), rows * cols)
    mosaic = digits[pick].reshape(rows, cols, 32, 32).transpose(0, 2, 1, 3).reshape(rows * 32, cols * 32)
    return np.ascontiguousarray(mosaic[:height, :width])


def rgb_image(height, width, seed=0):
    """uint8 [height, width, 3]: three smooth waves and Gaussian noise (sigma 6 grey levels)."""
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    waves = np.stack([128 + 100 * np.sin(xx / 97 + yy / 211), 128 + 100 * np.cos(yy / 53),
                      128 + 90 * np.sin((xx + yy) / 31)], -1)
    noise = np.random.default_rng(seed).normal(0, 6, waves.shape)
    return np.clip(waves + noise, 0, 255).astype(np.uint8)


def run(arguments):
    """(wall seconds, peak resident MB) of `tfvq ARGUMENTS` in a fresh process.

    The peak is GNU time's (`/usr/bin/time -f %M`): Linux carries a parent's peak into a child it forks
    (ru_maxrss survives exec), so the command is started by `time`, a small process, not by this one, which
    holds the images."""
    command = ["/usr/bin/time", "-f", "peak %M", sys.executable, "-m", "tfvq.cli", *arguments]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    out = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if out.returncode:
        raise RuntimeError(f"{' '.join(command)} failed: {out.stderr[-2000:]}")
    peak = [line for line in out.stderr.splitlines() if line.startswith("peak ")][-1]
    return seconds, int(peak.split()[1]) / 1024.0  # kilobytes


def size(text):
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000x1000,2000x2000,3000x4000", help="HxW,... (height x width)")
    p.add_argument("--kinds", default="gray,rgb", help="gray (hqa_mnist --layer=1), rgb (rrvq_swatches)")
    p.add_argument("--coders", default="static,auto")
    args = p.parse_args()
    print_setup()
    from PIL import Image

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.kinds.split(","):
            model, flags = CASES[kind]
            for text in args.sizes.split(","):
                h, w = size(text)
                image = gray_image(h, w) if kind == "gray" else rgb_image(h, w)
                png = os.path.join(folder, f"{kind}{h}x{w}.png")
                Image.fromarray(image).save(png)
                times = {}
                for coder in args.coders.split(","):
                    packed, out = os.path.join(folder, f"{kind}_{coder}.tfvq"), os.path.join(folder, "out.png")
                    enc = run(["compress", png, f"--model={model}", f"--coder={coder}", *flags, "-o", packed])
                    dec = run(["decompress", packed, "-o", out])
                    with Image.open(out) as decoded:
                        ok = decoded.size == (w, h)
                    times[coder] = enc[0]
                    rows.append((kind, model, f"{h}x{w}", coder, enc, dec, os.path.getsize(packed), ok,
                                 h * w / 1e6, times))
                    print(f"{kind} {h}x{w} {coder}: compress {enc[0]:.1f} s {enc[1]:.0f} MB, decompress "
                          f"{dec[0]:.1f} s {dec[1]:.0f} MB, {os.path.getsize(packed)} bytes", flush=True)
    print()
    print("| image | model | coder | compress s | compress peak MB | decompress s | decompress peak MB | file bytes "
          "| compress s/MP | / static (compress) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind, model, text, coder, enc, dec, nbytes, ok, mp, times in rows:
        ratio = times[coder] / times["static"] if coder != "static" and "static" in times else None
        print(f"| {kind} {text} | `{model}` | {coder} | {enc[0]:.1f} | {enc[1]:.0f} | {dec[0]:.1f} | {dec[1]:.0f} | "
              f"{nbytes}{'' if ok else ' (wrong size!)'} | {enc[0] / mp:.1f} | "
              f"{'' if ratio is None else f'{ratio:.2f}'} |")


if __name__ == "__main__":
    main()
