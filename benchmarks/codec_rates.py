"""Entropy-coded `.tfvq` files: rates, rate-distortion against JPEG and WebP, lossless, throughput.

    python benchmarks/codec_rates.py [--plot docs/codec_rate_distortion.png] [--per_image 64]

Prints (Markdown tables, as in the README's "Compression to files"):
  1. bits per image, fixed vs entropy-coded (static prior, the model's progressive probabilities, the
     learned context priors where the weights have them), for every layer of hqa_digits and for rrvq_digits and
     rrvq_swatches on their test splits, with each RRVQ layer's coded bits beside its KL and the
     cross-entropy of its codes under the prior;
  2. lossless rrvq_digits in bits per dim against the model's test bpd, PNG and lossless WebP;
  3. rate-distortion on the digits test split: bytes per image (one image per file) against PSNR and
     SSIM for tfvq's layers, JPEG and WebP at their closest sizes, and the accuracy of a logistic
     regression fitted on the training digits, on the decoded images;
  4. encode and decode throughput (images/s) for one image and a batch of 256.
"""

import argparse
import io
import math
import os
import platform
import time

import numpy as np


def cpu():
    model, flags = platform.processor() or "unknown", []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("unknown", "x86_64", ""):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    keep = [f for f in flags if f.startswith(("avx", "amx", "fma", "sse4"))]
    return model, " ".join(keep), os.cpu_count()


def bits(data, n):
    return 8 * len(data) / n


def rates(codec, name, images):
    import os

    from tfvq.codec import coded

    layout = codec.code_layout(name)
    has_context = os.path.exists(codec.context_path_for(name))
    rows = []
    for layer in range(1, layout.num_layers + 1):
        if layout.cumulative and layer != layout.default_layer:
            continue
        row = {"layer": layer, "fixed": layout.bits(layer)}
        row["context"] = None
        for coder in ("static", "progressive", "context", "auto"):
            if coder == "context" and not has_context:
                continue
            data = codec.compress(images, name, layer, coder=coder)
            f = coded.parse(data)
            row[coder] = sum(8 * len(c.data) for c in f.chunks) / len(images)
            if coder == "auto":
                row["auto_coders"] = {c.layer: coded.CODERS[c.coder] for c in f.chunks}
                row["auto_layer_bits"] = {l: 8 * b / len(images) for l, b in f.layer_bytes.items()}
                row["header"] = len(data) - sum(len(c.data) for c in f.chunks)
        rows.append(row)
    return rows


def cross_entropy_bits(model, codes):
    """-log2 p(codes of each layer | layers above) under the model's prior (RRVQ eq. 7), mean per image."""
    layout = model.code_layout()
    out = {}
    for l in range(1, layout.num_layers + 1):
        lp = (model.top_code_logits(len(codes[0])) if l == layout.num_layers
              else model.code_logits(codes[l:], l + 1)).numpy()
        picked = np.take_along_axis(lp, codes[l - 1][..., None], -1)
        out[l] = float(-picked.sum() / len(codes[0]) / math.log(2))
    return out


def jpeg_webp(images, fmt, quality, lossless=False):
    from PIL import Image

    sizes, out = [], []
    for x in images:
        buf = io.BytesIO()
        kw = {"lossless": True} if lossless else {"quality": int(quality)}
        Image.fromarray(x[..., 0]).save(buf, format=fmt, **kw)
        sizes.append(buf.tell())
        buf.seek(0)
        out.append(np.asarray(Image.open(buf).convert("L"))[..., None])
    return float(np.mean(sizes)), np.stack(out)


