"""Grouped quantization: the channels split into groups, each quantized by its own copy of a quantizer.

Product quantization (Jégou, Douze, Schmid 2011) over tfvq quantizers: with a `ResidualQuantizer` inside it
is grouped residual VQ (Yang et al., "HiFi-Codec: Group-residual Vector quantization for High Fidelity Audio
Codec", 2023).
"""

import keras
import tensorflow as tf

from tfvq.layers import ops
from tfvq.layers.composed import ComposedQuantizer, quantize_rows
from tfvq.layers.residual import ResidualQuantizer


@keras.saving.register_keras_serializable(package="tfvq")
class GroupedQuantizer(ComposedQuantizer):
    """Splits the last axis into `groups` equal groups, each quantized by its own copy of `quantizer`.

    An input of `G * d` channels (d = `quantizer.code_dim`) is cut into G groups of d consecutive channels;
    group g is quantized by `groups_[g]`, a copy of `quantizer` (its seeds, if any, moved by `g` times the
    seeds the quantizer uses, so the groups start from different codebooks), and the outputs are put back
    side by side. G codebooks of K codes give `K^G` combinations for the price of G lookups of K: product
    quantization. Each group's output keeps its own gradient (straight through for VQ).

    With a `ResidualQuantizer` inside (grouped residual VQ, HiFi-Codec), every group is a residual stack and
    `num_quantizers=k` at call time keeps the first k stages of every group. Quantizer dropout draws one depth
    per example for all groups (the first group's seed stream), so a dropped rate is dropped in every group.

    Codes (the composed quantizers' layout, `tfvq.layers.composed`): int32 `[..., S * G]`, stage-major (slot
    `s * G + g` is stage s of group g; S = 1 for a quantizer that is not residual), every slot in
    `0 .. num_codes - 1` (-1 for a stage dropped in training); the first k * G slots are the first k stages.

    Args:
      quantizer: the inner quantizer (a layer; its config is copied for every group): any tfvq quantizer with
        code vectors, or a `ResidualQuantizer` of one.
      groups: G, the number of groups (>= 1).
      **kwargs: passed to `keras.layers.Layer`.

    Call args:
      inputs: `[..., G * d]` floats.
      training: passed to the groups (EMA, resets, dropout).
      num_quantizers: with a residual inner quantizer, the stages kept in every group; else not allowed.

    Returns: a dict with `quantized` `[..., G * d]`, `codes` int32 `[..., k * G]`, `loss` (the sum of the
      groups' losses), `perplexities` `[k * G]` (per slot, in the codes' order) and `perplexity` (their mean).

    Example:
      >>> gvq = GroupedQuantizer(VectorQuantizer(num_codes=16, code_dim=4), groups=2)
      >>> gvq(tf.zeros([2, 5, 8]))["codes"].shape
      TensorShape([2, 5, 2])

    References:
      Jégou, Douze, Schmid, Product Quantization for Nearest Neighbor Search, 2011.
      Yang et al., HiFi-Codec: Group-residual Vector quantization for High Fidelity Audio Codec, 2023.
    """

    def __init__(self, quantizer, groups, **kwargs):
        super().__init__(**kwargs)
        if isinstance(groups, bool) or not float(groups).is_integer() or int(groups) < 1:
            raise ValueError(f"groups must be an integer >= 1, got {groups!r}.")
        inner = self._inner(quantizer)
        if isinstance(inner, GroupedQuantizer):
            raise ValueError("a GroupedQuantizer of a GroupedQuantizer is one GroupedQuantizer with more groups.")
        self.groups = int(groups)
        self.residual = isinstance(inner, ResidualQuantizer)
        self.quantizer_config = keras.saving.serialize_keras_object(inner)
        self.group_dim = int(inner.code_dim)
        self.code_dim = self.groups * self.group_dim
        self.num_codes = int(inner.num_codes)
        self.num_stages = inner.num_stages if self.residual else 1
        self.groups_ = self._copies(inner, self.groups, "group", getattr(inner, "seed_span", 1))

    @property
    def num_groups(self):
        return self.groups

    def _dim_words(self):
        return f"code_dim={self.code_dim} ({self.groups} groups of {self.group_dim})"

    def _parts(self):
        return self.groups_, self.group_dim

    def _depth(self, num_quantizers):
        if num_quantizers is None:
            return self.num_stages
        if not self.residual:
            raise ValueError("num_quantizers needs a residual inner quantizer (GroupedQuantizer(ResidualQuantizer)).")
        return self.groups_[0]._check_depth(num_quantizers)

    def _slots(self, per_group):
        """`[N, k]` or `[N]` per group -> `[N, k * G]`, stage-major."""
        per_group = [c if self.residual else c[..., None] for c in per_group]
        stacked = tf.stack(per_group, axis=-1)  # [..., k, G]
        return tf.reshape(stacked, tf.concat([tf.shape(stacked)[:-2], [-1]], axis=0))

    def _per_group(self, codes):
        """`[..., k * G]` -> G tensors `[..., k]` (residual) or `[...]`."""
        codes, depth = self._checked_slots(codes, self.groups)
        split = tf.reshape(codes, tf.concat([tf.shape(codes)[:-1], [depth, self.groups]], axis=0))
        return [split[..., g] if self.residual else split[..., 0, g] for g in range(self.groups)]

    def code_vectors(self, codes):
        """The code vectors `[..., G * d]` of `codes` `[..., k * G]` in the work dtype: each group's, side by side."""
        work = self._work_dtype()
        parts = [tf.cast(group.code_vectors(c), work) for group, c in zip(self.groups_, self._per_group(codes))]
        return tf.concat(parts, axis=-1)

    def nearest_codes(self, inputs, num_quantizers=None):
        """int32 codes `[..., k * G]` of `inputs`: each group's `nearest_codes` (the forward pass's codes at
        inference, without losses, statistics or updates)."""
        depth = self._depth(num_quantizers)
        _, flat, leading = self._checked(inputs)
        kw = {"num_quantizers": depth} if self.residual else {}
        parts = tf.split(flat, self.groups, axis=-1)
        codes = self._slots([group.nearest_codes(x, **kw) for group, x in zip(self.groups_, parts)])
        return tf.reshape(codes, tf.concat([leading, [depth * self.groups]], axis=0))

    def call(self, inputs, training=None, num_quantizers=None):
        out, _ = self.quantize_with_rows(inputs, training, num_quantizers)
        return out

    def quantize_with_rows(self, inputs, training=None, num_quantizers=None):
        """The forward pass (`call`), and the `[N, G * d]` code vectors in the work dtype."""
        depth = self._depth(num_quantizers)
        z, flat, leading = self._checked(inputs)
        depths = None
        if self.residual and training and self.groups_[0].dropout:
            depths = self.groups_[0]._draw_depths(z, leading, depth)
        outs, rows = [], []
        for group, x in zip(self.groups_, tf.split(flat, self.groups, axis=-1)):
            if self.residual:
                out, r = group.quantize_with_rows(x, training, depth, depths)
            else:
                out, r = quantize_rows(group, x, training)
            outs.append(out)
            rows.append(tf.cast(r, flat.dtype))
        quantized = tf.concat([tf.cast(o["quantized"], self.compute_dtype) for o in outs], axis=-1)
        if self.residual:
            perplexities = tf.reshape(tf.stack([o["perplexities"] for o in outs], axis=-1), [-1])
        else:
            perplexities = tf.stack([ops.usage_perplexity(o["codes"], self.num_codes) for o in outs])
        out = {
            "quantized": tf.reshape(quantized, tf.concat([leading, [self.code_dim]], axis=0)),
            "codes": tf.reshape(self._slots([o["codes"] for o in outs]), tf.concat([leading, [depth * self.groups]], 0)),
            "loss": tf.add_n([o["loss"] for o in outs]),
            "perplexity": tf.reduce_mean(perplexities),
            "perplexities": perplexities,
        }
        return out, tf.concat(rows, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update({"quantizer": self.quantizer_config, "groups": self.groups})
        return config
