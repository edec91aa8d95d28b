"""`tfvq compress`, `decompress`, `info`, `models` and `fit-priors`: images to `.tfvq` files and back.

    tfvq models [PATTERN]
    tfvq compress IMAGE|DIR ... --model=NAME|FOLDER [--layer=L] [--coder=auto|static|progressive|context|fixed]
                  [--lossless] [--resize=auto|off] [--grayscale|--rgb] [-o OUT.tfvq|OUTDIR] [--weights=PATH]
    tfvq decompress FILE.tfvq|DIR ... [-o OUT.png|OUTDIR] [--seed=S] [--layer=L] [--model=FOLDER] [--weights=PATH]
    tfvq info FILE.tfvq
    tfvq fit-priors --model=NAME|FOLDER [--weights=PATH] [--images=SOURCE] [--context_steps=N]

Every command works the same for every zoo model with discrete codes
(`tfvq.codec`), named or a model folder (a `tfvq train` run folder, a
`tfvq.zoo.save` folder: its configuration, weights and priors): `--layer`
defaults to the model's default layer, and a file holds the layers
`model.encode(x, layer)` gives (or, progressive, every layer from it to the
top). Images of any size are taken; `decompress` writes PNG images of the
size compressed. An image of the size a model's training images were
resized from (28x28 for `hqa_mnist` and `vqvae_mnist`) is resized the same
way to the model's size before coding, and back after (`--resize=auto`,
the default; `tfvq.codec.compress`). A file made with a folder names the folder's zoo name;
`decompress --model=FOLDER` (or `--weights=FOLDER`) decodes it.
"""

import os

from tfvq.cli_utils import progress


def models_arguments(p):
    p.add_argument("pattern", nargs="?", default="*", help="shell-style wildcard, e.g. 'hqa*'")


def compress_arguments(p):
    from tfvq.codec.coding import CODER_CHOICES
    from tfvq.codec.files import RESIZE_CHOICES

    p.add_argument("images", nargs="+", help="image files of any size, or directories of them")
    p.add_argument("--model", required=True, help="zoo model name (see `tfvq models`), or a model folder (a "
                   "`tfvq train` run folder, a tfvq.zoo.save folder)")
    p.add_argument("--layer", type=int, default=None,
                   help="layer to encode at (1 = finest; default: the model's default layer, marked in "
                        "`tfvq models`); the file holds the codes the model's encode gives at that layer")
    p.add_argument("--coder", default=CODER_CHOICES[0], choices=CODER_CHOICES,
                   help="auto (default): per layer the fewest bits of fixed-rate, static-prior, model-probability "
                        "and context-prior coding, and the smallest whole file; progressive: every layer from "
                        "--layer to the top, each given the one above by the model; context: the same under the "
                        "learned context priors (`tfvq fit-priors`); fixed: every code at the fixed rate")
    p.add_argument("--lossless", action="store_true",
                   help="also code the pixels under the model's p(x | z): decompress gives the exact image")
    p.add_argument("--resize", default=RESIZE_CHOICES[0], choices=RESIZE_CHOICES,
                   help="auto (default): an image of the size the model's training images were resized from "
                        "(28x28 for hqa_mnist and vqvae_mnist, which learned MNIST rescaled to 32x32) is resized "
                        "the same way (bilinear) to the model's size and coded there; the file keeps its size, and "
                        "decompress resizes back (least-squares inverse of that resize). Never for --lossless. "
                        "off: code every image at its own size (padded to the model's stride)")
    colour = p.add_mutually_exclusive_group()
    colour.add_argument("--grayscale", action="store_true", help="convert images to grayscale first")
    colour.add_argument("--rgb", action="store_true", help="convert images to RGB first")
    p.add_argument("-o", "--output", help="output file (one input; default: IMAGE with the suffix .tfvq), or "
                   "output directory (several inputs or a directory)")
    p.add_argument("--weights", help="weights to use instead of the bundled ones (a folder: its own); any path "
                   "tfvq.zoo.load accepts")


