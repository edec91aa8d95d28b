"""The `tfvq` command: train, export, evaluate and compress with the tfvq zoo.

A model is a zoo name or a model folder everywhere: a `tfvq train` run folder
or a `tfvq.zoo.save` folder carries its configuration, weights, priors and
the dataset it was trained on. Flags are `--flag=value` with underscores.
`tfvq COMMAND --help` says more. Errors print one line `tfvq: error: ...` to
stderr and exit with status 1. TensorFlow's log lines are kept off the
terminal unless a command is given `--verbose`.

Each subcommand is a module of `tfvq.commands` with its flags (`arguments`) and its runner (`run`), listed
in that package's one table, `COMMANDS`; `tfvq --help` lists the commands from that table, so the summary
cannot miss one. Only the module asked for is imported, so `tfvq --help` and `tfvq info` never start
TensorFlow.
"""

import argparse
import importlib
import sys

import tfvq  # noqa: F401  (first: sets TensorFlow's CPU defaults before TensorFlow starts)
from tfvq.cli_utils import PROG, Parser, quiet_tensorflow, run_command
from tfvq.commands import COMMANDS, module_name


def _top_parser():
    parser = Parser(prog=PROG, description=__doc__.split("\n\n")[0].strip('"'),
                    epilog=__doc__.split("\n\n", 1)[1].rsplit("\n\nEach subcommand", 1)[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {tfvq.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def command_parser(name):
    """The parser of subcommand `name` (its module imported), and the function running it."""
    module = importlib.import_module(module_name(name))
    doc = (module.__doc__ or "").strip()
    parser = Parser(prog=f"{PROG} {name}", description=COMMANDS[name],
                    epilog=doc.split("\n\n", 1)[1] if "\n\n" in doc else None,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    module.arguments(parser)
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's log lines")
    return parser, module.run


def main(argv=None):
    """Entry point of the `tfvq` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") or argv[0] not in COMMANDS:
        _top_parser().parse_args(argv[:1])  # --help, --version, or a one-line error for a missing/unknown command
        return 1
    if "--verbose" not in argv[1:]:
        quiet_tensorflow()  # before the command's module is imported: it may import TensorFlow
    parser, command = command_parser(argv[0])
    return run_command(command, parser.parse_args(argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
