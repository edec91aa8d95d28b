"""Model folders that travel (zoo.save / zoo.load(DIR)) and weights from a URL with a SHA-256."""

import hashlib
import http.server
import json
import os
import threading

import numpy as np
import pytest

from tfvq import data, zoo
from tfvq.zoo import folders


@pytest.fixture(scope="module")
def digits():
    return data.load_numpy("digits", "test", limit=4)


def test_a_saved_folder_loads_without_its_zoo_entry_with_equal_outputs(tmp_path, digits):
    model = zoo.build("hqa_digits", image_shape=(16, 16, 1))  # a configuration no zoo entry has
    for v in model.trainable_variables:
        v.assign(v * 0.9)
    zoo.save(model, str(tmp_path), metadata={"dataset": "digits", "steps": 3})
    assert sorted(os.listdir(tmp_path)) == ["config.json", "metadata.json", "model.weights.h5"]
    meta = json.load(open(tmp_path / "metadata.json"))
    assert meta["dataset"] == "digits" and meta["steps"] == 3 and meta["class_name"] == "HQA"
    assert meta["zoo_name"] is None and meta["parameters"] > 0 and meta["tfvq_version"]
    loaded = zoo.load(str(tmp_path))
    x = digits[:, ::2, ::2]
    assert loaded.image_shape == (16, 16, 1)
    np.testing.assert_array_equal(loaded.reconstruct(x).numpy(), model.reconstruct(x).numpy())


def test_loading_never_runs_code_from_the_folder(tmp_path):
    config = {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
              "config": {"function": {"class_name": "__lambda__", "config": {"code": "print('pwned')"}}}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="Could not rebuild a model"):
        zoo.load(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="Could not rebuild a model"):
        zoo.load(str(tmp_path))


@pytest.fixture
def server(tmp_path):
    """A static HTTP server on 127.0.0.1 serving `tmp_path/www`, stopped after the test."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_weights_from_a_url_are_checked_against_their_sha256(server, tmp_path, monkeypatch, digits):
    monkeypatch.setattr(folders, "CACHE_DIR", str(tmp_path / "cache"))
    root, base = server
    bundled = zoo.load("hqa_digits", weights="bundled")
    bundled.save_weights(root / "hqa.weights.h5")
    digest = hashlib.sha256((root / "hqa.weights.h5").read_bytes()).hexdigest()
    model = zoo.load("hqa_digits", weights=f"{base}/hqa.weights.h5#sha256={digest}")
    np.testing.assert_array_equal(model.encode(digits).numpy(), bundled.encode(digits).numpy())
    assert os.path.exists(tmp_path / "cache" / "tfvq" / f"{digest[:16]}-hqa.weights.h5")
    # Its priors would live beside the downloaded file.
    assert zoo.prior_paths(model)["static"] == str(tmp_path / "cache" / "tfvq" / f"{digest[:16]}-hqa.prior.json")
    wrong = "0" * 64
    with pytest.raises(ValueError, match="does not have the SHA-256"):
        zoo.load("hqa_digits", weights=f"{base}/hqa.weights.h5", sha256=wrong)
    with pytest.raises(ValueError, match="needs the file's SHA-256"):
        zoo.load("hqa_digits", weights=f"{base}/hqa.weights.h5")
    with pytest.raises(OSError, match="Could not download"):
        zoo.load("hqa_digits", weights=f"{base}/missing.weights.h5#sha256={digest}")
