"""`tfvq export` (and `python export.py`): a model for serving (thin command over `tfvq.export`).

Writes a TF Serving SavedModel to OUT/<name>/<version>/ with the signatures
the model lists (see tfvq/export/saved_model.py): for discrete models
encode[_layer_L], decode[_layer_L], decode_seeded[_layer_L],
reconstruct[_layer_L]; for RRVQ-VAEs and Spatial-VAEs also bits_per_dim,
elbo, sample. Images are uint8 pixels in and out. Discrete models also get
TFLite encoders OUT/tflite/<name>_encode_layer<L>_<variant>.tflite in the
float32, float16, dynamic and int8 variants (see tfvq/export/tflite.py): the
quantised ones take the code decision in float, int8 is calibrated on training
images covering every code, and ops whose quantisation changes the codes on
held-out training images stay float (--tflite_min_agreement); models without
codes (Spatial-VAEs) export the SavedModel only.

Discrete models also get their TFLite decoders beside the encoders
(see tfvq/export/tflite_decoders.py): OUT/tflite/<name>_decoders_<variant>.tflite
(float32 and float16; every signature in one file: decode, code_logits and
pixel_likelihood per layer, batch 1; any image size for a fully convolutional
model, else the model's image size), the manifest
<name>_decoder.json and copies of the weights' priors, a folder that decodes
the model's .tfvq files without TensorFlow (`tfvq decompress --decoder=...`).
The float32 decoders are also cached beside the weights the model was loaded
from (X.decoders-<SHA-256 of the weights file>/) with the float32 encoders of
every layer, where `tfvq decompress` and `tfvq compress` find them by
themselves and run without TensorFlow. --format=decoders writes the decoders
(and that cache) alone (no images needed).

--model is a zoo name or a model folder (a `tfvq train` run folder, a
tfvq.zoo.save folder). The warm-up request and the TFLite calibration images
come from --dataset, else from the dataset the folder (or the --weights
folder) was trained on, else from the zoo entry's dataset; the command says
which.

Examples:
  tfvq export --model=hqa_digits --out=exported
  tfvq export --model=runs/hqa_digits --out=exported --version=2
  tfvq export --model=hqa_digits --out=exported --format=tflite --tflite_layers=3,5 --table
  tfvq export --model=rrvq_digits --out=exported
  tfvq export --model=runs/mine --out=exported --format=decoders

Serve it:
  docker run -p 8501:8501 --mount type=bind,source=$PWD/exported/hqa_digits,target=/models/hqa_digits \\
      -e MODEL_NAME=hqa_digits -t tensorflow/serving

`python export.py` takes the same flags.
"""

import os

from tfvq.cli_utils import add_bool, comma_list


def arguments(p):
    from tfvq.export import FORMATS
    from tfvq.export.tflite import VARIANTS

    p.add_argument("--model", default="hqa_digits", help="zoo model name, or a model folder (default: hqa_digits)")
    p.add_argument("--weights", default=None, help="'bundled' or a path accepted by tfvq.zoo.load (default: "
                   "bundled for a zoo name, a folder's own)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--name", default=None, help="the served model's name: OUT/<name>/<version>/ and the TFLite "
                   "files' prefix (default: the zoo name, a folder's zoo name)")
    p.add_argument("--version", type=int, default=1, help="SavedModel version directory")
    p.add_argument("--format", type=comma_list(FORMATS), default=None,
                   help=f"comma-separated: {', '.join(FORMATS)} (default: saved_model,tflite; tflite includes the "
                   "decoders)")
    p.add_argument("--layers", type=comma_list(item=int), help="layers with SavedModel code signatures (default: the "
                   "model's: every HQA layer)")
    p.add_argument("--default_layer", type=int, help="layer of encode/decode/reconstruct/serving_default "
                   "(default: top)")
    p.add_argument("--tflite_layers", type=comma_list(item=int), help="layers to write TFLite encoders for "
                   "(default: the model's)")
    p.add_argument("--variants", type=comma_list(VARIANTS), default=list(VARIANTS),
                   help=f"TFLite variants, comma-separated: {', '.join(VARIANTS)} (default: all)")
    p.add_argument("--dataset", help="images for the warm-up request and TFLite calibration (default: the "
                   "folder's dataset, else the zoo entry's); anything `tfvq train --dataset` takes")
    p.add_argument("--data_dir", help="directory of prepared tfds datasets")
    p.add_argument("--tflite_train_images", type=int, default=1000, help="training images that calibrate int8 and "
                   "check the quantised encoders' codes (the test split is never used)")
    p.add_argument("--tflite_min_agreement", type=float, help="fraction of codes a quantised encoder must share "
                   "with the float one on held-out training images; ops stay float until it does (default: 0.98 "
                   "for int8, 0.998 for float16 and dynamic; 0: only the code decision stays float)")
    add_bool(p, "table", "print TFLite size, speed and agreement with the SavedModel on the test split (needs "
             "--format to include saved_model, or an existing SavedModel at the output path)")