def decompress_arguments(p):
    p.add_argument("files", nargs="+", help="input .tfvq files or directories")
    p.add_argument("-o", "--output", help="output PNG (one input; default: FILE with the suffix .png; "
                   "for several images, OUT_0.png, OUT_1.png, ...), or output directory")
    p.add_argument("--seed", type=int, default=None,
                   help="sample the codes of the layers below the stored ones with this seed "
                        "(default: deterministic decoding, their most probable codes)")
    p.add_argument("--layer", type=int, default=None,
                   help="decode at this layer (a progressive file holds every layer up to the top)")
    p.add_argument("--model", help="the model folder the files were made with (default: the zoo model each file "
                   "names, with its bundled weights); a zoo name must be the one the files name")
    p.add_argument("--weights", help="weights to use instead of the bundled ones of the file's model (a model "
                   "folder, or any path tfvq.zoo.load accepts)")


def info_arguments(p):
    p.add_argument("file", help="input .tfvq file")


def fit_priors_arguments(p):
    p.add_argument("--model", required=True, help="zoo model name, or a model folder (its priors are written "
                   "into it)")
    p.add_argument("--weights", help="weights to fit for instead of the bundled ones (any path tfvq.zoo.load "
                   "accepts); the priors are written beside them")
    p.add_argument("--images", help="training images instead of the model's dataset (a folder's: the one it was "
                   "trained on): anything `tfvq train --dataset` takes (a directory of images, .npz/.npy, "
                   "tfds:NAME)")
    p.add_argument("--context_steps", type=int, default=3000,
                   help="Adam steps per layer of the context priors (0: static priors only)")


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
    from tfvq.codec.header import layers_text

    layers = row["layers"]
    held = "" if len(layers) == 1 else f"layers {layers_text(layers)}, "
    grids = _runs(f"{gh}x{gw}" for gh, gw in row["code_grid"])
    k = "K=" + _runs(str(k) for k in row["num_codes"]).replace(", ", "/")
    unit = "byte" if row["payload_bytes"] == 1 else "bytes"
    default = " (default)" if row["default"] else ""
    return (f"  layer {row['layer']}{default}: {held}{grids} codes of {k}, {row['bits']} bits "
            f"({row['payload_bytes']} {unit}) per image, {row['ratio']:.1f}:1")


def models(args):
    from tfvq import codec, zoo

    names = zoo.list_models(args.pattern)
    if not names:
        raise ValueError(f"No zoo model matches {args.pattern!r}; `tfvq models` lists them all.")
    for name in names:
        spec = codec.model_spec(name)
        h, w, c = spec.image_shape
        bundled = zoo.bundled_weights_path(name) is not None
        print(f"{name}  ({h}x{w}x{c}, {'bundled weights' if bundled else 'no bundled weights'}): "
              f"{zoo.get(name).description}")
        if spec.layout is None:
            print("  no discrete codes (continuous latents): cannot make .tfvq files")
            continue
        for row in codec.rate_table(name):
            print(_rate_line(row))


def _inputs(paths, suffixes):
    """[(input path, output stem relative to its directory input or None)] of files and directories."""
    out = []
    for path in paths:
        if os.path.isdir(path):
            for root, _, files in sorted(os.walk(path)):
                for name in sorted(files):
                    if name.lower().endswith(suffixes):
                        full = os.path.join(root, name)
                        out.append((full, os.path.splitext(os.path.relpath(full, path))[0]))
        else:
            _read_bytes(path)  # a clear error for a missing file
            out.append((path, None))
    if not out:
        raise FileNotFoundError(f"No input files with the suffixes {', '.join(suffixes)} in {', '.join(paths)}.")
    return out


def _targets(args, items, suffix):
    """Output paths: -o FILE for one file input; else OUTDIR/stem (or beside the input without -o)."""
    if len(items) == 1 and items[0][1] is None:
        return [args.output or os.path.splitext(items[0][0])[0] + suffix]
    outs = []
    for path, stem in items:
        if args.output:
            out = os.path.join(args.output, (stem or os.path.splitext(os.path.basename(path))[0]) + suffix)
        else:
            out = os.path.splitext(path)[0] + suffix
        outs.append(out)
    return outs


