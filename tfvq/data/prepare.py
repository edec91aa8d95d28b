"""Download and prepare a tfds dataset (`tfvq data prepare NAME --data_dir=DIR`, `tfvq.commands.data`).

tfvq itself never downloads (its loaders call tfds with `download=False`): run
this on a machine with internet, then copy DIR where you train and pass
`--data_dir=DIR`. It works from a plain install of tfvq (it needs neither
`tfds build`'s apache_beam nor anything else beyond tfvq's dependencies).

    tfvq data prepare mnist --data_dir=~/tensorflow_datasets
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