def run(args):
    from tfvq import data, zoo
    from tfvq.export import saved_model, tflite, tflite_decoders
    from tfvq.zoo import refs

    if args.version < 1 or args.tflite_train_images < 1:
        raise ValueError("--version and --tflite_train_images take positive integers.")
    if args.tflite_min_agreement is not None and not 0.0 <= args.tflite_min_agreement <= 1.0:
        raise ValueError(f"--tflite_min_agreement takes a fraction in [0, 1], got {args.tflite_min_agreement}.")
    weights = refs.default_weights(args.model, args.weights)
    model = zoo.load(args.model, weights=weights)
    name = args.name or refs.file_name(args.model)
    formats = set(args.format or ("saved_model", "tflite"))
    if formats & {"tflite", "decoders"} and model.code_layout() is None:
        if args.format is not None:
            tflite.check_model(model)  # a clear TypeError: no codes, no TFLite encoder
        formats = {"saved_model"}  # the default formats of a model without codes
    if formats == {"decoders"}:
        print(refs.describe(args.model, weights))
    else:
        dataset, source = refs.dataset_of(args.model, weights, args.dataset)
        print(f"{refs.describe(args.model, weights)}; images from {dataset} ({source})")

    def images(split, limit=None):
        return data.load_numpy(dataset, split, limit=limit, data_dir=args.data_dir, image_shape=model.image_shape)

    path = os.path.join(args.out, name, str(args.version))
    if "saved_model" in formats:
        path = saved_model.export_saved_model(model, args.out, name, args.version, args.layers, args.default_layer,
                                              images("test", 1))
        print(f"SavedModel: {path}")
    if "tflite" in formats:
        rep = images("train", args.tflite_train_images)
        tl_dir = os.path.join(args.out, "tflite")
        options = dict(min_agreement=args.tflite_min_agreement)
        if args.table:
            rows = tflite.agreement_table(model, args.tflite_layers, path, images("test"), rep, tl_dir, name,
                                          args.variants, **options)
            print(tflite.format_table(rows))
            for r in rows:
                print(f"TFLite: {r['path']}")
        else:
            for p in tflite.export_tflite(model, tl_dir, name, args.tflite_layers, args.variants, rep,
                                          **options).values():
                print(f"TFLite: {p}")
    if formats & {"tflite", "decoders"}:
        with tflite_decoders.DecoderConversion(model) as conversion:
            manifest = tflite_decoders.export_decoders(model, os.path.join(args.out, "tflite"), name,
                                                       conversion=conversion)
            print(f"TFLite decoders: {manifest}")
            try:
                with tflite_decoders.EncoderConversion(model, _code_bias(model, name)) as encoders:
                    cached = tflite_decoders.cache_decoders(model, name, conversion, encoders,
                                                            _native_size(args.model, weights))
            except OSError as err:  # e.g. bundled weights in a read-only installation
                cached, why = None, f"the weights' folder is not writable ({err})"
            else:
                why = "the weights come from no file"
            print(f"TFLite encoders and decoders for tfvq compress and decompress: {cached}" if cached else
                  f"TFLite decoders not cached beside the weights: {why}; tfvq decompress decodes their files "
                  f"with TensorFlow, or with --decoder={manifest}")
    return 0


def _code_bias(model, name):
    """The rate weights' code bias of the static prior of `model`'s weights (`StaticPrior.code_bias`), or None:
    what the encoders' `encode_biased` signatures hold."""
    from tfvq import zoo
    from tfvq.codec import files

    return files.load_prior(name, model, zoo.weights_hash(model)).code_bias()


def _native_size(model_name, weights):
    """(h, w) that `tfvq compress --resize=auto` resizes from for this model and weights, or None."""
    from tfvq.codec import files

    return files.native_size(model_name, None if weights in (None, "bundled") else weights)
