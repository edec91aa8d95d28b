"""Quantizers made of other quantizers: the shared base of `ResidualQuantizer` and `GroupedQuantizer`.

A composed quantizer holds copies of one inner quantizer -- any of `VectorQuantizer` (with its options),
`SimVectorQuantizer`, `FiniteScalarQuantizer`, `LookupFreeQuantizer`, `BinarySphericalQuantizer`, or (inside a
`GroupedQuantizer`) a `ResidualQuantizer` -- each copy built from the inner one's config (its `seed`, if any,
offset so the copies start from different codebooks). It saves the inner quantizer's config, not the layer.

The code layout of every composed quantizer (one layout, so the codec, the TFLite decoders and the model
contract take any of them without special cases):

* `codes` are int32 `[..., S * G]`: S stages (`num_stages`; 1 for a quantizer that is not residual), G groups
  (`num_groups`; 1 for a quantizer that is not grouped), **stage-major**: slot `s * G + g` is stage s of
  group g. So `codes[..., :k * G]` are the first k stages of every group: a prefix is a lower rate, and
  `num_quantizers=k` at call time gives exactly that prefix.
* Every slot takes `num_codes` values, `0 .. num_codes - 1`; -1 marks a stage that quantizer dropout skipped
  (training only; `lookup` adds nothing for it).
* `code_slots` is S * G; `lookup(codes)` takes `[..., k * G]` for any k in 1..S and gives `[..., code_dim]`.

What the inner quantizers share with the composed ones (the protocol `quantize_rows` relies on): `code_dim`,
`num_codes`, `call(inputs, training)` returning a dict with `quantized`, `codes`, `loss`; `code_vectors(codes)`
(the code vectors in float32 under mixed precision) and `nearest_codes(inputs)`; a quantizer whose forward pass
updates its codebook (EMA, resets) gives its rows from that pass by `quantize_with_rows`.
"""

import keras
import tensorflow as tf

from tfvq.layers import ops
from tfvq.layers.precision import logits_dtype


def quantize_rows(quantizer, inputs, training=None):
    """`(out, rows)`: a tfvq quantizer's forward pass on `[N, D]` `inputs` and the `[N, D]` code vectors it chose.

    `rows` are in float32 under mixed precision (`code_vectors`), with no gradient path; a quantizer with
    `quantize_with_rows` (the codebook quantizers, whose forward pass may move the codebook) gives them from its
    own pass."""
    if hasattr(quantizer, "quantize_with_rows"):
        return quantizer.quantize_with_rows(inputs, training)
    out = quantizer(inputs, training=training)
    return out, quantizer.code_vectors(out["codes"])


def _offset_seeds(config, offset):
    """A quantizer's config with every integer `seed` in it (its own, its inner quantizer's) moved by `offset`."""
    config = dict(config)
    if config.get("seed") is not None:
        config["seed"] = int(config["seed"]) + offset
    inner = config.get("quantizer")
    if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
        config["quantizer"] = dict(inner, config=_offset_seeds(inner["config"], offset))
    return config


class ComposedQuantizer(keras.layers.Layer):
    """The shared base of `ResidualQuantizer` and `GroupedQuantizer` (not used directly).

    It turns the `quantizer` argument (a layer, or the dict of a saved config) into the inner quantizer's
    serialised config and `count` copies of it (`_copies`), checks inputs and codes, and answers the code
    layout (`num_stages`, `num_groups`, `code_slots`; see the module docstring).
    """

    num_stages = 1
    num_groups = 1

    @property
    def code_slots(self):
        """S * G, the last axis of `codes` at full depth (see the module docstring)."""
        return self.num_stages * self.num_groups

    @staticmethod
    def _inner(quantizer):
        """The inner quantizer as a layer (deserialised from a config dict if need be), after a type check."""
        if isinstance(quantizer, dict):
            quantizer = keras.saving.deserialize_keras_object(quantizer)
        if not isinstance(quantizer, keras.layers.Layer) or not hasattr(quantizer, "code_vectors"):
            raise TypeError(
                "quantizer must be a tfvq quantizer layer with code vectors (VectorQuantizer, SimVectorQuantizer, "
                "FiniteScalarQuantizer, LookupFreeQuantizer, BinarySphericalQuantizer, ResidualQuantizer), got "
                f"{quantizer!r}."
            )
        return quantizer

    def _copies(self, quantizer, count, prefix, seed_stride=1):
        """`count` layers built from `quantizer`'s config, named `{prefix}_{i}`, in this layer's dtype policy,
        copy i with its seeds moved by `i * seed_stride`."""
        config = quantizer.get_config()
        return [
            type(quantizer).from_config(
                dict(_offset_seeds(config, i * seed_stride), name=f"{prefix}_{i}", dtype=self.dtype_policy)
            )
            for i in range(count)
        ]

    def _parts(self):
        """`(layers, width)`: the inner copies and the last dimension each one takes (subclasses say)."""
        raise NotImplementedError

    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] is not None:
            ops.check_last_dim(self, input_shape[-1], self.code_dim, self._dim_words())
        layers, width = self._parts()
        for layer in layers:
            if not layer.built:
                layer.build((None, width))
        self.built = True

    def _work_dtype(self):
        """float32 under a 16-bit policy (residual chains and sums), else the compute dtype."""
        return logits_dtype(self.compute_dtype)

    def _dim_words(self):
        return f"code_dim={self.code_dim}"

    def _checked(self, inputs):
        """`(z, flat, leading)`: inputs in the compute dtype, `[N, D]` in the work dtype, the leading shape."""
        z = tf.cast(ops.checked_input(inputs, self, self.code_dim, self._dim_words()), self.compute_dtype)
        leading = tf.shape(z)[:-1]
        return z, tf.reshape(tf.cast(z, self._work_dtype()), [-1, self.code_dim]), leading

    def _checked_slots(self, codes, per_depth):
        """int32 `codes` whose last axis is k * `per_depth` for some k in 1..`num_stages`; returns `(codes, k)`."""
        codes = ops.checked_codes(codes)
        slots = codes.shape[-1] if codes.shape.rank else None
        if slots is None or slots % per_depth or not 1 <= slots // per_depth <= self.num_stages:
            raise ValueError(
                f"codes must have a known trailing axis of k * {per_depth} slots for k in 1..{self.num_stages} "
                f"stages (shape [..., k * {per_depth}], stage-major), got shape {codes.shape}."
            )
        return codes, slots // per_depth

    def lookup(self, codes):
        """The code vectors `[..., code_dim]` of `codes` `[..., k * G]`, in the compute dtype (see
        `code_vectors`)."""
        return tf.cast(self.code_vectors(codes), self.compute_dtype)
