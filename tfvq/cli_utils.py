"""What every command line of tfvq shares: one-line errors, flag types, input and output files, a progress bar.

The `tfvq` command (`tfvq.cli`) and its aliases (`python train.py`, `python export.py`,
`python -m tfvq.evaluate`, `python -m tfvq.data`) all parse with `Parser` and run with `run_command`, so
every one answers `--help` with status 0 and reports an error as one line `tfvq: error: ...` with status 1.

Flags are `--flag=value` long options with underscores (`--data_dir`, `--context_steps`), as absl spelled
them in train.py and export.py; absl's boolean forms stay (`--table`, `--table=false`, `--notable`), and
so do its comma-separated lists (`--layers=1,2`).

This module imports nothing of TensorFlow.
"""

import argparse
import importlib.abc
import importlib.util
import os
import sys

PROG = "tfvq"


class Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose usage errors are one line `tfvq: error: ...` and exit status 1."""

    def error(self, message):
        print(f"{PROG}: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(1)


def one_line(err):
    """An exception's message on one line (a multi-line message's lines joined), or its type's name."""
    text = " ".join(line.strip() for line in str(err).strip().splitlines() if line.strip())
    return text or type(err).__name__


class _SilentLoader(importlib.abc.Loader):
    """Loads a module with file descriptor 2 pointed at the null device (TensorFlow's start-up lines are
    written by its C++ libraries straight to the descriptor, past `sys.stderr`)."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        sys.stderr.flush()
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
            self.loader.exec_module(module)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once, for `_SilentLoader`, then leaves the import system as it was."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _SilentLoader(spec.loader)
        return spec


def quiet_tensorflow():
    """Keeps TensorFlow's log lines (oneDNN, CUDA, absl, CPU features) off the terminal: its C++ log level
    set to errors-only-fatal (`TF_CPP_MIN_LOG_LEVEL=3`, unless set), and the lines its libraries print while
    they load dropped, whenever TensorFlow is first imported. Python's own warnings and tfvq's errors are
    not touched. A command run with `--verbose` skips this."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlow) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlow())


def run_command(command, args):
    """Runs `command(args)`; returns the exit status: its own (an int), else 0, or 1 after a one-line error."""
    try:
        status = command(args)
    except (ValueError, OSError, KeyError, TypeError, FloatingPointError) as err:
        print(f"{PROG}: error: {one_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # e.g. a TensorFlow error writing to a missing directory: still one line
        print(f"{PROG}: error: {type(err).__name__}: {one_line(err)}", file=sys.stderr)
        return 1
    return status if isinstance(status, int) else 0


def command_main(prog, description, add_arguments, command, argv=None, epilog=None):
    """Parses `argv` (default: `sys.argv[1:]`) with the arguments `add_arguments(parser)` adds, and runs
    `command(args)` (`run_command`); returns the exit status."""
    parser = Parser(prog=prog, description=description, epilog=epilog,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    return run_command(command, args)


def add_bool(parser, name, help, default=False):
    """A boolean flag as absl spells it: `--name`, `--name=true|false|1|0`, `--noname`."""
    parser.add_argument(f"--{name}", dest=name, nargs="?", const=True, default=default, type=_bool,
                        metavar="true|false", help=help)
    parser.add_argument(f"--no{name}", dest=name, action="store_false", help=argparse.SUPPRESS)


def _bool(text):
    value = text.strip().lower()
    if value in ("true", "t", "1", "yes"):
        return True
    if value in ("false", "f", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def comma_list(choices=None, item=str):
    """An argument type: comma-separated items (`item` of each), each one of `choices` if given."""

    def parse(text):
        values = [v.strip() for v in text.split(",") if v.strip()]
        try:
            values = [item(v) for v in values]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {item.__name__}s, got {text!r}") from None
        bad = [v for v in values if choices is not None and v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"expected comma-separated values of {', '.join(map(str, choices))}, "
                                             f"got {text!r}" if choices else f"expected a value, got {text!r}")
        return values

    parse.__name__ = "list"
    return parse


# ------------------------------------------------------------------------------------------- files in and out
def read_bytes(path):
    """The bytes of the file `path`; `FileNotFoundError` (a one-line error) if there is none."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path}")
    with open(path, "rb") as f:
        return f.read()


def input_files(paths, suffixes):
    """[(input path, output stem relative to its directory input or None)] of files and directories: a
    directory gives every file below it whose name ends in one of `suffixes` (any case)."""
    out = []
    for path in paths:
        if os.path.isdir(path):
            for root, _, files in sorted(os.walk(path)):
                for name in sorted(files):
                    if name.lower().endswith(suffixes):
                        full = os.path.join(root, name)
                        out.append((full, os.path.splitext(os.path.relpath(full, path))[0]))
        else:
            read_bytes(path)  # a clear error for a missing file
            out.append((path, None))
    if not out:
        raise FileNotFoundError(f"No input files with the suffixes {', '.join(suffixes)} in {', '.join(paths)}.")
    return out


def output_paths(output, items, suffix):
    """The output path of each of `input_files`' items: `output` (-o) as the file for one file input; else
    OUTPUT/stem, or beside the input without -o."""
    if len(items) == 1 and items[0][1] is None:
        return [output or os.path.splitext(items[0][0])[0] + suffix]
    outs = []
    for path, stem in items:
        if output:
            out = os.path.join(output, (stem or os.path.splitext(os.path.basename(path))[0]) + suffix)
        else:
            out = os.path.splitext(path)[0] + suffix
        outs.append(out)
    return outs


def progress(items, what):
    """Yields `items`, drawing a one-line progress bar on stderr when there is more than one."""
    total = len(items)
    for i, item in enumerate(items, 1):
        yield item
        if total > 1:
            filled = int(30 * i / total)
            print(f"\r{what} [{'#' * filled}{'.' * (30 - filled)}] {i}/{total}", end="" if i < total else "\n",
                  file=sys.stderr, flush=True)
