"""`tfvq data prepare NAME --data_dir=DIR`: download and prepare a tfds dataset; `tfvq data list`.

(`python -m tfvq.data` takes the same arguments.) tfvq itself never downloads (its loaders call tfds with `download=False`): run
this on a machine with internet, then copy DIR where you train and pass
`--data_dir=DIR`. It works from a plain install of tfvq (it needs neither
`tfds build`'s apache_beam nor anything else beyond tfvq's dependencies).

    tfvq data prepare mnist --data_dir=~/tensorflow_datasets
    tfvq data list
"""

import os
import socket
import sys

DOWNLOAD_HOST = "storage.googleapis.com"
"""Where tfds fetches most datasets (its GCS mirror, and many datasets' own files): checked before downloading."""


def _reachable(host, timeout=5.0):
    """None if `host`'s HTTPS port answers, else the reason (checked first, so that an offline machine fails at
    once instead of after tfds' download retries)."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return None
    except OSError as err:
        return f"{type(err).__name__}: {err}"


def prepare(name, data_dir=None, check_network=True):
    """Downloads and prepares tfds dataset `name` in `data_dir` (tfds' `download_and_prepare`).

    Raises:
      ValueError: an unknown dataset name.
      ConnectionError: no network to download from (the message says what to do).
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as err:  # noqa: BLE001  (tfds raises several kinds for an unknown name)
        raise ValueError(f"Unknown tfds dataset {name!r}: {str(err).splitlines()[0]}") from None
    if check_network:
        reason = _reachable(DOWNLOAD_HOST)
        if reason is not None:
            raise ConnectionError(
                f"Cannot download {name!r}: {DOWNLOAD_HOST} is unreachable ({reason}). Run this command on a "
                f"machine with internet, then copy its data directory ({builder.data_dir_root}) here and pass "
                "--data_dir."
            )
    builder.download_and_prepare()
    return builder.data_dir


def add_arguments(parser):
    """The arguments of `tfvq data` (and `python -m tfvq.data`): its subcommands prepare and list."""
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="{prepare,list}")
    p = sub.add_parser("prepare", help="download and prepare a tfds dataset (needs internet)")
    p.add_argument("name", help="tfds dataset name, e.g. mnist, celeb_a, cifar10, svhn_cropped")
    p.add_argument("--data_dir", default=None, help="where to prepare it (default: tfds' ~/tensorflow_datasets)")
    sub.add_parser("list", help="list tfvq's named datasets")


def command(args):
    """Runs `tfvq data prepare|list` with parsed arguments."""
    if args.data_command == "list":
        from tfvq import data

        for name in data.DATASETS:
            info = data.info(name)
            print(f"{name:14s} {info.source:9s} {'x'.join(map(str, info.image_shape))}")
        return 0
    path = prepare(args.name, os.path.expanduser(args.data_dir) if args.data_dir else None)
    print(f"Prepared {args.name} in {path}")
    return 0


def main(argv=None, prog="python -m tfvq.data"):
    from tfvq.cli_utils import command_main

    return command_main(prog, __doc__.splitlines()[0], add_arguments, command, argv)
