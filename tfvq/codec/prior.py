"""Static priors: integer frequency tables of each layer's codes, counted over a model's training split.

A static prior is what every discrete model can be coded with: layer l's
codes, each coded under one table (`entropy.static_frequencies` of the
counts), whatever the model. It is stored as a small JSON file beside the
weights it was fitted for (`<name>.prior.json` beside `<name>.weights.h5`),
with the weights hash, so a file coded with it names it by its hash
(`StaticPrior.digest`). A model without such a file gets the uniform prior
(every count 0), which every reader can rebuild.

    >>> prior = tfvq.codec.fit_prior("hqa_digits")              # counts the training split's codes
    >>> prior.save(tfvq.codec.prior_path_for("hqa_digits"))     # beside the bundled weights
"""

import dataclasses
import hashlib
import json
import os

import numpy as np

from tfvq.codec import entropy
from tfvq.codec.format import HASH_BYTES, CodecError

SUFFIX = ".prior.json"


@dataclasses.dataclass(frozen=True, eq=False)
class StaticPrior:
    """Code counts of every layer (layer 1 first) and the weights they were counted with.

    Attributes:
      model: the zoo model name.
      weights_hash: `tfvq.codec.weights_hash` of the weights (hex).
      counts: one int64 vector [K_l] per layer.
      source: where the counts come from (e.g. "digits/train, 1500 images"), or "uniform".
      context: the `tfvq.codec.context.ContextPriors` of the same weights, if they have any (not part of
        the prior file or its digest; `load_prior` attaches them).
    """

    model: str
    weights_hash: str
    counts: tuple
    source: str
    context: object = None

    def coding_digest(self, uses_context):
        """The prior hash a file records: `digest`, or with the context priors' when a layer uses them."""
        if not uses_context:
            return self.digest
        from tfvq.codec.context import combined_digest

        return combined_digest(self.digest, self.context.digest)

    def table(self, layer):
        """The integer frequency table [K] of layer `layer` (1-based), summing to `entropy.TOTAL`."""
        return entropy.static_frequencies(self.counts[layer - 1])

    @property
    def digest(self):
        """8 bytes naming the tables (SHA-256 of every layer's table): what a file's header records."""
        h = hashlib.sha256()
        for l in range(1, len(self.counts) + 1):
            h.update(np.ascontiguousarray(self.table(l), ">i8").tobytes())
        return h.digest()[:HASH_BYTES]

    def to_json(self):
        return {"model": self.model, "weights_hash": self.weights_hash, "source": self.source,
                "counts": [[int(c) for c in layer] for layer in self.counts]}

    def save(self, path):
        with open(os.fspath(path), "w") as f:
            json.dump(self.to_json(), f)
            f.write("\n")

    @classmethod
    def from_json(cls, data):
        try:
            counts = tuple(np.asarray(c, np.int64) for c in data["counts"])
            if any(c.ndim != 1 or (c < 0).any() for c in counts):
                raise ValueError("negative or nested counts")
            return cls(str(data["model"]), str(data["weights_hash"]), counts, str(data.get("source", "")))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"Not a static prior file (expected model, weights_hash and counts per layer): "
                             f"{err}") from None


def uniform_prior(model_name, layout, weights_hash):
    """The prior of a model without a prior file: every count 0 (uniform tables)."""
    return StaticPrior(model_name, weights_hash.hex(), tuple(np.zeros(k, np.int64) for k in layout.num_codes),
                       "uniform")


def prior_path_for(model_name, weights=None):
    """Where the static prior of these weights lives: `<weights>.prior.json` beside the weights file.

    The bundled weights' prior is `tfvq/zoo/weights/<name>.prior.json`; for
    a `.weights.h5` file the same name with `.prior.json` (`model.prior.json`
    for a run folder's `model.weights.h5`); for a model folder (a directory),
    `model.prior.json` inside it; for a `.keras` file, `<path>.prior.json`.
    """
    from tfvq import zoo

    if weights is None or weights == "bundled":
        path = zoo.registry.bundled_weights_path(model_name) or os.path.join(
            zoo.registry.WEIGHTS_DIR, f"{model_name}.weights.h5")
    else:
        path = os.path.abspath(os.fspath(weights)).rstrip(os.sep)
        if os.path.isdir(path):  # a model folder (train.py's run folder): the priors travel inside it
            return os.path.join(path, "model" + SUFFIX)
    for ext in (".weights.h5", ".keras"):
        if path.endswith(ext):
            return path[: -len(ext)] + SUFFIX
    return path + SUFFIX


