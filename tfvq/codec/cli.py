"""The `tfvq` command: compress PNG images to `.tfvq` files with zoo models and back.

    tfvq models
    tfvq compress IMAGE.png --model=hqa_digits --layer=5 [-o OUT.tfvq] [--weights=PATH]
    tfvq compress IMAGE.png --model=rrvq_digits [-o OUT.tfvq]      (RRVQ-VAE: every layer, no --layer)
    tfvq decompress OUT.tfvq [-o OUT.png] [--seed=S] [--weights=PATH]
    tfvq info OUT.tfvq

Errors (a missing file, a corrupt `.tfvq` file, a PNG of the wrong size)
print one line `tfvq: error: ...` to stderr and exit with status 1.
"""

import argparse
import os
import sys

import tfvq  # noqa: F401  (sets TensorFlow's CPU defaults before TensorFlow starts)


def _parser():
    parser = argparse.ArgumentParser(
        prog="tfvq", description="Compress images to bit-packed VQ codes with tfvq zoo models (HQA, VQ-VAE, RRVQ-VAE)."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{models,compress,decompress,info}")

    p = sub.add_parser("models", help="list the zoo models with bits per image at each layer")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style wildcard, e.g. 'hqa*'")

    p = sub.add_parser("compress", help="compress a PNG image to a .tfvq file")
    p.add_argument("image", help="input PNG, of the model's size and channels")
    p.add_argument("--model", required=True, help="zoo model name (see `tfvq models`)")
    p.add_argument("--layer", type=int, default=None,
                   help="HQA/VQ-VAE: layer whose codes to store (1 = finest; required). "
                        "RRVQ-VAE: not allowed (the file holds every latent layer's codes)")
    p.add_argument("-o", "--output", help="output file (default: IMAGE with the suffix .tfvq)")
    p.add_argument("--weights", help="weights to use instead of the bundled ones (any path tfvq.zoo.load accepts)")

    p = sub.add_parser("decompress", help="decompress a .tfvq file to a PNG image")
    p.add_argument("file", help="input .tfvq file")
    p.add_argument("-o", "--output", help="output PNG (default: FILE with the suffix .png; "
                   "for several images, OUT_0.png, OUT_1.png, ...)")
    p.add_argument("--seed", type=int, default=None,
                   help="sample the lower layers' codes with this seed (default: deterministic decoding)")
    p.add_argument("--weights", help="weights to use instead of the bundled ones of the file's model")

    p = sub.add_parser("info", help="print the header of a .tfvq file")
    p.add_argument("file", help="input .tfvq file")
    return parser


def _read_bytes(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path}")
    with open(path, "rb") as f:
        return f.read()


def _models(args):
    from tfvq import zoo

    names = zoo.list_models(args.pattern)
    if not names:
        raise ValueError(f"No zoo model matches {args.pattern!r}.")
    from tfvq import codec

    for name in names:
        entry = zoo.get(name)
        model = zoo.build(name)
        h, w, c = model.image_shape
        bundled = zoo.registry.bundled_weights_path(name) is not None
        print(f"{name}  ({h}x{w}x{c}, {'bundled weights' if bundled else 'no bundled weights'}): {entry.description}")
        try:
            layout = codec.code_layout(name)
        except codec.CodecError:
            print("  no discrete codes (continuous latents): cannot make .tfvq files")
            continue
        if layout == codec.ALL_LAYERS_LAYOUT:
            (row,) = codec.rate_table(name)
            grids = ", ".join(f"{gh}x{gw} K={k}" for (gh, gw), k in zip(row["code_grid"], row["num_codes"]))
            print(f"  all {len(row['code_grid'])} layers: {grids}; {row['bits']} bits ({row['payload_bytes']} bytes) "
                  f"per image, {row['ratio']:.1f}:1")
            continue
        for layer in range(1, model.num_layers + 1):
            gh, gw = model.code_shape(layer)
            k = model.quantizer(layer).num_codes
            bits = model.bits(layer)
            nbytes = -(-bits // 8)
            unit = "byte" if nbytes == 1 else "bytes"
            print(f"  layer {layer}: {gh}x{gw} codes of K={k}, {bits} bits ({nbytes} {unit}) per image, "
                  f"{h * w * c * 8 / bits:.1f}:1")


def _compress(args):
    from tfvq import codec

    _read_bytes(args.image)  # a clear error for a missing file
    model, _ = codec.load_model(args.model, args.weights)
    image = codec.load_png(args.image, model.image_shape)
    data = codec.compress(image, args.model, args.layer, weights=args.weights)
    out = args.output or os.path.splitext(args.image)[0] + ".tfvq"
    with open(out, "wb") as f:
        f.write(data)
    header = codec.read_header(data)
    which = f"all {len(header.code_shapes)} layers" if header.all_layers else f"layer {args.layer}"
    print(f"{args.image} -> {out}: {len(data)} bytes ({header.payload_bytes} bytes of codes, "
          f"{header.bits} bits, {which} of {args.model})")


def _decompress(args):
    from tfvq import codec

    data = _read_bytes(args.file)
    images = codec.decompress(data, seed=args.seed, weights=args.weights)
    base = args.output or os.path.splitext(args.file)[0] + ".png"
    if len(images) == 1:
        outs = [base]
    else:
        stem, ext = os.path.splitext(base)
        outs = [f"{stem}_{i}{ext or '.png'}" for i in range(len(images))]
    for out, image in zip(outs, images):
        codec.save_png(out, image)
    print(f"{args.file} -> {', '.join(outs)}")


def _info(args):
    from tfvq.codec import format as fmt

    header = fmt.read_header(_read_bytes(args.file))
    if header.all_layers:
        grids = ", ".join(f"{h}x{w} K={k}" for (h, w), k in zip(header.code_shapes, header.layer_num_codes))
        print(f"{args.file}: .tfvq version {header.version} (all layers), model {header.model} "
              f"(weights {header.weights_hash.hex()}), all {len(header.code_shapes)} layers, {header.count} image(s) "
              f"of codes {grids}, {header.bits} bits per image, {header.payload_bytes} bytes of codes, "
              f"{header.file_bytes} bytes in all")
        return
    h, w = header.code_shape
    print(f"{args.file}: .tfvq version {header.version}, model {header.model} "
          f"(weights {header.weights_hash.hex()}), layer {header.layer}, {header.count} image(s) of {h}x{w} codes, "
          f"K={header.num_codes}, {header.payload_bytes} bytes of codes, {header.file_bytes} bytes in all")


def main(argv=None):
    """Entry point of the `tfvq` console script; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(argv)
    from tfvq.codec.format import CodecError

    command = {"models": _models, "compress": _compress, "decompress": _decompress, "info": _info}[args.command]
    try:
        command(args)
    except (CodecError, ValueError, OSError, KeyError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"tfvq: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tfvq: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # e.g. a TensorFlow error writing to a missing directory: still one line
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        print(f"tfvq: error: {type(err).__name__}: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