def compress(args):
    from tfvq import codec
    from tfvq.zoo import refs
    from tfvq.codec.images import IMAGE_SUFFIXES, load_image

    items = _inputs(args.images, IMAGE_SUFFIXES)
    compressor = codec.Compressor(args.model, args.weights)  # the model, its weights and priors, loaded once
    named = refs.describe(args.model, args.weights)
    convert = "grayscale" if args.grayscale else "rgb" if args.rgb else None
    outs = _targets(args, items, ".tfvq")
    many = len(items) > 1 or items[0][1] is not None
    lines = []
    for (path, _), out in progress(list(zip(items, outs)), "compress"):
        image = load_image(path, compressor.model.image_shape[2], convert)
        written = compressor.compress(image, args.layer, args.coder, args.lossless, args.resize)
        if os.path.dirname(out) and many:  # an output directory is made; a single output's must exist
            os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as f:
            f.write(bytes(written))
        lines.append(f"{path} -> {out}: {written.file_bytes} bytes ({written.summary()} of {named})")
    print("\n".join(lines))


def _decoding_weights(args, header):
    """The weights `decompress` decodes a file with: --weights, else --model's folder, else the bundled ones of
    the model the file names (a --model that is a name must be that one)."""
    from tfvq.zoo import refs

    if args.model is None or args.weights is not None:
        return args.weights
    if refs.is_folder(args.model):
        return args.model
    if args.model != header.model:
        raise ValueError(f"The file names the model {header.model!r}, not {args.model!r}: pass the model folder it "
                         "was made with, or no --model.")
    return None


def decompress(args):
    from tfvq import codec
    from tfvq.codec.images import save_image_png

    items = _inputs(args.files, (".tfvq",))
    bases = _targets(args, items, ".png")
    lines = []
    for (path, _), base in progress(list(zip(items, bases)), "decompress"):
        data = _read_bytes(path)
        weights = _decoding_weights(args, codec.read_header(data))
        images = codec.decompress(data, seed=args.seed, weights=weights, layer=args.layer)
        if len(images) == 1:
            outs = [base]
        else:
            stem, ext = os.path.splitext(base)
            outs = [f"{stem}_{i}{ext or '.png'}" for i in range(len(images))]
        if os.path.dirname(base) and (len(items) > 1 or items[0][1] is not None):
            os.makedirs(os.path.dirname(base), exist_ok=True)
        for out, image in zip(outs, images):
            save_image_png(out, image)
        lines.append(f"{path} -> {', '.join(outs)}")
    print("\n".join(lines))


def info(args):
    from tfvq import codec

    first, *rest = codec.read_header(_read_bytes(args.file)).describe()
    print("\n".join([f"{args.file}: {first}", *rest]))


def fit_priors(args):
    from tfvq import zoo
    from tfvq.codec import context, files, fit

    model, _ = files.load_model(args.model, args.weights)
    paths = zoo.prior_paths(model)
    if paths is None:
        raise ValueError(f"{args.model!r} has no weights file to fit priors for: pass --weights=PATH or a model "
                         "folder.")
    images = None
    if args.images:
        from tfvq import data

        images = data.load_numpy(args.images, "train", image_shape=tuple(model.image_shape))
    static = fit.fit_prior(args.model, args.weights, images)
    static.save(paths["static"])
    print(f"static priors ({static.source}) -> {paths['static']}")
    if args.context_steps <= 0 or model.code_layout().cumulative or not context.layer_factors(model.code_layout()):
        return
    priors = fit.fit_context(args.model, args.weights, images, steps=args.context_steps)
    priors.save(paths["context"])
    print(f"context priors ({priors.source}) -> {paths['context']}")


COMMANDS = {
    "models": (models_arguments, models,
               "list the zoo models with the layers a file holds and its bits per image"),
    "compress": (compress_arguments, compress,
                 "compress images (PNG, JPEG, BMP, GIF, WebP; files or directories) to .tfvq files"),
    "decompress": (decompress_arguments, decompress, "decompress .tfvq files (or directories of them) to PNG images"),
    "info": (info_arguments, info, "print the header of a .tfvq file"),
    "fit-priors": (fit_priors_arguments, fit_priors,
                   "fit the static (and context) priors of a model's weights on its training images, and save "
                   "them beside the weights"),
}
"""Each command: (its arguments, the function that runs it, one line of help)."""