def distortion(tf, x, y, classifier, labels):
    a, b = x.astype(np.float32) / 255, y.astype(np.float32) / 255
    mse = np.mean((a - b) ** 2, axis=(1, 2, 3))
    psnr = float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-10))))
    ssim = float(tf.reduce_mean(tf.image.ssim(a, b, 1.0, filter_size=7)))
    acc = float(np.mean(classifier.predict(b.reshape(len(b), -1)) == labels))
    return psnr, ssim, acc


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plot", default=None, help="write the rate-distortion plot (PNG) here")
    parser.add_argument("--per_image", type=int, default=64, help="images coded one per file for the file sizes")
    args = parser.parse_args()
    import tensorflow as tf
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    import constriction  # noqa: F401
    from tfvq import codec
    from tfvq.data import embedded
    from tfvq.models.hierarchical_vae import elbo_summary

    model_name, flags, cores = cpu()
    print(f"CPU: {model_name}; {cores} cores; flags: {flags}")
    print(f"TensorFlow {tf.__version__}, TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS')}\n")

    digits = np.asarray(embedded.digits("test"))
    swatches = np.asarray(embedded.swatches("test"))

    # 1. rates
    print("## Bits per image, fixed vs entropy-coded (payload; one file of the whole test split)\n")
    print("| model | layer(s) | fixed | static prior | progressive | context priors | auto | auto: coder per layer "
          "| auto / fixed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, images in (("hqa_digits", digits), ("rrvq_digits", digits), ("rrvq_swatches", swatches)):
        layout = codec.code_layout(name)
        for r in rates(codec, name, images):
            sent = layout.layers_sent(r["layer"])
            what = f"{sent[0]}..{sent[-1]}" if len(sent) > 1 else str(sent[0])
            coders = ", ".join(f"{l}: {c}" for l, c in sorted(r["auto_coders"].items()))
            context = "—" if r["context"] is None else f"{r['context']:.1f}"
            print(f"| `{name}` | {what} | {r['fixed']} | {r['static']:.1f} | {r['progressive']:.1f} | {context} | "
                  f"{r['auto']:.1f} | {coders} | {100 * r['auto'] / r['fixed']:.1f}% |")
    print()
    print("## hqa_digits context priors: coded bits per layer (integer networks) vs the float networks' "
          "cross-entropy (test split, per image)\n")
    from tfvq.codec import context
    from tfvq.codec.coding import encode_layers

    model, digest = codec.load_model("hqa_digits")
    priors = context.load_context("hqa_digits", model, digest)
    if priors is not None:
        codes = encode_layers(model, digits, set(range(1, model.code_layout().num_layers + 1)))
        print("| layer | coded bits | float cross-entropy | coded - float |")
        print("|---|---|---|---|")
        for l in sorted(priors.configs):
            coded_bits = priors.coded_bits(l, codes[l], codes.get(l + 1)).mean()
            float_bits = priors.bits(l, codes[l], codes.get(l + 1)).mean()
            print(f"| {l} | {coded_bits:.2f} | {float_bits:.2f} | {coded_bits - float_bits:+.2f} |")
        print()
    print("## RRVQ-VAE: coded bits per layer vs KL and cross-entropy under the prior (test split, per image)\n")
    print("| model | layer | auto coded bits | cross-entropy -log2 p(z_l given z_>l) | KL (ELBO sample) |")
    print("|---|---|---|---|---|")
    for name, images in (("rrvq_digits", digits), ("rrvq_swatches", swatches)):
        model, _ = codec.load_model(name)
        codes = [np.asarray(c) for c in model.encode(images)]
        ce = cross_entropy_bits(model, codes)
        kl = elbo_summary(model, images.astype(np.float32) / 255, 64, 0)["kl_bits_per_layer"]
        auto = rates(codec, name, images)[0]["auto_layer_bits"]
        for l in range(1, model.code_layout().num_layers + 1):
            print(f"| `{name}` | {l} | {auto[l]:.1f} | {ce[l]:.1f} | {kl[l - 1]:.1f} |")
        print(f"| `{name}` | all | {sum(auto.values()):.1f} | {sum(ce.values()):.1f} | {sum(kl):.1f} |")
    print()

    # 2. lossless
    model, _ = codec.load_model("rrvq_digits")
    test_bpd = elbo_summary(model, digits.astype(np.float32) / 255, 64, 0)["bpd"]
    data = codec.compress(digits, "rrvq_digits", lossless=True)
    assert np.array_equal(codec.decompress(data), digits)
    dims = digits.size
    png, _ = jpeg_webp(digits, "PNG", 0, lossless=True)
    webp, _ = jpeg_webp(digits, "WEBP", 0, lossless=True)
    one = [len(codec.compress(x, "rrvq_digits", lossless=True)) for x in digits[: args.per_image]]
    print("## Lossless rrvq_digits (test split, 297 images, bits per dim)\n")
    print("| coder | bits per dim |")
    print("|---|---|")
    print(f"| tfvq --lossless, one file of 297 images (header included) | {8 * len(data) / dims:.3f} |")
    print(f"| tfvq --lossless, one file per image (mean of {len(one)}) | {8 * np.mean(one) / 1024:.3f} |")
    print(f"| the model's test -ELBO (bpd) | {test_bpd:.3f} |")
    print(f"| PNG (Pillow, one file per image) | {8 * png / 1024:.3f} |")
    print(f"| lossless WebP (Pillow, one file per image) | {8 * webp / 1024:.3f} |\n")

    # 3. rate-distortion on digits
    raw = load_digits()
    labels_train, labels_test = raw.target[:1500], raw.target[1500:]
    train = np.asarray(embedded.digits("train")).astype(np.float32) / 255
    classifier = LogisticRegression(max_iter=2000).fit(train.reshape(len(train), -1), labels_train)
    points = {"tfvq hqa_digits": [], "tfvq rrvq_digits": [], "JPEG": [], "WebP": []}
    for layer in range(1, 6):
        y = codec.decompress(codec.compress(digits, "hqa_digits", layer))
        size = np.mean([len(codec.compress(x, "hqa_digits", layer)) for x in digits[: args.per_image]])
        points["tfvq hqa_digits"].append((f"layer {layer}", size, *distortion(tf, digits, y, classifier, labels_test)))
    y = codec.decompress(codec.compress(digits, "rrvq_digits"))
    size = np.mean([len(codec.compress(x, "rrvq_digits")) for x in digits[: args.per_image]])
    points["tfvq rrvq_digits"].append(("layers 1..5", size, *distortion(tf, digits, y, classifier, labels_test)))
    for fmt_name in ("JPEG", "WebP"):
        for q in (1, 5, 10, 20, 30, 50, 70, 90):
            size, y = jpeg_webp(digits, fmt_name.upper(), q)
            points[fmt_name].append((f"quality {q}", size, *distortion(tf, digits, y, classifier, labels_test)))
    print("## Rate-distortion, digits test split (bytes per image: one image per file, headers included)\n")
    print("MS-SSIM needs images of at least 176 pixels a side; these are 32x32, so SSIM (7x7 window) is given.\n")
    print("| codec | setting | bytes per image | PSNR (dB) | SSIM | classifier accuracy |")
    print("|---|---|---|---|---|---|")
    print(f"| original | - | 1024 (raw) | inf | 1.000 | "
          f"{np.mean(classifier.predict(digits.reshape(len(digits), -1) / 255) == labels_test):.3f} |")
    for codec_name, rows in points.items():
        for label, size, psnr, ssim, acc in rows:
            print(f"| {codec_name} | {label} | {size:.0f} | {psnr:.2f} | {ssim:.3f} | {acc:.3f} |")
    print()
    print("Closest JPEG / WebP to each tfvq point (by bytes per image):\n")
    print("| tfvq point | bytes | PSNR | SSIM | acc. | JPEG (bytes, PSNR, SSIM, acc.) | WebP (bytes, PSNR, SSIM, acc.) |")
    print("|---|---|---|---|---|---|---|")
    for codec_name in ("tfvq hqa_digits", "tfvq rrvq_digits"):
        for label, size, psnr, ssim, acc in points[codec_name]:
            near = [min(points[o], key=lambda p: abs(p[1] - size)) for o in ("JPEG", "WebP")]
            cells = [f"{p[0]}: {p[1]:.0f}, {p[2]:.2f}, {p[3]:.3f}, {p[4]:.3f}" for p in near]
            print(f"| {codec_name} {label} | {size:.0f} | {psnr:.2f} | {ssim:.3f} | {acc:.3f} | {cells[0]} | {cells[1]} |")
    print()
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(15, 4))
        for codec_name, rows in points.items():
            sizes = [r[1] for r in rows]
            for ax, i, what in zip(axes, (2, 3, 4), ("PSNR (dB)", "SSIM", "classifier accuracy")):
                ax.plot(sizes, [r[i] for r in rows], "o-" if "tfvq" in codec_name else "s--", label=codec_name)
                ax.set_xscale("log")
                ax.set_xlabel("bytes per image (one image per file)")
                ax.set_ylabel(what)
        axes[0].legend()
        fig.suptitle("digits test split (32x32x1): tfvq entropy-coded files vs JPEG and WebP (Pillow)")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"plot: {args.plot}\n")

    # 4. throughput
    print("## Throughput (images/s, wall clock, after one warm-up call)\n")
    print("| model, layer | coder | batch | encode | decode |")
    print("|---|---|---|---|---|")
    batch = np.concatenate([digits] * 2)[:256]
    for name, layer, coder in (("hqa_digits", 5, "auto"), ("hqa_digits", 1, "auto"), ("hqa_digits", 1, "static"),
                               ("hqa_digits", 1, "context"), ("hqa_digits", 1, "progressive"), ("rrvq_digits", 1, "auto")):
        for n in (1, 256):
            x = batch[:n]
            data = codec.compress(x, name, layer, coder=coder)
            codec.decompress(data)
            t0 = time.perf_counter()
            reps = 5 if n == 1 else 1
            for _ in range(reps):
                data = codec.compress(x, name, layer, coder=coder)
            t1 = time.perf_counter()
            for _ in range(reps):
                codec.decompress(data)
            t2 = time.perf_counter()
            print(f"| `{name}` {layer} | {coder} | {n} | {reps * n / (t1 - t0):.1f} | {reps * n / (t2 - t1):.1f} |")


if __name__ == "__main__":
    main()