def load_prior(model_name, model, digest, weights=None):
    """The static prior of `model` (its weights hash `digest`): its prior file, or the uniform prior; with
    the context priors beside it attached (`StaticPrior.context`), if there are any.

    Raises `CodecError` if a file holds counts or networks for other weights or another layout.
    """
    from tfvq.codec.context import load_context

    prior = _load_static(model_name, model, digest, weights)
    return dataclasses.replace(prior, context=load_context(model_name, model, digest, weights))


def _load_static(model_name, model, digest, weights):
    path = prior_path_for(model_name, weights)
    layout = model.code_layout()
    if not os.path.exists(path):
        return uniform_prior(model_name, layout, digest)
    try:
        with open(path) as f:
            prior = StaticPrior.from_json(json.load(f))
    except (OSError, ValueError) as err:
        raise CodecError(f"Cannot read the static prior {path}: {err}. Refit it with tfvq.codec.fit_prior.") from None
    if prior.weights_hash != digest.hex():
        raise CodecError(f"The static prior {path} was counted with other weights of {model_name!r} (hash "
                         f"{prior.weights_hash}, these weights {digest.hex()}); refit it with "
                         "`tfvq.codec.fit_prior` and save it there.")
    if tuple(len(c) for c in prior.counts) != tuple(layout.num_codes):
        raise CodecError(f"The static prior {path} has tables of {[len(c) for c in prior.counts]} codes, but "
                         f"{model_name!r} has K = {list(layout.num_codes)}; refit it with `tfvq.codec.fit_prior`.")
    return prior


def training_images(model_name, images=None):
    """(images, what they are): the given images, or the training split of the zoo entry's dataset."""
    if images is not None:
        return images, f"{len(images)} given images"
    from tfvq import data, zoo

    dataset = zoo.get(model_name).dataset
    images = data.load_numpy(dataset, "train")
    return images, f"{dataset}/train, {len(images)} images"


def count_codes(model, images, batch_size=128):
    """Every layer's code counts (int64 [K_l] per layer) over `images`: the most probable codes, as
    `compress` sends them, one `encode` per group of layers a file carries."""
    import tensorflow as tf

    layout = model.code_layout()
    counts = [np.zeros(k, np.int64) for k in layout.num_codes]
    starts = [1] if layout.cumulative else range(1, layout.num_layers + 1)
    for start in starts:
        for at in range(0, len(images), batch_size):
            codes = tf.nest.flatten(model.encode(images[at: at + batch_size], start))
            for l, c in zip(layout.layers_sent(start), codes):
                counts[l - 1] += np.bincount(np.asarray(c).ravel(), minlength=layout.num_codes[l - 1])
    return tuple(counts)


def fit_prior(model_name, weights=None, images=None, batch_size=128):
    """Counts every layer's codes (the most probable ones, as `compress` sends) over a training split.

    Args:
      model_name: a zoo model with discrete codes.
      weights: None for the bundled weights, or a path `tfvq.zoo.load` accepts.
      images: uint8 or float images of the model's shape; None: the training
        split of the zoo entry's dataset (`tfvq.data.load_numpy(dataset, "train")`).
      batch_size: images per `encode` call.

    Returns:
      a `StaticPrior` (save it with `.save(prior_path_for(model_name, weights))`).
    """
    from tfvq.codec.files import load_model

    model, digest = load_model(model_name, weights)
    images, source = training_images(model_name, images)
    counts = count_codes(model, images, batch_size)
    return StaticPrior(model_name, digest.hex(), counts, source)
