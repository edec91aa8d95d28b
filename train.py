"""Train a tfvq zoo model (thin CLI over `tfvq.train`).

With no flags it trains `hqa_digits` (the HQA MNIST architecture, Table 10, on
the embedded 8x8 digits resized to 32x32) on this machine in a few minutes and
prints where everything went. Every model trains in the stages it declares:
HQA greedily, one stage per layer; RRVQ-VAE, Spatial-VAE and the VQ-VAE in one
stage (RRVQ-VAEs with AdaMax and a learning rate reduced on plateaus of the
test-set bits per dim).

Examples:
  python train.py
  python train.py --model=hqa_mnist --data_dir=~/tensorflow_datasets
  python train.py --model=hqa_mnist --strategy=mirrored --cpu_devices=2 --steps=100
  python train.py --model=rrvq_digits                  # RRVQ-VAE, end to end, ~10 min
  python train.py --model=hqa_mnist --precision=mixed_bfloat16   # bfloat16 layers, float32 variables
  python train.py --model=rrvq_cifar10_l5 --data_dir=~/tensorflow_datasets
  python train.py --model=hqa_digits --dataset=my_scans/ --from_weights=bundled --learning_rate=5e-4
  python train.py --model=hqa_mnist --dataset=tfds:fashion_mnist --data_dir=~/tensorflow_datasets
  TF_CONFIG=... python train.py --model=hqa_mnist --strategy=multi_worker_mirrored

Running the same command again resumes from the last checkpoint in --model_dir.
"""

import os
import sys

from absl import app, flags

import tfvq  # noqa: F401  (first: selects TensorFlow's CPU allocator before TensorFlow starts)

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "hqa_digits", "Zoo model name (see `python train.py --list_models`).")
flags.DEFINE_bool("list_models", False, "List the zoo's models and exit.")
flags.DEFINE_string("dataset", None, "The data (default: the model's own): a tfvq.data name, a directory of images "
                    "(PNG, JPEG, BMP, GIF, WebP; train/ and test/ subfolders, else a hash split), a .npz/.npy file "
                    "of images, or tfds:NAME. Images are converted to the model's size and channels.")
flags.DEFINE_float("learning_rate", None, "Initial learning rate of every stage (default: the model's recipe).")
flags.DEFINE_integer("image_size", None, "Train at this square image size (models whose architecture allows it, "
                     "e.g. HQA's fully convolutional stack).", lower_bound=1)
flags.DEFINE_string("from_weights", None, "Start from these weights and fine-tune: 'bundled', a path tfvq.zoo.load "
                    "accepts, or an https URL with #sha256=HEX.")
flags.DEFINE_string("data_dir", None, "Directory of prepared tfds datasets.")
flags.DEFINE_enum(
    "strategy", "one_device", ["one_device", "mirrored", "multi_worker_mirrored", "tpu"], "tf.distribute strategy."
)
flags.DEFINE_integer("cpu_devices", None, "Split the CPU into N logical devices (to try --strategy=mirrored).",
                     lower_bound=1)
flags.DEFINE_string("tpu", None, "TPU address for --strategy=tpu.")
flags.DEFINE_integer("inter_op_threads", None, "TensorFlow inter-op threads (default: twice the CPU cores, which "
                     "runs this model's many small kernels side by side; see benchmarks/hqa_train.py).", lower_bound=1)
flags.DEFINE_integer("batch_size", None, "Global batch size (default: the model's recipe).", lower_bound=1)
flags.DEFINE_integer("steps", None, "Training steps per layer, or in all for an end-to-end model (default: the "
                     "model's recipe).", lower_bound=1)
flags.DEFINE_list("layers", None, "Stages to train, e.g. 1,2 (default: all, in order). An HQA model's stages are "
                  "its layers, bottom first; other models have one stage.")
flags.DEFINE_string("model_dir", None, "Output directory (default: runs/<model>).")
flags.DEFINE_integer("seed", 0, "Seed of the data order, initial weights and sampling noise.")
flags.DEFINE_integer("log_every", 25, "Steps between progress and TensorBoard updates.", lower_bound=1)
flags.DEFINE_integer("checkpoint_every", 200, "Steps between checkpoints.", lower_bound=1)
flags.DEFINE_integer("eval_examples", None, "Test images for the final metrics and PNG grids, and for each "
                     "end-to-end evaluation (default: the model's recipe, else 512).", lower_bound=1)
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"],
                  "Keras dtype policy of the layers (variables, logits, likelihoods and the optimiser stay float32): "
                  "mixed_bfloat16 for CPUs with AVX512-BF16/AMX and TPUs, mixed_float16 (with loss scaling) for GPUs.")
