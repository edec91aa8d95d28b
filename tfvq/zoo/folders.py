"""Model folders that travel, and weights from the web.

`save(model, DIR)` writes keras-hub's preset layout:

    DIR/config.json       the model's class and configuration (`keras.saving.serialize_keras_object`)
    DIR/metadata.json     zoo name (if any), tfvq and Keras versions, parameters, and what the caller adds
                          (dataset, steps, metrics, ...)
    DIR/model.weights.h5  the weights

`tfvq.zoo.load(DIR)` rebuilds the model from `config.json` alone (no zoo
entry needed, so a configuration of your own travels too) and loads the
weights. Loading never executes code from the folder: the configuration is
JSON deserialised by Keras in `safe_mode` (no lambdas, no pickle), and only
classes registered with Keras (tfvq's, under the package name `tfvq`) can be
named in it.

`download(url, sha256)` fetches a weights file once into a cache, with a
progress bar, and refuses a file whose SHA-256 is not the one given
(`keras.utils.get_file` does the download, the cache and the check).
"""

import json
import os
import urllib.parse

import keras

import tfvq
import tfvq.models  # noqa: F401  (registers tfvq's classes with Keras: the only ones a folder may name)

CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "model.weights.h5"
CACHE_SUBDIR = "tfvq"
CACHE_DIR = os.environ.get("TFVQ_CACHE_DIR")
"""Where downloads are cached: `$TFVQ_CACHE_DIR/tfvq/`, else Keras' `~/.keras/tfvq/`."""


def is_model_folder(path):
    """True for a directory holding a `config.json` (a `save` folder, or a `train.py` run folder)."""
    try:
        return os.path.isdir(path) and os.path.isfile(os.path.join(path, CONFIG_FILE))
    except TypeError:
        return False


def save(model, directory, metadata=None):
    """Writes `model` as a self-contained folder (see the module doc); returns the folder's path.

    Args:
      model: a tfvq model (any Keras model registered as serialisable).
      directory: the folder (created if needed; existing files of the layout are replaced).
      metadata: a JSON-able dict added to `metadata.json` (e.g. dataset, steps, metrics).
    """
    os.makedirs(directory, exist_ok=True)
    config = keras.saving.serialize_keras_object(model)
    # The dtype policy is how a model was trained (e.g. mixed_bfloat16), not what it is: a loaded model
    # computes in float32 unless its user asks otherwise.
    config.get("config", {}).pop("dtype", None)
    info = {
        "zoo_name": getattr(model, "zoo_name", None),
        "class_name": type(model).__name__,
        "tfvq_version": tfvq.__version__,
        "keras_version": keras.__version__,
        "parameters": int(sum(int(v.numpy().size) for v in model.trainable_variables)),
        **(metadata or {}),
    }
    with open(os.path.join(directory, CONFIG_FILE), "w") as f:
        json.dump(config, f, indent=2, default=_jsonable)
    with open(os.path.join(directory, METADATA_FILE), "w") as f:
        json.dump(info, f, indent=2, default=_jsonable)
    model.save_weights(os.path.join(directory, WEIGHTS_FILE))
    return directory


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def read_metadata(directory):
    path = os.path.join(directory, METADATA_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def load_folder(directory, weights=True):
    """The model of a folder written by `save` (or by `train.py`), with its weights unless `weights=False`.

    Raises:
      FileNotFoundError: no `config.json` (or no weights file when weights are wanted).
      ValueError: a configuration that is not a model Keras can rebuild safely, or weights that do not fit it.
    """
    config_path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"{directory} is not a model folder: it has no {CONFIG_FILE} (tfvq.zoo.save writes "
                                "one, and so does train.py at the end of a run).")
    try:
        with open(config_path) as f:
            config = json.load(f)
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except Exception as err:  # noqa: BLE001  (a corrupt, foreign or unsafe configuration)
        raise ValueError(f"Could not rebuild a model from {config_path}: {err}") from None
    if not isinstance(model, keras.Model):
        raise ValueError(f"{config_path} describes a {type(model).__name__}, not a model.")
    model.zoo_name = read_metadata(directory).get("zoo_name")
    if weights:
        weights_path = os.path.join(directory, WEIGHTS_FILE)
        if not os.path.isfile(weights_path):
            raise FileNotFoundError(f"{directory} has a {CONFIG_FILE} but no {WEIGHTS_FILE}.")
        try:
            model.load_weights(weights_path)
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"Could not load {weights_path} into the model of {config_path}: {err}") from None
    return model


def is_url(weights):
    return isinstance(weights, str) and weights.split(":", 1)[0].lower() in ("http", "https")


def download(url, sha256=None):
    """The local path of the file at `url`, downloaded once into the cache (`CACHE_DIR`, `keras.utils.get_file`).

    The SHA-256 comes from `sha256` or from the URL's fragment (`...#sha256=HEX`); it is required, and a
    file whose hash differs is refused (`ValueError`), so what loads is what was published.
    """
    parsed = urllib.parse.urlsplit(url)
    fragment = dict(urllib.parse.parse_qsl(parsed.fragment))
    expected = (sha256 or fragment.get("sha256") or "").lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise ValueError(f"A weights URL needs the file's SHA-256 (64 hex digits): add '#sha256=HEX' to {url!r} or "
                         "pass sha256=HEX.")
    if fragment.get("sha256") and sha256 and fragment["sha256"].lower() != sha256.lower():
        raise ValueError(f"The URL's sha256 ({fragment['sha256']}) and the sha256 argument ({sha256}) differ.")
    clean = urllib.parse.urlunsplit(parsed._replace(fragment=""))
    name = os.path.basename(parsed.path) or "weights"
    if not name.endswith((".weights.h5", ".keras")):
        raise ValueError(f"A weights URL must name a .weights.h5 or .keras file, got {name!r}.")
    if CACHE_DIR:
        os.makedirs(CACHE_DIR, exist_ok=True)  # get_file falls back to /tmp for a folder it cannot write
    try:
        # Cached under the hash, so two files of the same name from different places do not collide.
        return keras.utils.get_file(f"{expected[:16]}-{name}", origin=clean, file_hash=expected,
                                    hash_algorithm="sha256", cache_subdir=CACHE_SUBDIR, cache_dir=CACHE_DIR)
    except ValueError as err:
        raise ValueError(f"The file at {clean} does not have the SHA-256 {expected}: refused ({err}).") from None
    except Exception as err:  # noqa: BLE001  (network errors of every kind)
        raise OSError(f"Could not download {clean}: {err}") from None
