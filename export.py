"""Export a tfvq zoo model for serving (thin CLI over `tfvq.export`).

Writes a TF Serving SavedModel to DIR/<model>/<version>/ with the signatures
the model lists (see tfvq/export/saved_model.py): for discrete models
encode[_layer_L], decode[_layer_L], decode_seeded[_layer_L],
reconstruct[_layer_L]; for RRVQ-VAEs and Spatial-VAEs also bits_per_dim,
elbo, sample. Images are uint8 pixels in and out. Discrete models also get
TFLite encoders DIR/tflite/<model>_encode_layer<L>_<variant>.tflite in the
float32, float16, dynamic and int8 variants (see tfvq/export/tflite.py): the
quantised ones take the code decision in float, int8 is calibrated on training
images covering every code, and ops whose quantisation changes the codes on
held-out training images stay float (--tflite_min_agreement); models without
codes (Spatial-VAEs) export the SavedModel only.

Examples:
  python export.py --model=hqa_digits --out=exported
  python export.py --model=hqa_digits --weights=runs/hqa_digits --out=exported --version=2
  python export.py --model=hqa_digits --out=exported --format=tflite --tflite_layers=3,5 --table
  python export.py --model=rrvq_digits --out=exported

Serve it:
  docker run -p 8501:8501 --mount type=bind,source=$PWD/exported/hqa_digits,target=/models/hqa_digits \
      -e MODEL_NAME=hqa_digits -t tensorflow/serving
"""

import os
import sys

from absl import app, flags

import tfvq  # noqa: F401  (first: selects TensorFlow's CPU allocator before TensorFlow starts)

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "hqa_digits", "Zoo model name.")
flags.DEFINE_string("weights", "bundled", "'bundled' or a path accepted by tfvq.zoo.load.")
flags.DEFINE_string("out", None, "Output directory.")
flags.DEFINE_integer("version", 1, "SavedModel version directory.", lower_bound=1)
flags.DEFINE_list("format", ["saved_model", "tflite"], "Comma-separated: saved_model, tflite.")
flags.DEFINE_list("layers", None, "Layers with SavedModel code signatures (default: the model's: every HQA layer).")
flags.DEFINE_integer("default_layer", None, "Layer of encode/decode/reconstruct/serving_default (default: top).")
flags.DEFINE_list("tflite_layers", None, "Layers to write TFLite encoders for (default: the model's).")
flags.DEFINE_list("variants", ["float32", "float16", "dynamic", "int8"], "TFLite variants.")
flags.DEFINE_integer("tflite_train_images", 1000, "Training images that calibrate int8 and check the quantised "
                     "encoders' codes (the test split is never used).", lower_bound=1)
flags.DEFINE_float("tflite_min_agreement", None, "Fraction of codes a quantised encoder must share with the float "
                   "one on held-out training images; ops stay float until it does (default: 0.98 for int8, 0.998 "
                   "for float16 and dynamic; 0: only the code decision stays float).", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_bool("table", False, "Print TFLite size, speed and agreement with the SavedModel on the test split "
                  "(needs --format to include saved_model, or an existing SavedModel at the output path).")


def _ints(values, name):
    try:
        return None if values is None else [int(v) for v in values]
    except ValueError:
        raise app.UsageError(f"--{name} takes comma-separated integers, got {','.join(values)}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.out:
        raise app.UsageError("--out is required.")
    formats = set(FLAGS.format)
    if not formats or formats - {"saved_model", "tflite"}:
        raise app.UsageError(f"--format takes saved_model and/or tflite, got {','.join(FLAGS.format)}")
    layers, tflite_layers = _ints(FLAGS.layers, "layers"), _ints(FLAGS.tflite_layers, "tflite_layers")
    from tfvq import data, zoo
    from tfvq.export import saved_model, tflite

    try:
        model = zoo.load(FLAGS.model, weights=FLAGS.weights)
        dataset = zoo.get(FLAGS.model).dataset
        if "tflite" in formats and model.code_layout() is None:
            if FLAGS["format"].present:
                tflite.check_model(model)  # a clear TypeError: no codes, no TFLite encoder
            formats = {"saved_model"}  # the default formats of a model without codes
        path = os.path.join(FLAGS.out, FLAGS.model, str(FLAGS.version))
        if "saved_model" in formats:
            warmup = data.load_numpy(dataset, "test", limit=1)
            path = saved_model.export_saved_model(model, FLAGS.out, FLAGS.model, FLAGS.version, layers,
                                                  FLAGS.default_layer, warmup)
            print(f"SavedModel: {path}")
        if "tflite" in formats:
            rep = data.load_numpy(dataset, "train", limit=FLAGS.tflite_train_images)
            tl_dir = os.path.join(FLAGS.out, "tflite")
            options = dict(min_agreement=FLAGS.tflite_min_agreement)
            if FLAGS.table:
                rows = tflite.agreement_table(model, tflite_layers, path, data.load_numpy(dataset, "test"), rep,
                                              tl_dir, FLAGS.model, FLAGS.variants, **options)
                print(tflite.format_table(rows))
                for r in rows:
                    print(f"TFLite: {r['path']}")
            else:
                for p in tflite.export_tflite(model, tl_dir, FLAGS.model, tflite_layers, FLAGS.variants, rep,
                                              **options).values():
                    print(f"TFLite: {p}")
    except (ValueError, TypeError, FileNotFoundError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from tfvq.cli_utils import run_absl

    run_absl(main, __doc__)
