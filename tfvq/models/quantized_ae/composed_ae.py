"""The autoencoder of any quantizer, alone, residual, grouped or both: `ComposedAutoencoder`.

HQA layer 1's network (`QuantizedAutoencoder`) around `GroupedQuantizer(ResidualQuantizer(inner, S), G)`
(`tfvq.layers`), the inner quantizer named in the configuration: VQ (with its options: rotation trick,
cosine, low-dimensional lookup, k-means start), SimVQ, FSQ, LFQ or BSQ. S = G = 1 is the inner quantizer
itself (a one-stage residual stack is the quantizer, a one-group split is the whole vector), so one class
and one code layout carry every bottleneck of the comparison in `tfvq.experiments.quantizers`.

References:
  Zeghidour et al., SoundStream: An End-to-End Neural Audio Codec, 2021, §3.3, Algorithm 1 (residual
  quantization, quantizer dropout).
  Yang et al., HiFi-Codec: Group-residual Vector quantization for High Fidelity Audio Codec, 2023 (grouped
  residual VQ).
  Zhu, Li, Zhang, Chen, Addressing Representation Collapse in Vector Quantized Models with One Linear Layer,
  2024 (SimVQ).
  Zhao, Xiong, Krähenbühl, Image and Video Tokenization with Binary Spherical Quantization, 2024, §3 (BSQ).
"""

import math

import keras
import tensorflow as tf

from tfvq.code_layout import CodeLayout
from tfvq.layers.bsq import BinarySphericalQuantizer
from tfvq.layers.fsq import FiniteScalarQuantizer
from tfvq.layers.grouped import GroupedQuantizer
from tfvq.layers.lfq import LookupFreeQuantizer
from tfvq.layers.residual import ResidualQuantizer
from tfvq.layers.simvq import SimVectorQuantizer
from tfvq.layers.vq import VectorQuantizer
from tfvq.models.code_checks import check_codes
from tfvq.models.pixels import like_input, output_is_uint8
from tfvq.models.quantized_ae.quantized_autoencoder import QuantizedAutoencoder
from tfvq.models.recipes import positive_int
from tfvq.models.stateless_seeds import as_seed

__all__ = ["INNER_QUANTIZERS", "ComposedAutoencoder"]

INNER_QUANTIZERS = {"vq": VectorQuantizer, "simvq": SimVectorQuantizer, "fsq": FiniteScalarQuantizer,
                    "lfq": LookupFreeQuantizer, "bsq": BinarySphericalQuantizer}
"""The `quantizer={"name": ...}` names of `ComposedAutoencoder` and their layers."""

_SEEDED = ("vq", "simvq")
"""The inner quantizers with a seed (their codebook initialisers): the model's `seed` is theirs."""


def _inner_quantizer(spec, seed):
    """The inner layer of a `quantizer` spec: {"name": one of `INNER_QUANTIZERS`, its layer's arguments}."""
    if not isinstance(spec, dict) or spec.get("name") not in INNER_QUANTIZERS:
        raise ValueError(f"quantizer must be a dict whose 'name' is one of {', '.join(INNER_QUANTIZERS)} (the "
                         f"other keys: that layer's arguments), got {spec!r}.")
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items() if k != "name"}
    if "seed" in kwargs:
        raise ValueError("quantizer takes no 'seed': the model's seed is the quantizer's.")
    if spec["name"] in _SEEDED:
        kwargs["seed"] = seed
    try:
        return INNER_QUANTIZERS[spec["name"]](**kwargs, name="inner")
    except (TypeError, ValueError) as error:
        raise ValueError(f"quantizer {spec!r}: {error}") from None


