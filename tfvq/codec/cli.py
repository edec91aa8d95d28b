"""The `tfvq` command: compress PNG images to `.tfvq` files with zoo models and back.

    tfvq models [PATTERN]
    tfvq compress IMAGE.png --model=NAME [--layer=L] [-o OUT.tfvq] [--weights=PATH]
    tfvq decompress OUT.tfvq [-o OUT.png] [--seed=S] [--weights=PATH]
    tfvq info OUT.tfvq

Every command works the same for every zoo model with discrete codes
(`tfvq.codec`): `--layer` defaults to the model's default layer, and a file
holds the layers `model.encode(x, layer)` gives.

Errors (a missing file, a corrupt `.tfvq` file, a PNG of the wrong size)
print one line `tfvq: error: ...` to stderr and exit with status 1.
"""

import argparse
import os
import sys

import tfvq  # noqa: F401  (sets TensorFlow's CPU defaults before TensorFlow starts)


def _parser():
    parser = argparse.ArgumentParser(
        prog="tfvq", description="Compress images to bit-packed VQ codes with the tfvq zoo models that have codes."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{models,compress,decompress,info}")

    p = sub.add_parser("models", help="list the zoo models with the layers a file holds and its bits per image")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style wildcard, e.g. 'hqa*'")

    p = sub.add_parser("compress", help="compress a PNG image to a .tfvq file")
    p.add_argument("image", help="input PNG, of the model's size and channels")
    p.add_argument("--model", required=True, help="zoo model name (see `tfvq models`)")
    p.add_argument("--layer", type=int, default=None,
                   help="layer to encode at (1 = finest; default: the model's default layer, marked in "
                        "`tfvq models`); the file holds the codes the model's encode gives at that layer")
    p.add_argument("-o", "--output", help="output file (default: IMAGE with the suffix .tfvq)")
    p.add_argument("--weights", help="weights to use instead of the bundled ones (any path tfvq.zoo.load accepts)")

    p = sub.add_parser("decompress", help="decompress a .tfvq file to a PNG image")
    p.add_argument("file", help="input .tfvq file")
    p.add_argument("-o", "--output", help="output PNG (default: FILE with the suffix .png; "
                   "for several images, OUT_0.png, OUT_1.png, ...)")
    p.add_argument("--seed", type=int, default=None,
                   help="sample the codes of the layers below the stored ones with this seed "
                        "(default: deterministic decoding, their most probable codes)")
    p.add_argument("--weights", help="weights to use instead of the bundled ones of the file's model")

    p = sub.add_parser("info", help="print the header of a .tfvq file")
    p.add_argument("file", help="input .tfvq file")
    return parser


def _read_bytes(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path}")
    with open(path, "rb") as f:
        return f.read()


def _runs(items):
    """'16x16 (x8), 8x8 (x8)' for runs of equal items; an item alone when all are equal."""
    runs = []
    for item in items:
        if runs and runs[-1][0] == item:
            runs[-1][1] += 1
        else:
            runs.append([item, 1])
    if len(runs) == 1:
        return runs[0][0]
    return ", ".join(item if n == 1 else f"{item} (x{n})" for item, n in runs)


def _rate_line(row):
    """One row of `tfvq models`: the layer, the layers a file of it holds, their grids and Ks, bits per image."""
    from tfvq.codec.rates import layers_text

    layers = row["layers"]
    held = "" if len(layers) == 1 else f"layers {layers_text(layers)}, "
    grids = _runs(f"{gh}x{gw}" for gh, gw in row["code_grid"])
    k = "K=" + _runs(str(k) for k in row["num_codes"]).replace(", ", "/")
    unit = "byte" if row["payload_bytes"] == 1 else "bytes"
    default = " (default)" if row["default"] else ""
    return (f"  layer {row['layer']}{default}: {held}{grids} codes of {k}, {row['bits']} bits "
            f"({row['payload_bytes']} {unit}) per image, {row['ratio']:.1f}:1")


def _models(args):
    from tfvq import codec, zoo

    names = zoo.list_models(args.pattern)
    if not names:
        raise ValueError(f"No zoo model matches {args.pattern!r}; `tfvq models` lists them all.")
    for name in names:
        spec = codec.model_spec(name)
        h, w, c = spec.image_shape
        bundled = zoo.registry.bundled_weights_path(name) is not None
        print(f"{name}  ({h}x{w}x{c}, {'bundled weights' if bundled else 'no bundled weights'}): "
              f"{zoo.get(name).description}")
        if spec.layout is None:
            print("  no discrete codes (continuous latents): cannot make .tfvq files")
            continue
        for row in codec.rate_table(name):
            print(_rate_line(row))


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
    print(f"{args.image} -> {out}: {len(data)} bytes ({header.payload_bytes} bytes of codes, "
          f"{header.bits} bits, {_layers(header)} of {args.model})")


def _layers(header):
    from tfvq.codec.rates import layers_text

    return ("layer " if header.num_layers == 1 else "layers ") + layers_text(header.layers)


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
    grids = ", ".join(f"{h}x{w} K={k}" for (h, w), k in zip(header.code_shapes, header.layer_num_codes))
    print(f"{args.file}: .tfvq version {header.version}, model {header.model} "
          f"(weights {header.weights_hash.hex()}), {_layers(header)}, {header.count} image(s) of codes {grids}, "
          f"{header.bits} bits per image, {header.payload_bytes} bytes of codes, {header.file_bytes} bytes in all")


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
