"""`tfvq train` (and `python train.py`): train a zoo model into a run folder (thin command over `tfvq.train`).

With no flags it trains `hqa_digits` (the HQA MNIST architecture, Table 10, on
the embedded 8x8 digits resized to 32x32) on this machine in a few minutes and
prints where everything went. Every model trains in the stages it declares:
HQA greedily, one stage per layer; RRVQ-VAE, Spatial-VAE and the VQ-VAE in one
stage (RRVQ-VAEs with AdaMax and a learning rate reduced on plateaus of the
test-set bits per dim). The run folder is a model folder: every other command
takes it as --model (export, evaluate, compress, fit-priors; train --from_weights).

Examples:
  tfvq train
  tfvq train --model=hqa_mnist --data_dir=~/tensorflow_datasets
  tfvq train --model=hqa_mnist --strategy=mirrored --cpu_devices=2 --steps=100
  tfvq train --model=rrvq_digits                  # RRVQ-VAE, end to end, ~10 min
  tfvq train --model=hqa_mnist --precision=mixed_bfloat16   # bfloat16 layers, float32 variables
  tfvq train --model=hqa_digits --dataset=my_scans/ --from_weights=bundled --learning_rate=5e-4
  tfvq train --model=vq_digits --config=rotation_trick=false --model_dir=runs/vq_digits_st
  tfvq train --dataset=more_scans/ --from_weights=runs/hqa_digits --model_dir=runs/hqa_digits_2
  tfvq train --model=hqa_mnist --dataset=tfds:fashion_mnist --data_dir=~/tensorflow_datasets
  TF_CONFIG=... tfvq train --model=hqa_mnist --strategy=multi_worker_mirrored

`python train.py` takes the same flags. Running the same command again resumes
from the last checkpoint in --model_dir.
"""

import os

from tfvq.cli_utils import add_bool, comma_list

DEFAULT_MODEL = "hqa_digits"


def arguments(p):
    from tfvq.layers.precision import PRECISIONS
    from tfvq.train.strategies import STRATEGIES

    p.add_argument("--model", default=None, help=f"zoo model name (default: {DEFAULT_MODEL}, or the zoo model a "
                   "--from_weights folder was trained as; see `tfvq models`)")
    add_bool(p, "list_models", "list the zoo's models and exit")
    p.add_argument("--dataset", help="the data (default: the model's own): a tfvq.data name, a directory of images "
                   "(PNG, JPEG, BMP, GIF, WebP; train/ and test/ subfolders, else a hash split), a .npz/.npy file of "
                   "images, or tfds:NAME; images are converted to the model's size and channels")
    add_bool(p, "bundled_recipe", "train with the recipe and dataset the model's bundled weights came from (e.g. "
             "hqa_mnist's CPU recipe on mnist10k) instead of the paper's; see `tfvq info --model=NAME`")
    p.add_argument("--learning_rate", type=float, help="initial learning rate of every stage (default: the "
                   "model's recipe)")
    p.add_argument("--image_size", type=_positive, help="train at this square image size (models whose "
                   "architecture allows it, e.g. HQA's fully convolutional stack)")
    p.add_argument("--config", action="append", type=config_item, metavar="KEY=VALUE",
                   help="change one key of the model's configuration (repeatable; the value is read as JSON, "
                   "else as text: --config=rotation_trick=false --config=num_codes=512); see `tfvq info "
                   "--model=NAME` for the keys")
    p.add_argument("--from_weights", help="start from these weights and fine-tune: 'bundled', a model folder (a "
                   "run folder of this command, a tfvq.zoo.save folder), a path tfvq.zoo.load accepts, or an https "
                   "URL with #sha256=HEX")
    p.add_argument("--data_dir", help="directory of prepared tfds datasets")
    p.add_argument("--data_cache", default="auto", type=data_cache, help="keep the decoded training images: auto (read the cache "
                   "`tfvq data cache` wrote under --data_dir, else decode every epoch), file (write it first), memory, "
                   "off, or a cache file PATH.npy")
    p.add_argument("--strategy", default=STRATEGIES[0], choices=STRATEGIES, help="tf.distribute strategy")
    p.add_argument("--cpu_devices", type=_positive, help="split the CPU into N logical devices (to try "
                   "--strategy=mirrored)")
    p.add_argument("--tpu", help="TPU address for --strategy=tpu")
    p.add_argument("--inter_op_threads", type=_positive, help="TensorFlow inter-op threads (default: twice the CPU "
                   "cores, which runs this model's many small kernels side by side; see benchmarks/hqa_train.py)")
    p.add_argument("--batch_size", type=_positive, help="global batch size (default: the model's recipe)")
    p.add_argument("--steps", type=_positive, help="training steps per layer, or in all for an end-to-end model "
                   "(default: the model's recipe)")
    p.add_argument("--layers", type=comma_list(item=int), help="stages to train, e.g. 1,2 (default: all, in "
                   "order); an HQA model's stages are its layers, bottom first; other models have one stage")
    p.add_argument("--model_dir", help="output directory (default: runs/<model>)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data order, initial weights and sampling noise")
    p.add_argument("--log_every", type=_positive, default=25, help="steps between progress and TensorBoard updates")
    p.add_argument("--checkpoint_every", type=_positive, default=200, help="steps between checkpoints")
    p.add_argument("--eval_examples", type=_positive, help="test images for the final metrics and PNG grids, and "
                   "for each end-to-end evaluation (default: the model's recipe, else 512)")
    p.add_argument("--precision", default=PRECISIONS[0], choices=PRECISIONS,
                   help="Keras dtype policy of the layers (variables, logits, likelihoods and the optimiser stay "
                        "float32): mixed_bfloat16 for CPUs with AVX512-BF16/AMX and TPUs, mixed_float16 (with loss "
                        "scaling) for GPUs")
    add_bool(p, "jit_compile", "compile each replica's loss and gradients with XLA (slower on CPU; for GPUs and TPUs)")
    p.add_argument("--eval_every", type=_positive, help="end-to-end models: steps between test-set evaluations, "
                   "which drive the reduce-on-plateau learning rate (default: the model's recipe, else 500)")


