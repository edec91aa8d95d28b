"""`tfvq decompress FILE.tfvq|DIR ...`: `.tfvq` files of any version to PNG images of the size compressed.

    tfvq decompress digit.tfvq -o digit_out.png         # add --seed=S for a stochastic decode
    tfvq decompress out/ -o png/                       # a directory of files
    tfvq decompress digit.tfvq --layer=3               # stop after layer 3 of a progressive file
    tfvq decompress a.tfvq --model=runs/mine           # a file made with a model folder

A file names its zoo model and the digest of the weights and priors it was made with, so no model is needed:
the bundled weights of the model a file names, unless --model names the folder it was made with (or
--weights other weights). Without --seed every layer below the stored ones takes its most probable code, so
a file always gives the same image.

Where the weights have TFLite decoders (the bundled models ship theirs; `tfvq export --model=FOLDER
--format=decoders` writes a folder's beside its weights) a file decodes without TensorFlow, in about a
second; otherwise, and for what they cannot decode (another image size, a seeded decode that samples), with
TensorFlow, said on one line of stderr (tfvq.codec.decoding).

    tfvq decompress a.tfvq --decoder=exported/tflite/hqa_digits_decoder.json   # a `tfvq export` folder's
"""

import os

from tfvq.cli_utils import input_files, output_paths, progress, read_bytes


def arguments(p):
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
    p.add_argument("--backend", choices=("auto", "tflite", "tensorflow"), default="auto",
                   help="auto: the weights' TFLite decoders where they have them, else TensorFlow (default); "
                   "tflite: only them (an error where there are none); tensorflow: the Keras model")
    p.add_argument("--decoder", help="the manifest of TFLite decoders to decode with (a `tfvq export` folder's "
                   "tflite/<name>_decoder.json), instead of the weights' own")


def _decoding_weights(args, header):
    """The weights `decompress` decodes a file with: --weights, else --model's folder, else the bundled ones of
    the model the file names (a --model that is a name must be that one)."""
    if args.model is None or args.weights is not None:
        return args.weights
    if os.path.isdir(args.model):  # a model folder (tfvq.zoo.refs.is_folder, which would start TensorFlow)
        return args.model
    if args.model != header.model:
        raise ValueError(f"The file names the model {header.model!r}, not {args.model!r}: pass the model folder it "
                         "was made with, or no --model.")
    return None


def run(args):
    from tfvq import codec
    from tfvq.codec.images import save_image_png

    items = input_files(args.files, (".tfvq",))
    bases = output_paths(args.output, items, ".png")
    lines = []
    for (path, _), base in progress(list(zip(items, bases)), "decompress"):
        data = read_bytes(path)
        weights = _decoding_weights(args, codec.read_header(data))
        images = codec.decompress(data, seed=args.seed, weights=weights, layer=args.layer, backend=args.backend,
                                  decoder=args.decoder)
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
    return 0
