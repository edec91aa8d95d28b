"""Residual vector quantization (RVQ): a stack of `VectorQuantizer`s, each quantizing what the last left.

Zeghidour et al., "SoundStream: An End-to-End Neural Audio Codec", 2021,
§3.3 and Algorithm 1.
"""

import keras
import tensorflow as tf

from tfvq.layers import ops
from tfvq.layers.precision import logits_dtype
from tfvq.layers.vq import VectorQuantizer


@keras.saving.register_keras_serializable(package="tfvq")
class ResidualVectorQuantizer(keras.layers.Layer):
    """Residual VQ with quantizer dropout (SoundStream, Zeghidour et al. 2021, §3.3).

    SoundStream Algorithm 1: with `r_1 = z`, stage i (a `VectorQuantizer`
    with its own codebook of `num_codes` codes) quantizes the residual
    `r_i` to its nearest code `q_i`, and `r_{i+1} = r_i - q_i`; the output is
    `q_1 + ... + q_k`. Each stage adds `log2(num_codes)` bits per vector, so
    the first k stages give k rates from one model.

    Quantizer dropout (§3.3, "bitrate scalability"): with `dropout=True`, in
    training each example (index 0 of the inputs; all its positions alike)
    uses only the first `n_q` stages, `n_q` drawn uniformly from
    `1..k` (k = `num_quantizers` of the call), so every prefix of the stack is
    trained to be a good quantizer and the model serves every rate. The
    stages an example does not use see none of its vectors: their losses,
    EMA updates and code usage are over the examples that reach them. The
    depth is drawn from the layer's seed stream (`seed`), folded with the
    replica id under `tf.distribute` (`ops.replica_uniform`). Inference uses
    all k stages.

    Gradients: the output passes its gradient straight through to the input
    (its value is exactly the sum of the code vectors: `sum_i q_i + (z -
    sg[z])`). Each stage's input is `r_i = z - sg[q_1 + ... + q_{i-1}]`, so
    every stage's commitment loss reaches the encoder and each codebook learns
    only from its own codebook loss (or EMA). The residual chain and the sum
    are formed in float32 under a mixed (16-bit) policy, from the float32
    codebooks; each stage's search runs in the compute dtype as in
    `VectorQuantizer`.

    Args:
      num_quantizers: the number of stages, N_q.
      num_codes: K, the codes of each stage.
      code_dim: D.
      commitment_cost: beta of each stage (VQ-VAE eq. 3).
      ema: learn each codebook by EMA instead of gradients (SoundStream
        trains its codebooks by EMA, as VQ-VAE-2).
      dropout: quantizer dropout in training (§3.3).
      decay, epsilon: the stages' EMA decay and smoothing.
      expire_codes_below, reset_window: dead-code expiry in each stage (see
        `VectorQuantizer`; SoundStream replaces codes unused for several
        batches by random input frames).
      seed: integer seed: stage i's codebook initialiser and reset stream get
        `seed + i`, the dropout draws `seed`.
      **kwargs: passed to `keras.layers.Layer`.

    The stages use the Euclidean distance and the straight-through gradient:
    a cosine search would normalise the residuals, whose norm is what later
    stages refine, and the rotation trick is defined for one code vector, not
    for a sum.

    Call args:
      inputs: `[..., D]` floats.
      training: EMA updates, resets and dropout run in training only.
      num_quantizers: use only the first k stages (a lower rate); default all.

    Returns: a dict with `quantized` `[..., D]`, `codes` int32 `[..., k]`
      (stage i in `[..., i]`; -1 for a stage that quantizer dropout skipped
      for that example), `loss` (the sum of the stages' losses),
      `perplexities` `[k]` (per stage, of the codes it assigned over the
      global batch) and `perplexity` (their mean).

    Example:
      >>> rvq = ResidualVectorQuantizer(num_quantizers=4, num_codes=16, code_dim=8)
      >>> out = rvq(tf.zeros([2, 5, 8]), num_quantizers=3)
      >>> out["codes"].shape
      TensorShape([2, 5, 3])

    References:
      Zeghidour et al., SoundStream: An End-to-End Neural Audio Codec, 2021,
      §3.3, Algorithm 1 (residual VQ, quantizer dropout, codebook expiry).
    """

    def __init__(
        self,
        num_quantizers,
        num_codes,
        code_dim,
        commitment_cost=0.25,
        ema=False,
        dropout=False,
        decay=0.99,
        epsilon=1e-5,
        expire_codes_below=None,
        reset_window=20,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(num_quantizers, bool) or not float(num_quantizers).is_integer() or int(num_quantizers) < 1:
            raise ValueError(f"num_quantizers must be an integer >= 1 (the number of stages), got {num_quantizers!r}.")
        self.num_quantizers = int(num_quantizers)
        self.num_codes = int(num_codes)
        self.code_dim = int(code_dim)
        self.commitment_cost = float(commitment_cost)
        self.ema = bool(ema)
        self.dropout = bool(dropout)
        self.decay = float(decay)
        self.epsilon = float(epsilon)
        self.expire_codes_below = None if expire_codes_below is None else float(expire_codes_below)
        self.reset_window = int(reset_window)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.stages = [
            VectorQuantizer(
                self.num_codes,
                self.code_dim,
                commitment_cost=self.commitment_cost,
                ema=self.ema,
                decay=self.decay,
                epsilon=self.epsilon,
                expire_codes_below=self.expire_codes_below,
                reset_window=self.reset_window,
                seed=None if seed is None else int(seed) + i,
                dtype=self.dtype_policy,
                name=f"stage_{i}",
            )
            for i in range(self.num_quantizers)
        ]

    # ------------------------------------------------------------------ build
    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] is not None:
            ops.check_last_dim(self, input_shape[-1], self.code_dim)
        for stage in self.stages:
            if not stage.built:
                stage.build((None, self.code_dim))
        self.built = True

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

    def _work_dtype(self):
        """float32 under a 16-bit policy (the residual chain), else the compute dtype."""
        return logits_dtype(self.compute_dtype)

    # ----------------------------------------------------------------- lookup
    def lookup(self, codes):
        """The sum of the stages' code vectors `[..., D]` for int32 `codes` `[..., k]`, k <= num_quantizers.

        Stage i's code is `codes[..., i]`; a negative code (a stage skipped by
        quantizer dropout) adds nothing. Gives exactly the `quantized` of the
        call that produced `codes` (at inference, or in training before any
        codebook update)."""
        codes = ops.checked_codes(codes)
        depth = codes.shape[-1] if codes.shape.rank else None
        if depth is None or not 1 <= depth <= self.num_quantizers:
            raise ValueError(
                f"codes must have a known trailing axis of 1..{self.num_quantizers} stages "
                f"(shape [..., k]), got shape {codes.shape}."
            )
        work = self._work_dtype()
        total = tf.zeros(tf.concat([tf.shape(codes)[:-1], [self.code_dim]], axis=0), work)
        for i in range(depth):
            stage_codes = codes[..., i]
            rows = tf.gather(tf.cast(self.stages[i].codebook, work), tf.maximum(stage_codes, 0))
            total = total + tf.where((stage_codes >= 0)[..., None], rows, tf.zeros_like(rows))
        return tf.cast(total, self.compute_dtype)

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
        depth = self._check_depth(num_quantizers)
        z = tf.cast(ops.checked_input(inputs, self, self.code_dim), self.compute_dtype)
        work = self._work_dtype()
        leading = tf.shape(z)[:-1]
        flat = tf.reshape(tf.cast(z, work), [-1, self.code_dim])
        n = tf.shape(flat)[0]
        depths = self._draw_depths(z, leading, depth) if (training and self.dropout) else None

        residual, total = flat, tf.zeros_like(flat)
        codes, losses, perplexities = [], [], []
        for i in range(depth):
            stage = self.stages[i]
            if depths is None:
                out, rows = stage.quantize_with_rows(residual, training)
                stage_codes = out["codes"]
            else:
                active = tf.where(depths > i)  # [M, 1] rows that reach stage i
                out, rows = stage.quantize_with_rows(tf.gather_nd(residual, active), training)
                rows = tf.scatter_nd(active, rows, tf.shape(flat, out_type=tf.int64))
                stage_codes = tf.tensor_scatter_nd_update(tf.fill([n], -1), active, out["codes"])
            rows = tf.stop_gradient(tf.cast(rows, work))
            total = total + rows
            residual = residual - rows
            codes.append(stage_codes)
            losses.append(out["loss"])
            perplexities.append(ops.usage_perplexity(out["codes"], self.num_codes))

        # Value: the sum of the code vectors exactly; gradient: straight through to the input.
        quantized = tf.cast(total + (flat - tf.stop_gradient(flat)), self.compute_dtype)
        perplexities = tf.stack(perplexities)
        return {
            "quantized": tf.reshape(quantized, tf.concat([leading, [self.code_dim]], axis=0)),
            "codes": tf.reshape(tf.stack(codes, axis=-1), tf.concat([leading, [depth]], axis=0)),
            "loss": tf.add_n(losses),
            "perplexity": tf.reduce_mean(perplexities),
            "perplexities": perplexities,
        }

    # ----------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_quantizers": self.num_quantizers,
                "num_codes": self.num_codes,
                "code_dim": self.code_dim,
                "commitment_cost": self.commitment_cost,
                "ema": self.ema,
                "dropout": self.dropout,
                "decay": self.decay,
                "epsilon": self.epsilon,
                "expire_codes_below": self.expire_codes_below,
                "reset_window": self.reset_window,
                "seed": self.seed,
            }
        )
        return config