flags.DEFINE_bool("jit_compile", False, "Compile each replica's loss and gradients with XLA (slower on CPU; for GPUs "
                  "and TPUs).")
flags.DEFINE_integer("eval_every", None, "End-to-end models: steps between test-set evaluations, which drive the "
                     "reduce-on-plateau learning rate (default: the model's recipe, else 500).", lower_bound=1)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from tfvq.train import strategies

    strategies.split_cpu(FLAGS.cpu_devices)
    strategies.set_threads(FLAGS.inter_op_threads)
    from tfvq import zoo
    from tfvq.train import loop

    if FLAGS.list_models:
        for name in zoo.list_models():
            print(f"{name:16s} {zoo.get(name).description}")
        return 0
    try:
        layers = [int(l) for l in FLAGS.layers] if FLAGS.layers else None
    except ValueError:
        raise app.UsageError(f"--layers takes comma-separated integers, got {','.join(FLAGS.layers)}")
    options = loop.TrainOptions(
        model=FLAGS.model,
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        strategy=FLAGS.strategy,
        batch_size=FLAGS.batch_size,
        steps=FLAGS.steps,
        layers=layers,
        model_dir=FLAGS.model_dir,
        seed=FLAGS.seed,
        log_every=FLAGS.log_every,
        checkpoint_every=FLAGS.checkpoint_every,
        eval_examples=FLAGS.eval_examples,
        eval_every=FLAGS.eval_every,
        tpu_address=FLAGS.tpu,
        precision=FLAGS.precision,
        jit_compile=FLAGS.jit_compile,
        learning_rate=FLAGS.learning_rate,
        image_size=FLAGS.image_size,
        from_weights=FLAGS.from_weights,
    )
    try:
        summary = loop.train(options)
        if summary:  # the chief: the run folder holds the final weights
            summary["prior"] = write_static_prior(summary, options)
    except (ValueError, FileNotFoundError, FloatingPointError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if not summary:
        return 0
    print_summary(summary, options)
    return 0


def write_static_prior(summary, options):
    """Counts the final weights' codes over the run's training split into the run folder's static prior.

    The prior goes where the zoo keeps the priors of the folder's weights (`tfvq.zoo.prior_paths`:
    `model.prior.json`), so files compressed with these weights are entropy-coded (`tfvq.codec`).
    Context priors take minutes to fit: `tfvq fit-priors --model=NAME --weights=MODEL_DIR` adds them.
    Returns the prior's path, or None for a model without discrete codes.
    """
    from tfvq import data, zoo
    from tfvq.codec import StaticPrior, count_codes

    model = zoo.load(summary["model_dir"])
    if model.code_layout() is None:
        return None
    dataset = summary["dataset"]
    images = data.load_numpy(dataset, "train", data_dir=options.data_dir, image_shape=model.image_shape)
    path = zoo.prior_paths(model)["static"]
    StaticPrior(options.model, zoo.weights_hash(model).hex(), count_codes(model, images),
                f"{dataset}/train, {len(images)} images").save(path)
    return path


def print_summary(summary, options):
    """Where a run's outputs went, and the model's report: its lines and its table."""
    from tfvq.train import outputs

    print("\nDone.")
    print(f"  weights:      {summary['weights']}  (tfvq.zoo.load('{options.model}', weights=...))")
    for name, path in summary.items():
        if isinstance(path, str) and path.endswith(".png"):
            print(f"  {name + ':':13s} {path}")
    if summary.get("prior"):
        print(f"  prior:        {summary['prior']}  (tfvq compress --model={options.model} "
              f"--weights={os.path.dirname(summary['prior'])}; context priors: tfvq fit-priors)")
    print(f"  metrics:      {summary['metrics']}")
    print(f"  TensorBoard:  tensorboard --logdir {summary['tensorboard']}")
    report = summary["report"]
    for line in report["lines"]:
        print(f"  {line}")
    print("  " + outputs.format_table(*report["table"]).replace("\n", "\n  "))


if __name__ == "__main__":
    from tfvq.cli_utils import run_absl

    run_absl(main, __doc__)
