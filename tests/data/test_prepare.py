"""Tests of `tfvq.data.prepare`: downloading a tfds dataset fails at once, with what to do, where it cannot."""

import socket

import pytest

from tfvq.data import prepare


def _closed_port():
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_reachable_names_the_reason_a_host_does_not_answer(monkeypatch):
    port = _closed_port()
    real = socket.create_connection
    monkeypatch.setattr(socket, "create_connection", lambda address, timeout: real(("127.0.0.1", port), timeout))
    reason = prepare._reachable("example.invalid", timeout=2.0)
    assert reason is not None and reason.startswith("ConnectionRefusedError")


def test_reachable_is_none_for_a_listening_host(monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        real = socket.create_connection
        monkeypatch.setattr(socket, "create_connection",
                            lambda address, timeout: real(("127.0.0.1", port), timeout))
        assert prepare._reachable("example.invalid") is None


def test_prepare_offline_raises_connection_error_naming_the_host_and_data_dir(monkeypatch, tmp_path):
    monkeypatch.setattr(prepare, "_reachable", lambda host: "OSError: no route")
    with pytest.raises(ConnectionError) as err:
        prepare.prepare("mnist", data_dir=str(tmp_path))
    message = str(err.value)
    assert prepare.DOWNLOAD_HOST in message and "no route" in message
    assert str(tmp_path) in message and "--data_dir" in message


def test_prepare_unknown_dataset_is_a_value_error_before_any_network():
    with pytest.raises(ValueError, match="Unknown tfds dataset 'no_such_dataset_xyz'"):
        prepare.prepare("no_such_dataset_xyz", check_network=False)
