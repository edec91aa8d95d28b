"""`tfvq compress IMAGE|DIR ... --model=NAME|FOLDER`: images of any size to `.tfvq` files (`tfvq.codec.compress`).

    tfvq compress digit.png --model=hqa_digits --layer=5 -o digit.tfvq
    tfvq compress photos/ --model=rrvq_digits --grayscale --lossless -o out/   # a directory, any sizes
    tfvq compress digit28.png --model=hqa_mnist --layer=2     # a 28x28 MNIST digit: coded at 32x32
    tfvq compress digit.png --model=hqa_digits --coder=progressive --layer=1   # one file, every rate

Every zoo model with discrete codes works the same way, named or a model folder (a `tfvq train` run folder,
a `tfvq.zoo.save` folder: its configuration, weights and priors; the file names the folder's zoo name):
`--layer` defaults to the model's default layer, and a file holds the layers `model.encode(x, layer)` gives
(or, progressive, every layer from it to the top). An image of the size a model's training images were
resized from (28x28 for `hqa_mnist` and `vqvae_mnist`) is resized the same way to the model's size before
coding, and back by `decompress` (`--resize=auto`, the default). The model, its weights and priors load
once for all the images; each line says what the file holds, from the header written.

Where the weights have TFLite encoders (the bundled models with TFLite decoders ship them; `tfvq export
--model=FOLDER --format=decoders` caches a folder's beside its weights) the images are encoded without
TensorFlow, every coder included; otherwise, and for what they cannot encode (a fully convolutional model's
image of another size), with TensorFlow, said on one line of stderr (tfvq.codec.lite_encoding).
"""

import os

from tfvq.cli_utils import input_files, output_paths, progress


def arguments(p):
    from tfvq.codec.coding import CODER_CHOICES
    from tfvq.codec.lite_encoding import RESIZE_CHOICES

    p.add_argument("images", nargs="+", help="image files of any size, or directories of them")
    p.add_argument("--model", required=True, help="zoo model name (see `tfvq models`), or a model folder (a "
                   "`tfvq train` run folder, a tfvq.zoo.save folder)")
    p.add_argument("--layer", type=int, default=None,
                   help="layer to encode at (1 = finest; default: the model's default layer, marked in "
                        "`tfvq models`); the file holds the codes the model's encode gives at that layer")
    p.add_argument("--coder", default=CODER_CHOICES[0], choices=CODER_CHOICES,
                   help="auto (default): per layer the fewest bits of fixed-rate, static-prior, model-probability "
                        "and context-prior coding, and the smallest whole file, the context priors within a budget "
                        "of work (at most about twice static's time); smallest: the same without the budget (a "
                        "large image's file 5%% smaller, in many times the time); progressive: every layer from "
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
    p.add_argument("--backend", choices=("auto", "tflite", "tensorflow"), default="auto",
                   help="auto: the weights' TFLite encoders where they have them, else TensorFlow (default); "
                   "tflite: only them (an error where there are none); tensorflow: the Keras model")


def _named(args, compressor):
    """Which model and weights the files come from, for the output (`tfvq.zoo.refs.describe`'s words)."""
    if compressor.lite is None:
        from tfvq.zoo import refs

        return refs.describe(args.model, args.weights)
    if os.path.isdir(args.model):
        return f"{compressor.name} from the folder {args.model}"
    if args.weights is None or args.weights == "bundled":
        return args.model
    if os.path.isdir(args.weights):
        return f"{args.model} from the folder {args.weights}"
    return f"{args.model} with the weights {args.weights}"


def run(args):
    from tfvq.codec.images import IMAGE_SUFFIXES, load_image
    from tfvq.codec.lite_encoding import BackendCompressor

    items = input_files(args.images, IMAGE_SUFFIXES)
    # the model (TFLite encoders where the weights have them), its weights and priors, loaded once
    compressor = BackendCompressor(args.model, args.weights, args.backend)
    named = _named(args, compressor)
    convert = "grayscale" if args.grayscale else "rgb" if args.rgb else None
    outs = output_paths(args.output, items, ".tfvq")
    many = len(items) > 1 or items[0][1] is not None
    lines = []
    for (path, _), out in progress(list(zip(items, outs)), "compress"):
        image = load_image(path, compressor.image_shape[2], convert)
        written = compressor.compress(image, args.layer, args.coder, args.lossless, args.resize)
        if os.path.dirname(out) and many:  # an output directory is made; a single output's must exist
            os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as f:
            f.write(bytes(written))
        lines.append(f"{path} -> {out}: {written.file_bytes} bytes ({written.summary()} of {named})")
    print("\n".join(lines))
    return 0
