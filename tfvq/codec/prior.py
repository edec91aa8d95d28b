"""Static priors: integer frequency tables of each layer's codes, counted over a model's training split.

A static prior is what every discrete model can be coded with: layer l's
codes, each coded under one table (`entropy.static_frequencies` of the
counts), whatever the model. It is stored as a small JSON file with the
weights it was fitted for, in the model's folder (`tfvq.zoo.prior_paths`:
`model.prior.json` beside `model.weights.h5`, `hqa_digits.prior.json`
beside the bundled `hqa_digits.weights.h5`), with the weights hash, so a
file coded with it names it by its hash (`StaticPrior.digest`). A model
without such a file gets the uniform prior (every count 0), which every
reader can rebuild. NumPy only: fitting is `tfvq.codec.fit`.

A prior may also carry rate weights {layer: lambda}: the encoder then takes
each of those layers' codes as `argmax_k log q(k) + lambda log p(k)` under
the layer's table (`code_bias`, `CodeModel.encode_biased`), entropy-
constrained VQ's choice (Chou, Lookabaugh & Gray 1989), and the table is
counted over codes chosen that way (`tfvq.codec.fit_prior`). Where q hardly
prefers a code (RRVQ-VAE's top layer on digits) the codes gather on a few
cheap ones. Only the encoder uses the weights: a reader decodes whatever
codes a file holds, so they are not part of the digest.
"""

import dataclasses
import functools
import hashlib
import json
import os

import numpy as np

from tfvq.codec import entropy
from tfvq.codec.container import HASH_BYTES
from tfvq.codec.errors import CodecError

SUFFIX = ".prior.json"


@dataclasses.dataclass(frozen=True, eq=False)
class StaticPrior:
    """Code counts of every layer (layer 1 first) and the weights they were counted with.

    Attributes:
      model: the zoo model name.
      weights_hash: `tfvq.zoo.weights_hash` of the weights (hex).
      counts: one int64 vector [K_l] per layer.
      source: where the counts come from (e.g. "digits/train, 1500 images"), or "uniform".
      rate_weights: {layer: lambda > 0} of the layers whose codes the encoder chooses by rate (`code_bias`);
        empty: every layer takes q's most probable code.
      context: the `tfvq.codec.context.ContextPriors` of the same weights, if they have any (not part of
        the prior file or its digest; `tfvq.codec.files.load_prior` attaches them).
    """

    model: str
    weights_hash: str
    counts: tuple
    source: str
    context: object = None
    rate_weights: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        checked = {}
        for layer, weight in dict(self.rate_weights).items():
            if not 1 <= int(layer) <= len(self.counts) or not np.isfinite(weight) or float(weight) <= 0:
                raise ValueError(f"rate_weights maps layers 1..{len(self.counts)} to positive weights, got "
                                 f"{layer}: {weight}.")
            checked[int(layer)] = float(weight)
        object.__setattr__(self, "rate_weights", checked)

    def table(self, layer):
        """The integer frequency table [K] of layer `layer` (1-based), summing to `entropy.TOTAL`."""
        return entropy.static_frequencies(self.counts[layer - 1])

    def code_bias(self):
        """{layer: lambda ln p [K]} of the layers with a rate weight (the encoder's `code_bias`), or None."""
        if not self.rate_weights:
            return None
        out = {}
        for layer, weight in self.rate_weights.items():
            table = self.table(layer).astype(np.float64)
            out[layer] = (weight * np.log(table / table.sum())).astype(np.float32)
        return out

    @functools.cached_property  # every plan `auto` writes names it: computed once per prior
    def digest(self):
        """8 bytes naming the tables (SHA-256 of every layer's table): what a file's header records."""
        h = hashlib.sha256()
        for l in range(1, len(self.counts) + 1):
            h.update(np.ascontiguousarray(self.table(l), ">i8").tobytes())
        return h.digest()[:HASH_BYTES]

    def to_json(self):
        out = {"model": self.model, "weights_hash": self.weights_hash, "source": self.source,
               "counts": [[int(c) for c in layer] for layer in self.counts]}
        if self.rate_weights:
            out["rate_weights"] = {str(l): w for l, w in sorted(self.rate_weights.items())}
        return out

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
            weights = {int(l): float(w) for l, w in dict(data.get("rate_weights", {})).items()}
            return cls(str(data["model"]), str(data["weights_hash"]), counts, str(data.get("source", "")),
                       rate_weights=weights)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"Not a static prior file (expected model, weights_hash and counts per layer): "
                             f"{err}") from None


def uniform_prior(model_name, num_codes, weights_hash):
    """The prior of a model without a prior file: every count 0 (uniform tables)."""
    return StaticPrior(model_name, bytes(weights_hash).hex(), tuple(np.zeros(k, np.int64) for k in num_codes),
                       "uniform")


def read_prior(path, model_name, num_codes, weights_hash):
    """The static prior in the file `path` for weights `weights_hash` (8 bytes) of a model with codebooks of
    `num_codes`; the uniform prior when there is no such file.

    Raises `CodecError` for a damaged file, or one counted for other weights or another layout.
    """
    if path is None or not os.path.exists(path):
        return uniform_prior(model_name, num_codes, weights_hash)
    try:
        with open(path) as f:
            prior = StaticPrior.from_json(json.load(f))
    except (OSError, ValueError) as err:
        raise CodecError(f"Cannot read the static prior {path}: {err}. Refit it with `tfvq fit-priors`.") from None
    if prior.weights_hash != bytes(weights_hash).hex():
        raise CodecError(f"The static prior {path} was counted with other weights of {model_name!r} (hash "
                         f"{prior.weights_hash}, these weights {bytes(weights_hash).hex()}); refit it with "
                         "`tfvq fit-priors`, or delete it.")
    if tuple(len(c) for c in prior.counts) != tuple(num_codes):
        raise CodecError(f"The static prior {path} has tables of {[len(c) for c in prior.counts]} codes, but "
                         f"{model_name!r} has K = {list(num_codes)}; refit it with `tfvq fit-priors`.")
    return prior
