"""Shared behaviour of the absl command-line entry points (train.py, export.py)."""

import sys

from absl import app, flags


def run_absl(main, doc):
    """Runs `main` with absl, answering -h/--help with the module doc and flags and exit status 0.

    absl exits with status 1 after printing help; a help request is not an error.
    """
    if any(arg in ("-h", "--help", "-help", "--helpshort") for arg in sys.argv[1:]):
        print(doc)
        print(flags.FLAGS.main_module_help())
        sys.exit(0)
    app.run(main)