def _positive(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def data_cache(text):
    """A --data_cache value (`tfvq.data.load(cache=...)`), checked before anything is built."""
    import argparse

    from tfvq.data.image_cache import check_mode

    try:
        return check_mode(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def config_item(text):
    """`KEY=VALUE` -> (KEY, VALUE), the value read as JSON (numbers, true/false, lists, null), else as text."""
    import argparse
    import json

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if value.strip() in ("True", "False"):
        value = value.strip().lower()
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def model_name(args):
    """The zoo model to train: --model, else the one a --from_weights model folder was trained as, else the
    default."""
    from tfvq.zoo import refs

    if args.model is not None:
        if refs.is_folder(args.model):
            raise ValueError(f"tfvq train builds a zoo model: --model takes its name, not a folder ({args.model}); "
                             f"to start from a folder's weights pass --from_weights={args.model} "
                             f"(--model={refs.file_name(args.model)}).")
        return args.model
    if args.from_weights and refs.is_folder(args.from_weights):
        return refs.file_name(args.from_weights)
    return DEFAULT_MODEL


def _data_source(dataset):
    """A --dataset that is a path, made absolute: the run folder's metadata.json names it for later commands."""
    from tfvq import data

    if dataset is None or dataset in data.DATASETS or not os.path.exists(os.path.expanduser(dataset)):
        return dataset
    return os.path.abspath(os.path.expanduser(dataset))


def run(args):
    from tfvq.train import strategies

    strategies.split_cpu(args.cpu_devices)
    strategies.set_threads(args.inter_op_threads)
    from tfvq import zoo
    from tfvq.train import loop

    if args.list_models:
        for name in zoo.list_models():
            print(f"{name:16s} {zoo.get(name).description}")
        return 0
    options = loop.TrainOptions(
        model=model_name(args),
        dataset=_data_source(args.dataset),
        bundled_recipe=args.bundled_recipe,
        data_dir=args.data_dir,
        data_cache=args.data_cache,
        strategy=args.strategy,
        batch_size=args.batch_size,
        steps=args.steps,
        layers=args.layers,
        model_dir=args.model_dir,
        seed=args.seed,
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
        eval_examples=args.eval_examples,
        eval_every=args.eval_every,
        tpu_address=args.tpu,
        precision=args.precision,
        jit_compile=args.jit_compile,
        learning_rate=args.learning_rate,
        image_size=args.image_size,
        config=dict(args.config) if args.config else None,
        from_weights=args.from_weights,
    )
    summary = loop.train(options)
    if not summary:  # not the chief: the chief writes the run folder
        return 0
    summary["prior"] = write_static_prior(summary, options)
    print_summary(summary, options)
    return 0


def write_static_prior(summary, options):
    """Counts the final weights' codes over the run's training split into the run folder's static prior.

    The prior goes where the zoo keeps the priors of the folder's weights (`tfvq.zoo.prior_paths`:
    `model.prior.json`), so files compressed with the run folder are entropy-coded (`tfvq.codec`).
    Context priors take minutes to fit: `tfvq fit-priors --model=MODEL_DIR` adds them.
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

    model_dir = summary.get("model_dir", os.path.dirname(summary["weights"]) or ".")
    print("\nDone.")
    print(f"  model folder: {model_dir}  (tfvq export|evaluate|compress --model={model_dir}; "
          f"tfvq.zoo.load('{model_dir}'))")
    print(f"  weights:      {summary['weights']}")
    for name, path in summary.items():
        if isinstance(path, str) and path.endswith(".png"):
            print(f"  {name + ':':13s} {path}")
    if summary.get("prior"):
        print(f"  prior:        {summary['prior']}  (context priors: tfvq fit-priors --model={model_dir})")
    print(f"  metrics:      {summary['metrics']}")
    print(f"  TensorBoard:  tensorboard --logdir {summary['tensorboard']}")
    report = summary["report"]
    for line in report["lines"]:
        print(f"  {line}")
    print("  " + outputs.format_table(*report["table"]).replace("\n", "\n  "))