@keras.saving.register_keras_serializable(package="tfvq")
class ComposedAutoencoder(QuantizedAutoencoder):
    """HQA layer 1's autoencoder with any quantizer, residual (S stages) and grouped (G groups).

    The encoder's output (`G * d` channels, d the inner quantizer's `code_dim`) goes through
    `GroupedQuantizer(ResidualQuantizer(inner, S), G)`: the channels are cut into G groups, each quantized by
    its own residual stack of S copies of the inner quantizer (SoundStream Algorithm 1; grouped: HiFi-Codec),
    and the decoder sees the sum of each group's code vectors, side by side. The inner quantizer is a spec,
    `{"name": "vq" | "simvq" | "fsq" | "lfq" | "bsq", ...its layer's arguments}`:

    * `vq`: `VectorQuantizer` (van den Oord et al. 2017; `rotation_trick` Fifty et al. 2024 §4, `distance`,
      `lookup_dim` ViT-VQGAN §3.2, `codebook_init="kmeans"`: k-means on each stage's first training batch,
      SoundStream §3.3, `expire_codes_below`, `orthogonal_weight`);
    * `simvq`: `SimVectorQuantizer` (Zhu et al. 2024, the codebook `C W` with `C` frozen);
    * `fsq`: `FiniteScalarQuantizer` (Mentzer et al. 2023 §3.1, `levels`);
    * `lfq`: `LookupFreeQuantizer` (MAGVIT-v2 §3.1, `code_dim`, its entropy penalty);
    * `bsq`: `BinarySphericalQuantizer` (Zhao et al. 2024 §3, eq. 8).

    Later residual stages of FSQ, LFQ and BSQ are scaled to the range their quantizer codes
    (`ResidualQuantizer`'s per-stage gain). The loss is the pixels' MSE plus every stage's loss.

    Codes (`CodeModel`): the S * G slots of the composed layout (stage-major: slot `s G + g` is stage s of group
    g), one code layer per slot, every one a grid of half the image's size of `num_codes` codes. The layout is
    cumulative, as `RVQAutoencoder`'s: layer j holds slot S G - j, so a file of layer l carries slots
    0..(S G - l) (layer 1 every slot, the finest image; layer S G the first slot alone). A file that holds only
    some groups of its last stage decodes the missing groups' stage as nothing (the code vectors a quantizer
    dropout would leave out), so every layer is a rate; the whole stages (layers S G - k G + 1) are the rates the
    quantizer dropout trains (`quantizer_dropout=True`, SoundStream §3.3).

    Args:
      image_shape: (H, W, C), H and W even.
      quantizer: the inner quantizer's spec (above); default FSQ (8, 5, 5, 5).
      num_quantizers: S, the residual stages (1: the inner quantizer alone).
      groups: G, the channel groups (1: one group).
      quantizer_dropout: quantizer dropout in training (needs S > 1).
      encoder_hidden, decoder_hidden: conv widths (HQA Table 10, layer 1: 16 and 16).
      seed: the quantizers' seed (VQ and SimVQ codebooks, k-means draws, dropout).
      **kwargs: passed to `keras.Model`.

    Example:
      >>> model = ComposedAutoencoder((32, 32, 1), quantizer={"name": "vq", "num_codes": 4, "code_dim": 8},
      ...                             num_quantizers=2, groups=2)
      >>> model.code_layout().num_layers, model.bits(), model.bits(3)
      (4, 2048, 1024)
    """

    quantizer_name = "composed"

    def __init__(self, image_shape, quantizer=None, num_quantizers=1, groups=1, quantizer_dropout=False,
                 encoder_hidden=16, decoder_hidden=16, seed=None, **kwargs):
        num_quantizers = positive_int("num_quantizers", num_quantizers)
        groups = positive_int("groups", groups)
        if quantizer_dropout and num_quantizers == 1:
            raise ValueError("quantizer_dropout needs num_quantizers > 1 (it drops later stages).")
        spec = {"name": "fsq", "levels": [8, 5, 5, 5]} if quantizer is None else quantizer
        self.seed = None if seed is None else int(seed)
        inner = _inner_quantizer(spec, self.seed)
        if inner.num_codes < 2:
            raise ValueError(f"quantizer {spec!r} has {inner.num_codes} code: one code carries nothing.")
        stack = GroupedQuantizer(ResidualQuantizer(inner, num_quantizers, dropout=bool(quantizer_dropout),
                                                   seed=self.seed, name="residual"), groups, name="quantizer")
        super().__init__(image_shape, stack.code_dim, encoder_hidden=encoder_hidden, decoder_hidden=decoder_hidden,
                         **kwargs)
        self.quantizer_spec = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.items()}
        self.num_quantizers, self.groups = num_quantizers, groups
        self.quantizer_dropout = bool(quantizer_dropout)
        self.num_codes, self.code_dim = int(inner.num_codes), int(stack.code_dim)
        self.stack = stack
        slots = num_quantizers * groups
        self._finish_build(stack, CodeLayout((self.grid,) * slots, (self.num_codes,) * slots, default_layer=1,
                                             cumulative=True))

    @property
    def quantizer_layer(self):
        return self.stack

    @property
    def slots(self):
        """S * G, the code layers at full rate."""
        return self.num_quantizers * self.groups

    def slots_sent(self, layer=None):
        """How many slots a file of layer `layer` carries: S G - layer + 1 (slots 0..S G - layer)."""
        return self.slots - self._layout.check_layer(layer) + 1

    def _stages_for(self, n):
        return math.ceil(n / self.groups)

    def _slot_codes(self, z, n):
        """int32 [B, h, w, n]: the first n slots of the stack's nearest codes of encoder outputs `z`."""
        return self.stack.nearest_codes(z, num_quantizers=self._stages_for(n))[..., :n]

    def encode(self, images, layer=None, stochastic=False, seed=None):
        """The codes of layers `layer`..S G: a list of int32 [B, h, w], layer `layer` (the last slot sent)
        first and layer S G (slot 0) last; one tensor for layer S G."""
        n = self.slots_sent(layer)
        as_seed(seed)
        x, _ = self.check_images(images)
        codes = self._slot_codes(self.encoder(x), n)
        return self._codes_out([codes[..., n - 1 - i] for i in range(n)])

    def slot_codes(self, codes, layer=None):
        """int32 [B, h, w, k G] of the codes of layers `layer`..S G (as `decode` takes them) in slot order,
        padded with -1 (nothing) to whole stages."""
        layer = self._layout.check_layer(layer)
        checked = check_codes(codes, self._layout, layer)
        n = len(checked)
        stacked = tf.stack(checked[::-1], axis=-1)
        pad = self._stages_for(n) * self.groups - n
        if pad:
            stacked = tf.concat([stacked, -tf.ones(tf.concat([tf.shape(stacked)[:-1], [pad]], 0), tf.int32)], -1)
        return stacked

    def decode(self, codes, layer=None, stochastic=False, seed=None, dtype="float32"):
        """Images from the codes of layers `layer`..S G: the stack's code vectors (`lookup`) through the decoder."""
        as_seed(seed)
        uint8 = output_is_uint8(dtype)
        return like_input(self.decoder(self.stack.lookup(self.slot_codes(codes, layer))), uint8)

    def tflite_encoder(self, layer=None):
        """The encoder for TFLite: float images in [0, 1] -> {"codes": int32 [B, h, w]} (layer S G) or
        {"codes_layer_l": ...} for the layers sent (the stack's `nearest_codes`, TFLite builtins)."""
        n = self.slots_sent(layer)
        sent = self._layout.layers_sent(layer)
        names = ["codes"] if len(sent) == 1 else [f"codes_layer_{l}" for l in sent]

        def encode(images):
            codes = self._slot_codes(self.encoder(tf.cast(images, tf.float32)), n)
            return dict(zip(names, [codes[..., n - 1 - i] for i in range(n)]))

        return encode

    def describe(self):
        return {**super().describe(), "inner_quantizer": self.quantizer_spec["name"],
                "num_quantizers": self.num_quantizers, "groups": self.groups, "code_dim": self.code_dim}

    def get_config(self):
        config = super().get_config()
        config.update(quantizer=dict(self.quantizer_spec), num_quantizers=self.num_quantizers, groups=self.groups,
                      quantizer_dropout=self.quantizer_dropout, seed=self.seed)
        return config
