"""Residual quantization over any tfvq quantizer: `ResidualQuantizer`.

Zeghidour et al., "SoundStream: An End-to-End Neural Audio Codec", 2021, §3.3 and Algorithm 1 (residual
VQ and quantizer dropout), generalised from VQ stages to the bounded implicit codebooks (FSQ, LFQ, BSQ) by a
per-stage scale. `tfvq.layers.rvq.ResidualVectorQuantizer` is this layer over `VectorQuantizer`.
"""

import keras
import numpy as np
import tensorflow as tf

from tfvq.layers import ops
from tfvq.layers.composed import ComposedQuantizer, quantize_rows


@keras.saving.register_keras_serializable(package="tfvq")
class ResidualQuantizer(ComposedQuantizer):
    """Residual quantization with quantizer dropout (SoundStream, Zeghidour et al. 2021, §3.3, Algorithm 1).

    Stage i (a copy of `quantizer`) quantizes the residual `r_i` scaled by `g^i` to its code vector `q_i`, and
    `r_{i+1} = r_i - q_i / g^i`; the output is `sum_i q_i / g^i`. Each stage adds `log2(num_codes)` bits per
    vector, so the first k stages (`num_quantizers=k` at call time) give k rates from one model. Stage 0 is the
    inner quantizer itself on `z` (so one stage is exactly that quantizer), and `r_0 = t(z)` is what its output
    approximates (`residual_target`): `z` for VQ, SimVQ and LFQ, FSQ's bounded value `bound(z) / (L // 2)`,
    BSQ's unit vector `z / ||z||`.

    The rule for bounded quantizers: a fixed per-stage scale `g^i` (per channel). A VQ codebook learns the
    scale of the residuals it is given, so VQ and SimVQ stages take `g = 1` (plain SoundStream). The implicit
    codebooks of FSQ, LFQ and BSQ have a fixed range: unscaled, stage 2 of a residual FSQ would see residuals
    within half a grid step of 0 and round them all to 0. So each later stage's input is scaled up to the
    range its quantizer codes and its code vector scaled back down by the same factor. The scale is fixed, not
    learned (nothing to train or save, the same at every rate, and a NumPy oracle reproduces it), and set by
    the inner quantizer (`residual_gain`), as what brings the largest residual a stage leaves back to the
    range the next one codes:

    * FSQ: `g = 2 ((L - 1) // 2) + 1` per channel (L for odd L): rounding leaves half a step, and `g` half
      steps fill the symmetric part of the grid (the field's residual FSQ scales by `(L - 1)^k`; a factor of
      L uses the outer levels' rounding cells too). Later stages also pass the scaled residual through
      `input_for`, the inverse of FSQ's `tanh` bound, so they round it uniformly: the bound keeps an encoder's
      output in range at stage 0, while on an in-range residual its curvature would round off-grid (with the
      `tanh` at every stage the error stops falling after 3 stages on uniform inputs). The squared error then
      falls by about `g^2` per stage (L = 2 cannot refine: its grid {-1, 0} has no level on one side of 0;
      use L >= 3).
    * LFQ: `g = 2` (codes +-1: an input in `[-2, 2]` is left within 1 of its code; stage k adds `+-2^-k`, a
      successive approximation whose error bound halves with each stage).
    * BSQ: `g = 1 / sqrt(1 - 2/pi) ~ 1.66` (its input is projected to the unit sphere, so only the output
      scale matters: the norm a sign code best matches shrinks by ~0.60 per stage; see
      `BinarySphericalQuantizer.residual_gain`).

    `gain=` overrides the quantizer's (one number for every channel). The stages' losses are summed as each
    stage gives it, in its own (scaled) units, as residual LFQ and FSQ do in the field.

    Quantizer dropout (§3.3, "bitrate scalability"): with `dropout=True`, in training each example (index 0 of
    the inputs; all its positions alike) uses only the first `n_q` stages, `n_q` drawn uniformly from `1..k`
    (k = `num_quantizers` of the call), so every prefix of the stack is trained to be a good quantizer. The
    stages an example does not use see none of its vectors (their losses, EMA updates and code usage are over
    the examples that reach them) and its codes there are -1. The depth is drawn from the layer's seed stream
    (`seed`), folded with the replica id under `tf.distribute` (`ops.replica_uniform`). Inference uses all k
    stages.

    Gradients: stage i's input is `g^i (t(z) - sg[q_0 + ... + q_{i-1} / g^{i-1}])`, so every stage's own loss
    (commitment, entropy) reaches the encoder and each codebook learns only from its own loss (or EMA). The
    output's value is exactly the sum of the code vectors; its gradient is that of stage 0's output
    (`sum_i q_i / g^i + (q_0~ - sg[q_0~])`, with `q_0~` stage 0's `quantized`): straight through for VQ (as
    SoundStream), FSQ's bound derivative, BSQ's projection. The residual chain and the sum are formed in
    float32 under a mixed (16-bit) policy from the stages' float32 code vectors (`code_vectors`); each stage
    searches in the compute dtype.

    Codes: int32 `[..., k]`, stage i in `[..., i]` (the composed quantizers' layout, `tfvq.layers.composed`,
    with one group); every stage has `num_codes` codes.

    Args:
      quantizer: the inner quantizer (a layer; its config is copied for every stage, its seed, if any, moved
        by i for stage i). A `ResidualQuantizer` or `GroupedQuantizer` is refused: a grouped residual is
        `GroupedQuantizer(ResidualQuantizer(...))`.
      num_quantizers: the number of stages, N_q.
      dropout: quantizer dropout in training (§3.3).
      gain: None (the quantizer's `residual_gain`; 1 if it has none) or a number > 0: stage i's input is
        multiplied by `gain^i`, its code vector divided by it.
      seed: integer seed of the dropout draws.
      **kwargs: passed to `keras.layers.Layer`.

    Call args:
      inputs: `[..., D]` floats.
      training: EMA updates, resets and dropout run in training only.
      num_quantizers: use only the first k stages (a lower rate); default all.

    Returns: a dict with `quantized` `[..., D]`, `codes` int32 `[..., k]` (-1 for a stage skipped by quantizer
      dropout), `loss` (the sum of the stages' losses), `perplexities` `[k]` (per stage, of the codes it
      assigned over the global batch) and `perplexity` (their mean).

    Example:
      >>> rfsq = ResidualQuantizer(FiniteScalarQuantizer(levels=(5, 5, 5)), num_quantizers=4)
      >>> out = rfsq(tf.random.uniform([2, 7, 3], -1.0, 1.0), num_quantizers=3)
      >>> out["codes"].shape
      TensorShape([2, 7, 3])

    References:
      Zeghidour et al., SoundStream: An End-to-End Neural Audio Codec, 2021, §3.3, Algorithm 1 (residual VQ,
      quantizer dropout).
    """

    def __init__(self, quantizer, num_quantizers, dropout=False, gain=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_quantizers, bool) or not float(num_quantizers).is_integer() or int(num_quantizers) < 1:
            raise ValueError(f"num_quantizers must be an integer >= 1 (the number of stages), got {num_quantizers!r}.")
        inner = self._inner(quantizer)
        if isinstance(inner, ComposedQuantizer):
            raise ValueError(
                f"ResidualQuantizer stacks one quantizer, got a {type(inner).__name__}; for grouped residual "
                "quantization use GroupedQuantizer(ResidualQuantizer(...), groups) (the same code layout)."
            )
        if gain is not None and not float(gain) > 0.0:
            raise ValueError(f"gain must be None or a number > 0, got {gain!r}.")
        self.num_quantizers = int(num_quantizers)
        self.dropout = bool(dropout)
        self.gain = None if gain is None else float(gain)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.quantizer_config = keras.saving.serialize_keras_object(inner)
        self.code_dim = int(inner.code_dim)
        self.num_codes = int(inner.num_codes)
        base = getattr(inner, "residual_gain", 1.0) if gain is None else gain
        self._gain = np.broadcast_to(np.asarray(base, np.float64), (self.code_dim,))
        self.stages = self._copies(inner, self.num_quantizers, "stage")

    @property
    def num_stages(self):
        return self.num_quantizers

    @property
    def seed_span(self):
        """How many consecutive seeds the stages use (a `GroupedQuantizer` moves each group's by this)."""
        return self.num_quantizers

    def _parts(self):
        return self.stages, self.code_dim

    def _check_depth(self, num_quantizers):
        if num_quantizers is None:
            return self.num_quantizers
        if (
            isinstance(num_quantizers, bool)
            or not isinstance(num_quantizers, int)
            or not 1 <= num_quantizers <= self.num_quantizers
        ):
            raise ValueError(
                f"num_quantizers must be a Python int in [1, {self.num_quantizers}] (the stages of this "
                f"layer), got {num_quantizers!r}."
            )
        return num_quantizers

    def _stage_gain(self, i, dtype):
        """Stage i's per-channel scale `g^i` as a `[D]` constant, or None where it is 1 (VQ, and stage 0)."""
        gain = self._gain**i
        return None if np.all(gain == 1.0) else tf.constant(gain, dtype)

    def _target(self, flat):
        """`t(z)` `[N, D]`, what the stack approximates: the quantizer's `residual_target`, else `z` itself."""
        stage = self.stages[0]
        return tf.cast(stage.residual_target(flat), flat.dtype) if hasattr(stage, "residual_target") else flat

    def _stage_input(self, i, residual, gain):
        """Stage i's (i >= 1) input: the residual times `g^i`, through the quantizer's `input_for` if it has one."""
        x = residual if gain is None else residual * gain
        stage = self.stages[i]
        return stage.input_for(x) if hasattr(stage, "input_for") else x

    # ----------------------------------------------------------------- lookup
    def code_vectors(self, codes):
        """`sum_i q_i / g^i` `[..., D]` for int32 `codes` `[..., k]`, k <= num_quantizers, in the work dtype.

        Stage i's code is `codes[..., i]`; a negative code (a stage skipped by quantizer dropout) adds
        nothing. Gives exactly the `quantized` of the call that produced `codes` (at inference, or in training
        before any codebook update)."""
        codes, depth = self._checked_slots(codes, 1)
        work = self._work_dtype()
        total = tf.zeros(tf.concat([tf.shape(codes)[:-1], [self.code_dim]], axis=0), work)
        for i in range(depth):
            stage_codes = codes[..., i]
            rows = tf.cast(self.stages[i].code_vectors(tf.maximum(stage_codes, 0)), work)
            gain = self._stage_gain(i, work)
            rows = rows if gain is None else rows / gain
            kept = tf.expand_dims(stage_codes >= 0, -1)  # not [..., None]: no TFLite op at unknown sizes
            total = total + tf.where(kept, rows, tf.zeros_like(rows))
        return total

    def nearest_codes(self, inputs, num_quantizers=None):
        """int32 codes `[..., k]` of `inputs` `[..., D]`: the forward pass's codes at inference (each stage's
        `nearest_codes` on the scaled residual), without losses, statistics or updates."""
        depth = self._check_depth(num_quantizers)
        _, flat, leading = self._checked(inputs)
        residual = self._target(flat)
        codes = []
        for i in range(depth):
            gain = self._stage_gain(i, residual.dtype)
            stage = self.stages[i]
            stage_codes = stage.nearest_codes(flat if i == 0 else self._stage_input(i, residual, gain))
            rows = tf.cast(stage.code_vectors(stage_codes), residual.dtype)
            residual = residual - (rows if gain is None else rows / gain)
            codes.append(stage_codes)
        return tf.reshape(tf.stack(codes, axis=-1), tf.concat([leading, [depth]], axis=0))

    # ------------------------------------------------------------------- call
    def _draw_depths(self, z, leading, depth):
        """`[N]` int32 depths in `1..depth`, one per example (axis 0), repeated over its positions."""
        rank = z.shape.rank
        if rank is None:
            raise ValueError("quantizer dropout needs inputs of known rank.")
        examples = tf.shape(z)[0] if rank >= 2 else 1
        seed = tf.cast(self.seed_generator.next(), tf.int32)
        u = ops.replica_uniform(tf.reshape(examples, [1]), seed, tf.float32)
        depths = tf.minimum(1 + tf.cast(tf.floor(u * depth), tf.int32), depth)
        per_example = tf.reshape(depths, [-1] + [1] * (rank - 2)) if rank >= 2 else tf.reshape(depths, [])
        return tf.reshape(tf.broadcast_to(per_example, leading), [-1])

    def call(self, inputs, training=None, num_quantizers=None):
        out, _ = self.quantize_with_rows(inputs, training, num_quantizers)
        return out

    def quantize_with_rows(self, inputs, training=None, num_quantizers=None, depths=None):
        """The forward pass (`call`), and the `[N, D]` sums of the code vectors in the work dtype.

        Args:
          inputs, training, num_quantizers: as `call`.
          depths: None, or `[N]` int32 depths in `1..k` for the N flattened inputs (a `GroupedQuantizer`
            draws one set for all its groups); by default drawn here when training with dropout.
        """
        depth = self._check_depth(num_quantizers)
        z, flat, leading = self._checked(inputs)
        work = flat.dtype
        n = tf.shape(flat)[0]
        if depths is None and training and self.dropout:
            depths = self._draw_depths(z, leading, depth)

        residual, total = self._target(flat), tf.zeros_like(flat)
        codes, losses, perplexities = [], [], []
        first = None
        for i in range(depth):
            stage = self.stages[i]
            gain = self._stage_gain(i, work)
            x = flat if i == 0 else self._stage_input(i, residual, gain)
            if depths is None or i == 0:  # every example reaches stage 0
                out, rows = quantize_rows(stage, x, training)
                stage_codes = tf.reshape(out["codes"], [-1])
                rows = tf.cast(rows, work)
            else:
                active = tf.where(depths > i)  # [M, 1] rows that reach stage i
                out, rows = quantize_rows(stage, tf.gather_nd(x, active), training)
                rows = tf.scatter_nd(active, tf.cast(rows, work), tf.shape(flat, out_type=tf.int64))
                stage_codes = tf.tensor_scatter_nd_update(tf.fill([n], -1), active, tf.reshape(out["codes"], [-1]))
            if i == 0:
                first = tf.cast(tf.reshape(out["quantized"], [-1, self.code_dim]), work)
            rows = tf.stop_gradient(rows if gain is None else rows / gain)
            total = total + rows
            residual = residual - rows
            codes.append(stage_codes)
            losses.append(out["loss"])
            perplexities.append(ops.usage_perplexity(out["codes"], stage.num_codes))

        # Value: the sum of the code vectors exactly; gradient: stage 0's (straight through for VQ).
        quantized = tf.cast(total + (first - tf.stop_gradient(first)), self.compute_dtype)
        perplexities = tf.stack(perplexities)
        out = {
            "quantized": tf.reshape(quantized, tf.concat([leading, [self.code_dim]], axis=0)),
            "codes": tf.reshape(tf.stack(codes, axis=-1), tf.concat([leading, [depth]], axis=0)),
            "loss": tf.add_n(losses),
            "perplexity": tf.reduce_mean(perplexities),
            "perplexities": perplexities,
        }
        return out, total

    # ----------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "quantizer": self.quantizer_config,
                "num_quantizers": self.num_quantizers,
                "dropout": self.dropout,
                "gain": self.gain,
                "seed": self.seed,
            }
        )
        return config
