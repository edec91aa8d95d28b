"""What a discrete model's codes look like (`CodeLayout`), NumPy only.

The vocabulary of the model contract (`tfvq.models.contract.CodeModel.code_layout`) that the codec's TensorFlow-free
half needs too: a TFLite decoder (`tfvq.codec.lite_model.LiteModel`) answers `code_layout()` with one read from
its manifest, so decoding a file never imports TensorFlow.
"""

import dataclasses
import math
from typing import Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class CodeLayout:
    """What a discrete model's codes look like.

    Attributes:
      grids: the (h, w) code grid of every layer, layer 1 (finest) first.
      num_codes: K of every layer.
      default_layer: the layer `encode` and `decode` use when none is given.
      cumulative: False when the codes of layer l alone decode to an image
        (HQA: decoding goes down the stack, Algorithm 3), True when layer l's
        codes need those of every layer above (RRVQ-VAE: the prior of layer l
        is conditioned on z_>l, eq. 3); `encode(x, l)` then gives the codes
        of layers l..L.
    """

    grids: Tuple[Tuple[int, int], ...]
    num_codes: Tuple[int, ...]
    default_layer: int
    cumulative: bool

    @property
    def num_layers(self):
        return len(self.grids)

    def check_layer(self, layer):
        """`layer` as an int in 1..L (None: `default_layer`); a `ValueError` otherwise."""
        if layer is None:
            return self.default_layer
        if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, (int, np.integer)) \
                or not 1 <= int(layer) <= self.num_layers:
            raise ValueError(f"layer must be an integer in 1..{self.num_layers} (layers are numbered from 1, "
                             f"the finest first), got {layer!r}.")
        return int(layer)

    def layers_sent(self, layer=None):
        """The layers whose codes `encode(x, layer)` gives, in order (1-based)."""
        layer = self.check_layer(layer)
        return tuple(range(layer, self.num_layers + 1)) if self.cumulative else (layer,)

    def bits(self, layer=None):
        """Fixed-rate bits per image of `encode(x, layer)`: sum over the layers sent of h w ceil(log2 K)."""
        return sum(h * w * max(1, math.ceil(math.log2(self.num_codes[l - 1])))
                   for l in self.layers_sent(layer) for h, w in [self.grids[l - 1]])

    def as_dict(self):
        """The layout as JSON-able data (`from_dict` reads it back)."""
        return {"grids": [list(g) for g in self.grids], "num_codes": list(self.num_codes),
                "default_layer": self.default_layer, "cumulative": self.cumulative}

    @classmethod
    def from_dict(cls, data):
        """The layout `as_dict` wrote."""
        return cls(tuple((int(h), int(w)) for h, w in data["grids"]), tuple(int(k) for k in data["num_codes"]),
                   int(data["default_layer"]), bool(data["cumulative"]))


def check_image_shape(image_shape, own_shape, stride):
    """`image_shape` as a tuple (H, W, C) a fully convolutional model of `own_shape` and top-layer `stride` codes:
    H and W positive multiples of `stride`, C the model's; a `ValueError` saying what fits otherwise (the check of
    `CodeModel.with_image_shape` and of a TFLite bundle's, `LiteModel.with_image_shape`)."""
    shape = tuple(int(d) for d in image_shape)
    channels = int(own_shape[2])
    if len(shape) != 3 or shape[2] != channels or min(shape[:2]) < 1 or shape[0] % stride or shape[1] % stride:
        raise ValueError(f"Expected an image shape (H, W, {channels}) with H and W positive multiples of the model's "
                         f"stride {stride}, got {list(shape)}; pad the image first.")
    return shape
