"""Quantizer layers: deterministic VQ, stochastic VQ (HQA) and RRVQ.

One core serves every model in tfvq. `_QuantizerBase` owns what the three
layers share: the `[K, D]` `codebook` of means, input checks, flattening
`[..., D]` to `[N, D]`, code lookup, and dead-code resetting (HQA App. C.4)
with usage statistics all-reduced across replicas. Two subclasses differ only
in how they turn distances into a posterior:

* `VectorQuantizer` -- VQ-VAE (HQA eq. 1-2): the nearest code, a
  straight-through gradient, codebook and commitment losses, or an EMA codebook.
* `_RelaxedQuantizer` -- a categorical posterior given by logits, relaxed in
  training (the draw of `tfd.RelaxedOneHotCategorical`, made by
  `ops.relaxed_quantize` with a hand-written gradient) and hard at inference.
  `StochasticVectorQuantizer` (HQA eq. 3) and `RelaxedResponsibilityQuantizer`
  (RRVQ eq. 6-7) differ only in their `logits`.

Every layer returns a dict of tensors with stable keys (never a distribution),
so models built on them save, distribute and export cleanly.

`VectorQuantizer` also takes the options of later work: the rotation trick
(Fifty et al. 2024) in place of the straight-through gradient, a cosine
distance, and dead-code expiry by a usage threshold (`expire_codes_below`, a
second rule of the one reset mechanism of `_QuantizerBase`). The layers with an
implicit codebook live in `tfvq.layers.fsq` (FSQ) and `tfvq.layers.lfq` (LFQ);
the residual stack of `VectorQuantizer`s in `tfvq.layers.rvq`.

Distributed training: statistics kept outside gradients (EMA cluster sizes and
sums, code usage counts) are summed over replicas with
`ReplicaContext.all_reduce` before they are assigned, and the variables are
created with `aggregation="only_first_replica"`, so every replica holds the
same EMA codebook and resets the same code the same way.

Mixed precision (`tfvq.layers.precision`): inputs are cast to the layer's
compute dtype (bfloat16 / float16 under a mixed policy) and the matrix
products run in it, but every variable is float32 and read as float32
(`autocast=False`): the codebook (its `||e_k||^2` bias is added to the logits
in float32), the log-variances, the EMA statistics, the usage counts and the
temperature. Logits, log-probabilities, entropy, commitment, KL and the
losses are float32 (`ops` says why); `quantized` is in the compute dtype.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfvq.layers import ops
from tfvq.layers.precision import to_float32

tfd = tfp.distributions

_FLOAT_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)


def all_reduce_sum(value):
    """Sums `value` over the replicas of the current strategy (identity without one)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return value
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, value)


def all_gather_rows(value):
    """Concatenates `value` over the replicas along axis 0 (identity without a strategy).

    The replicas' shards may differ in length along axis 0."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return value
    return ctx.all_gather(value, axis=0)


MAX_COUNTED_CODES = 2**16
"""Codebooks up to this size count usage in a dense `[K]` vector; larger ones by `tf.unique`."""


def usage_perplexity(codes, num_codes):
    """Perplexity of the codes used by the global batch (`ops.perplexity`), all replicas counted.

    Up to `MAX_COUNTED_CODES` codes, the dense `[K]` counts are summed over
    replicas; a larger implicit codebook (LFQ's `2^d`, a large FSQ grid)
    gathers the batch's codes from every replica and counts the distinct
    ones, so no `[K]` tensor is formed. Both give the same value.

    Args:
      codes: int32 codes of any shape, in `[0, num_codes)`.
      num_codes: K.

    Returns:
      A float32 scalar in `[1, min(K, number of codes)]` (1 for no codes).
    """
    codes = tf.reshape(tf.cast(codes, tf.int32), [-1])
    if num_codes <= MAX_COUNTED_CODES:
        return ops.perplexity(all_reduce_sum(ops.code_counts(codes, num_codes)))
    _, _, counts = tf.unique_with_counts(all_gather_rows(codes))
    return ops.perplexity(tf.cast(counts, tf.float32))


class _QuantizerBase(keras.layers.Layer):
    """Shared core of the tfvq quantizers (not used directly).

    Args:
      num_codes: K, the number of codes.
      code_dim: D, the size of each code vector; inputs must end in D.
      code_reset: whether dead-code resetting (HQA App. C.4) runs in training.
      reset_window: batches over which usage is counted before a reset (HQA: 20).
      reset_threshold: a code is reset when its usage is below this fraction of
        the most used code's usage (HQA: 0.03).
      reset_noise: standard deviation of the noise added to the most used code
        to place the reset one (HQA: N(0, 0.01); read as a standard deviation of
        0.01, as in the authors' reference code).
      expire_codes_below: None (the default) or a number of input vectors per
        batch. If set, dead codes are reset in training by the expiry rule
        instead of HQA's (see below), whatever `code_reset` says.
      seed: integer seed for the layer's random stream (sampling, reset noise).
      **kwargs: passed to `keras.layers.Layer`.

    Dead-code reset, one mechanism with two rules. In training, the code
    usage counts of each batch (summed over replicas) are added up in
    `code_usage` for `reset_window` batches (`usage_batches` counts them);
    then the rule picks the dead codes, each is given a new vector, and the
    count starts again (a new code gets a full window before it is judged).
    `reset_enabled` (a bool variable) pauses the whole mechanism.

    * HQA App. C.4 (`code_reset=True`): the least used code, if its usage is
      below `reset_threshold` times the most used code's, moves next to the
      most used code (plus N(0, `reset_noise`^2) noise). One code per window.
    * Expiry (`expire_codes_below=t`): every code used fewer than `t` times
      per batch on average over the window is replaced by an input vector of
      the current batch drawn at random (distinct vectors while the batch has
      at least K of them), as in SoundStream's codebook expiry (Zeghidour et
      al. 2021, §3.3) and Jukebox's random restarts (Dhariwal et al. 2020),
      which replace codes that went unused for several batches. The threshold is
      absolute (vectors per batch), so a batch of N vectors and K codes has
      N/K per code on average; t = 1 to 2 is the usual range. The windowed
      mean stands in for an EMA of the usage: it needs no warm-up or
      debiasing (an EMA starting at 0 would expire every code on its first
      step) and gives a replaced code the same grace period as HQA's rule.

    Under `tf.distribute` both rules make the same decision on every replica
    (usage is all-reduced) and the same move: HQA's noise comes from the
    layer's seed stream; for expiry every replica draws the same random
    numbers, which pick for each dead code one replica and one of its rows,
    and the chosen rows are summed over replicas (so the new vectors come from
    the global batch). A `VectorQuantizer` with `ema=True` also resets the EMA
    statistics of a replaced code (`_codes_replaced`), so the next EMA update
    keeps it where it was put rather than pulling it back to its old mean.
    """

    def __init__(
        self,
        num_codes,
        code_dim,
        code_reset=False,
        reset_window=20,
        reset_threshold=0.03,
        reset_noise=0.01,
        expire_codes_below=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_codes) < 1 or int(code_dim) < 1:
            raise ValueError(
                f"num_codes and code_dim must be positive integers, got num_codes={num_codes}, "
                f"code_dim={code_dim}."
            )
        if int(reset_window) < 1:
            raise ValueError(f"reset_window must be >= 1 batch, got {reset_window}.")
        if expire_codes_below is not None and not float(expire_codes_below) >= 0.0:
            raise ValueError(
                "expire_codes_below must be None or a number of input vectors per batch >= 0, "
                f"got {expire_codes_below}."
            )
        self.num_codes = int(num_codes)
        self.code_dim = int(code_dim)
        self.code_reset = bool(code_reset)
        self.reset_window = int(reset_window)
        self.reset_threshold = float(reset_threshold)
        self.reset_noise = float(reset_noise)
        self.expire_codes_below = None if expire_codes_below is None else float(expire_codes_below)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def resets_codes(self):
        """Whether dead codes are reset in training (by HQA's rule or by expiry)."""
        return self.code_reset or self.expire_codes_below is not None

    # ------------------------------------------------------------------ build
    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] is not None:
            self._check_last_dim(input_shape[-1])
        self.codebook = self.add_weight(
            name="codebook",
            shape=(self.num_codes, self.code_dim),
            initializer=self._codebook_initializer(),
            trainable=self._codebook_trainable(),
            aggregation="only_first_replica",
            autocast=False,  # float32 under mixed precision: cast where a product needs the compute dtype
        )
        self._build_extra()
        if self.resets_codes:
            self.code_usage = self.add_weight(
                name="code_usage",
                shape=(self.num_codes,),
                initializer="zeros",
                trainable=False,
                aggregation="only_first_replica",
                autocast=False,  # counts stay float32
            )
            self.usage_batches = self.add_weight(
                name="usage_batches",
                shape=(),
                initializer="zeros",
                dtype="int64",
                trainable=False,
                aggregation="only_first_replica",
            )
            self.reset_enabled = self.add_weight(
                name="reset_enabled",
                shape=(),
                initializer="ones",
                dtype="bool",
                trainable=False,
                aggregation="only_first_replica",
            )
        self.built = True

    def _codebook_initializer(self):
        return keras.initializers.RandomUniform(-1.0, 1.0, seed=self.seed)

    def _codebook_trainable(self):
        return True

    def _build_extra(self):
        """Hook for subclasses to add variables."""

    # ----------------------------------------------------------------- checks
    def _check_last_dim(self, last_dim):
        if int(last_dim) != self.code_dim:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects inputs whose last dimension is "
                f"code_dim={self.code_dim}, got last dimension {last_dim}. Project the input to "
                f"{self.code_dim} channels (e.g. a 1x1 convolution) or build the layer with "
                f"code_dim={last_dim}."
            )

    def _prepare(self, z):
        """Checks `z` and flattens `[..., D]` to `[N, D]`."""
        z = tf.convert_to_tensor(z)
        if z.dtype not in _FLOAT_DTYPES:
            raise TypeError(
                f"{type(self).__name__} '{self.name}' expects a floating-point input, got dtype "
                f"{z.dtype.name}. Cast it first, e.g. tf.cast(z, tf.float32)."
            )
        if z.shape.rank is not None and z.shape.rank < 1:
            raise ValueError(f"{type(self).__name__} expects inputs of shape [..., {self.code_dim}], got a scalar.")
        if z.shape[-1] is not None:
            self._check_last_dim(z.shape[-1])
        z = tf.cast(z, self.compute_dtype)
        leading = tf.shape(z)[:-1]
        return tf.reshape(z, [-1, self.code_dim]), leading

    def _check_codes(self, codes):
        codes = tf.convert_to_tensor(codes)
        if not codes.dtype.is_integer:
            raise TypeError(f"codes must be integers, got dtype {codes.dtype.name}.")
        return tf.cast(codes, tf.int32)

    # ----------------------------------------------------------------- lookup
    def lookup(self, codes):
        """Returns the codebook vectors `[..., D]` of integer `codes` `[...]`."""
        codes = self._check_codes(codes)
        return tf.gather(tf.cast(self.codebook, self.compute_dtype), codes)

    # ------------------------------------------------------------- code reset
    def _update_usage_and_reset(self, counts, flat=None):
        """Counts code usage over `reset_window` batches, then resets the dead
        codes by HQA's rule (App. C.4) or by expiry (see the class docstring).

        Args:
          counts: `[K]` usage counts of this replica's batch.
          flat: `[N, D]` this replica's inputs (needed by the expiry rule).
        """
        counts = all_reduce_sum(counts)
        enabled = tf.convert_to_tensor(self.reset_enabled)
        new_usage = self.code_usage + counts
        new_batches = self.usage_batches + 1
        due = tf.logical_and(enabled, new_batches >= self.reset_window)
        code_ids = tf.range(self.num_codes, dtype=tf.int32)

        if self.expire_codes_below is None:
            # HQA App. C.4: the least used code moves next to the most used one.
            noise = keras.random.normal((self.code_dim,), stddev=self.reset_noise, seed=self.seed_generator)

            def dead_codes_and_vectors(usage, cb):
                most = tf.argmax(usage, output_type=tf.int32)
                least = tf.argmin(usage, output_type=tf.int32)
                do_move = tf.gather(usage, least) < self.reset_threshold * tf.gather(usage, most)
                moved = tf.gather(cb, most) + tf.cast(noise, cb.dtype)
                dead = tf.logical_and(tf.equal(code_ids, least), do_move)
                return dead, tf.broadcast_to(moved, tf.shape(cb))

        else:
            # Expiry: every code below the threshold takes a random input vector.
            if flat is None:
                raise ValueError("the expiry rule needs the batch's input vectors (`flat`).")
            seed = tf.cast(self.seed_generator.next(), tf.int32)
            rows, available = self._random_input_rows(flat, seed)

            def dead_codes_and_vectors(usage, cb):
                per_batch = usage / tf.cast(new_batches, usage.dtype)
                dead = tf.logical_and(per_batch < self.expire_codes_below, available)
                return dead, tf.cast(rows, cb.dtype)

        def reset():
            cb = tf.convert_to_tensor(self.codebook)
            dead, vectors = dead_codes_and_vectors(new_usage, cb)
            new_cb = tf.where(dead[:, None], vectors, cb)
            return new_cb, dead, tf.zeros_like(new_usage), tf.zeros_like(new_batches)

        def accumulate():
            return tf.convert_to_tensor(self.codebook), tf.zeros_like(code_ids, tf.bool), new_usage, new_batches

        def skip():
            return (
                tf.convert_to_tensor(self.codebook),
                tf.zeros_like(code_ids, tf.bool),
                tf.zeros_like(new_usage),
                tf.zeros_like(new_batches),
            )

        new_cb, dead, usage, batches = tf.cond(
            due, reset, lambda: tf.cond(enabled, accumulate, skip)
        )
        self.codebook.assign(new_cb)
        self.code_usage.assign(usage)
        self.usage_batches.assign(batches)
        self._codes_replaced(dead, new_cb)

    def _random_input_rows(self, flat, seed):
        """`[K, D]` input vectors drawn from the global batch, and `[K]` whether each is real.

        Each replica takes a random permutation of its rows (code k gets row
        `perm[k mod N]`, so the K codes get distinct rows while N >= K); with
        several replicas a draw shared by all of them names, for each code, the
        replica whose row it takes, and the rows are summed over replicas. A
        code whose chosen replica has an empty batch is not available."""
        flat = tf.stop_gradient(tf.cast(flat, self.codebook.dtype))
        n = tf.shape(flat)[0]
        seeds = tf.random.experimental.stateless_split(seed, 2)
        order = tf.argsort(tf.random.stateless_uniform([n], seeds[0]))
        # A zero row after the batch, so an empty batch gathers something (marked unavailable).
        padded = tf.concat([flat, tf.zeros([1, self.code_dim], flat.dtype)], axis=0)
        order = tf.concat([order, [n]], axis=0)
        pick = tf.gather(order, tf.range(self.num_codes) % tf.maximum(n, 1))
        rows = tf.gather(padded, pick)
        available = tf.fill([self.num_codes], tf.cast(n > 0, flat.dtype))
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            source = tf.random.stateless_uniform(
                [self.num_codes], seeds[1], minval=0, maxval=ctx.num_replicas_in_sync, dtype=tf.int32
            )
            mine = tf.equal(source, tf.cast(ctx.replica_id_in_sync_group, tf.int32))
            rows = all_reduce_sum(tf.where(mine[:, None], rows, tf.zeros_like(rows)))
            available = all_reduce_sum(tf.where(mine, available, tf.zeros_like(available)))
        return rows, available > 0

    def _codes_replaced(self, dead, codebook):
        """Hook called after every reset step with the `[K]` mask of replaced codes."""

    # ----------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_codes": self.num_codes,
                "code_dim": self.code_dim,
                "code_reset": self.code_reset,
                "reset_window": self.reset_window,
                "reset_threshold": self.reset_threshold,
                "reset_noise": self.reset_noise,
                "expire_codes_below": self.expire_codes_below,
                "seed": self.seed,
            }
        )
        return config


class _ImplicitCodebookQuantizer(keras.layers.Layer):
    """What the quantizers without a codebook variable (FSQ, LFQ) share: their input checks.

    A subclass has `code_dim` (the input's last dimension), `num_codes` and
    `_dim_words()` (how its messages name `code_dim`).
    """

    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] is not None:
            self._check_last_dim(input_shape[-1])
        self.built = True

    def _check_last_dim(self, last_dim):
        if int(last_dim) != self.code_dim:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects inputs whose last dimension is {self._dim_words()}, "
                f"got last dimension {last_dim}. Project the input to {self.code_dim} channels first."
            )

    def _checked_inputs(self, inputs):
        """`inputs` as a tensor of the compute dtype, after the dtype, rank and last-dimension checks."""
        z = tf.convert_to_tensor(inputs)
        if not z.dtype.is_floating:
            raise TypeError(
                f"{type(self).__name__} '{self.name}' expects a floating-point input, got dtype {z.dtype.name}. "
                "Cast it first, e.g. tf.cast(z, tf.float32)."
            )
        if z.shape.rank is not None and z.shape.rank < 1:
            raise ValueError(f"{type(self).__name__} expects inputs of shape [..., {self.code_dim}], got a scalar.")
        if z.shape[-1] is not None:
            self._check_last_dim(z.shape[-1])
        return tf.cast(z, self.compute_dtype)


DISTANCES = ("euclidean", "cosine")
"""The `distance=` values of `VectorQuantizer`."""

_ROTATION_MIN_NORM = 1e-6
"""Inputs or codes shorter than this get the straight-through gradient under the rotation trick."""


def _l2_normalize(x):
    """`x / ||x||` along the last axis, formed in float32 (or float64) and returned in `x`'s dtype."""
    wide = to_float32(x)
    return tf.cast(tf.math.l2_normalize(wide, axis=-1, epsilon=1e-12), x.dtype)


def rotation_trick(e, q):
    """The rotation trick of Fifty et al. 2024 (§4): `sg[(||q||/||e||) R] e`, row by row.

    `R` rotates `e^ = e/||e||` onto `q^ = q/||q||`. It is applied without
    forming it, by its Householder form `R = I - 2 r r^T + 2 q^ e^T` with
    `r = (e^ + q^)/||e^ + q^||`, so `R e = e - 2 r (r.e) + 2 q^ (e^.e)`.
    Everything but `e` is held constant (`sg`), so the value is `q` (up to
    rounding) and the gradient with respect to `e` is `(||q||/||e||) R^T` times
    the incoming one. Rows where `e^ = -q^` take `r = 0` (`R = I + 2 q^ e^T`
    still maps `e^` to `q^`); rows where `||e||` or `||q||` is below 1e-6 return
    `e` itself (the straight-through gradient).

    Args:
      e: `[N, D]` inputs (the gradient flows to them).
      q: `[N, D]` their code vectors (held constant).

    Returns:
      `[N, D]` in `e`'s dtype (computed in float32 for 16-bit inputs).
    """
    e_wide = to_float32(e)
    q_wide = tf.stop_gradient(tf.cast(q, e_wide.dtype))
    tiny = tf.constant(_ROTATION_MIN_NORM, e_wide.dtype)
    e_norm = tf.stop_gradient(tf.norm(e_wide, axis=-1, keepdims=True))
    q_norm = tf.norm(q_wide, axis=-1, keepdims=True)
    e_hat = tf.stop_gradient(e_wide / tf.maximum(e_norm, tiny))
    q_hat = q_wide / tf.maximum(q_norm, tiny)
    w = e_hat + q_hat
    w_norm = tf.norm(w, axis=-1, keepdims=True)
    r = tf.where(w_norm > tiny, w / tf.maximum(w_norm, tiny), tf.zeros_like(w))
    scale = q_norm / tf.maximum(e_norm, tiny)
    dot = lambda a, b: tf.reduce_sum(a * b, axis=-1, keepdims=True)  # noqa: E731
    rotated = scale * (e_wide - 2.0 * r * dot(r, e_wide) + 2.0 * q_hat * dot(e_hat, e_wide))
    valid = tf.logical_and(e_norm > tiny, q_norm > tiny)
    return tf.cast(tf.where(valid, rotated, e_wide), e.dtype)


@keras.saving.register_keras_serializable(package="tfvq")
class VectorQuantizer(_QuantizerBase):
    """VQ-VAE quantizer: nearest code with a straight-through gradient.

    Implements HQA eq. 1 (the one-hot posterior on the nearest code) and eq. 2
    (the VQ-VAE loss of van den Oord et al. 2017). With `ema=False` the loss is
    `||sg[z_e] - e_k||^2 + beta ||z_e - sg[e_k]||^2` (codebook + commitment;
    `commitment_cost` is beta). With `ema=True` the codebook is not trained by
    gradients but follows exponential moving averages of the cluster sizes and
    the sums of the inputs assigned to each code, zero-debiased as in Sonnet's
    `VectorQuantizerEMA`, and the loss is the commitment term alone. Under a
    `tf.distribute` strategy the per-batch statistics are summed over replicas
    before the averages are assigned, so the codebook is the same on every
    replica and equals the single-device result on the concatenated batch.

    Shapes: `[16, 32, 32, 64]` inputs are flattened to `[16384, 64]`, compared
    with the `[K, 64]` codebook, and returned as `[16, 32, 32, 64]` with codes
    `[16, 32, 32]`.

    Options (all off by default, which is the layer described above):

    * `rotation_trick=True` -- Fifty et al. 2024, "Restructuring Vector
      Quantization with the Rotation Trick", §4: the output is
      `q~ = sg[(||q|| / ||e||) R] e`, where `e` is the input, `q` its code
      vector and `R` the rotation that takes `e/||e||` to `q/||q||`. Its value
      is `q` (exactly: the layer returns `sg[q] + (q~ - sg[q~])`), but the
      gradient reaching `e` is `(||q||/||e||) R^T` times the gradient at `q`
      instead of a copy of it, so the angle between the gradient and the
      vector is the same at `e` as at `q` (their App. A.6). `R` is never
      formed: with `e^ = e/||e||`, `q^ = q/||q||` and
      `r = (e^ + q^)/||e^ + q^||` (the Householder form the paper gives for
      an efficient implementation), `R e = e - 2 r (r.e) + 2 q^ (e^.e)`, one
      pass over `[N, D]`. For
      opposite `e^` and `q^`, `r` is taken as 0 (then `R = I + 2 q^ e^T`
      still takes `e^` to `q^`); an input or code shorter than 1e-6 falls
      back to the straight-through gradient. The codebook still learns from
      the codebook loss (or EMA): `q` enters `q~` only inside `sg`.
    * `distance="cosine"` -- inputs and codes are l2-normalised before the
      nearest-code search (ViT-VQGAN's l2-normalised codes, Yu et al. 2022,
      §3.2), and `quantized`, `lookup`, the losses and `distances` use the
      normalised vectors: the layer's output lies on the unit sphere. The
      gradients flow through the input's normalisation; with `ema=True` the
      EMA averages the normalised inputs and is normalised when used.
    * `expire_codes_below=t` -- dead-code expiry (see `_QuantizerBase`): a
      code used fewer than `t` times per batch, on average over
      `reset_window` batches, takes a random input vector of the batch.

    Args:
      num_codes: K.
      code_dim: D.
      commitment_cost: beta of HQA eq. 2 (VQ-VAE used 0.25).
      ema: learn the codebook by EMA instead of gradients.
      decay: EMA decay (0.99 in VQ-VAE).
      epsilon: Laplace smoothing of the EMA cluster sizes.
      distance: `"euclidean"` (the default) or `"cosine"`.
      rotation_trick: pass gradients by the rotation trick instead of
        straight through.
      **kwargs: see `_QuantizerBase` (`code_reset`, `expire_codes_below`,
        `reset_window`, `seed`, ...).

    Returns (from `call`): a dict with
      `quantized` `[..., D]` (straight-through, or rotation trick), `codes`
      int32 `[...]`, `loss` scalar, `perplexity` scalar, `distances`
      `[..., K]` (squared, between the normalised vectors for cosine).

    Example:
      >>> vq = VectorQuantizer(num_codes=8, code_dim=4)
      >>> out = vq(tf.zeros([2, 3, 3, 4]))
      >>> out["codes"].shape
      TensorShape([2, 3, 3])

    References:
      van den Oord et al., Neural Discrete Representation Learning, 2017.
      Williams et al., Hierarchical Quantized Autoencoders, 2020, eq. 1-2.
      Fifty et al., Restructuring Vector Quantization with the Rotation Trick,
      2024, §4.
      Yu et al., Vector-quantized Image Modeling with Improved VQGAN, 2022,
      §3.2 (l2-normalised codes).
    """

    def __init__(
        self,
        num_codes,
        code_dim,
        commitment_cost=0.25,
        ema=False,
        decay=0.99,
        epsilon=1e-5,
        distance="euclidean",
        rotation_trick=False,
        **kwargs,
    ):
        super().__init__(num_codes, code_dim, **kwargs)
        if not 0.0 <= float(decay) < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}.")
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}.")
        self.commitment_cost = float(commitment_cost)
        self.ema = bool(ema)
        self.decay = float(decay)
        self.epsilon = float(epsilon)
        self.distance = distance
        self.rotation_trick = bool(rotation_trick)

    def _codebook_initializer(self):
        # Sonnet initialises VQ codebooks with a variance-scaling uniform.
        return keras.initializers.VarianceScaling(distribution="uniform", seed=self.seed)

    def _codebook_trainable(self):
        return not self.ema

    def _build_extra(self):
        if not self.ema:
            return
        # float32 under mixed precision (autocast=False): EMA sums of small updates stall in 16 bits.
        kw = dict(trainable=False, aggregation="only_first_replica", autocast=False)
        # Hidden (biased) averages and the step counter used for zero-debiasing.
        self.ema_cluster_size_hidden = self.add_weight(
            name="ema_cluster_size_hidden", shape=(self.num_codes,), initializer="zeros", **kw
        )
        self.ema_dw_hidden = self.add_weight(
            name="ema_dw_hidden", shape=(self.num_codes, self.code_dim), initializer="zeros", **kw
        )
        self.ema_steps = self.add_weight(name="ema_steps", shape=(), initializer="zeros", **kw)

    def _ema_update(self, flat, codes, counts):
        """EMA codebook update (VQ-VAE App. A.1, Sonnet's zero-debiased scheme)."""
        flat = tf.cast(flat, self.ema_dw_hidden.dtype)  # float32 statistics under mixed precision
        cluster_size = all_reduce_sum(tf.cast(counts, flat.dtype))
        dw = all_reduce_sum(tf.math.unsorted_segment_sum(flat, codes, self.num_codes))
        d = self.decay
        steps = self.ema_steps + 1.0
        hidden_cs = self.ema_cluster_size_hidden * d + cluster_size * (1.0 - d)
        hidden_dw = self.ema_dw_hidden * d + dw * (1.0 - d)
        debias = 1.0 - tf.pow(d, steps)
        avg_cs = hidden_cs / debias
        avg_dw = hidden_dw / debias
        n = tf.reduce_sum(avg_cs)
        smoothed = (avg_cs + self.epsilon) / (n + self.num_codes * self.epsilon) * n
        self.ema_cluster_size_hidden.assign(hidden_cs)
        self.ema_dw_hidden.assign(hidden_dw)
        self.ema_steps.assign(steps)
        self.codebook.assign(avg_dw / smoothed[:, None])

    def _codes_replaced(self, dead, codebook):
        """With `ema=True`, a replaced code restarts its EMA statistics at its new
        vector, weighted as the average code, so the next update keeps it there."""
        if not self.ema:
            return
        cs = tf.convert_to_tensor(self.ema_cluster_size_hidden)
        fill = tf.broadcast_to(tf.reduce_mean(cs), tf.shape(cs))
        codebook = tf.cast(codebook, cs.dtype)
        self.ema_cluster_size_hidden.assign(tf.where(dead, fill, cs))
        self.ema_dw_hidden.assign(tf.where(dead[:, None], codebook * fill[:, None], self.ema_dw_hidden))

    def _search_codebook(self):
        """The codebook the search and lookup use: the variable, l2-normalised for `distance="cosine"`."""
        codebook = tf.convert_to_tensor(self.codebook)
        return _l2_normalize(codebook) if self.distance == "cosine" else codebook

    def lookup(self, codes):
        """Returns the code vectors `[..., D]` of integer `codes` `[...]` (normalised for cosine)."""
        codes = self._check_codes(codes)
        return tf.gather(tf.cast(self._search_codebook(), self.compute_dtype), codes)

    def _search_inputs(self, flat):
        """The prepared `[N, D]` inputs as the search compares them: l2-normalised for cosine."""
        return _l2_normalize(flat) if self.distance == "cosine" else flat

    def _nearest(self, flat):
        """(codes [N], scores [N, K]) of `[N, D]` search inputs: `||x - e||^2 - ||x||^2` in one fused
        MatMul+BiasAdd (float32 under mixed precision, `ops.distance_scores`)."""
        scores = ops.distance_scores(flat, self._search_codebook())
        return tf.argmin(scores, axis=-1, output_type=tf.int32), scores

    def nearest_codes(self, inputs):
        """int32 codes `[...]` of `inputs` `[..., D]`: the forward pass's nearest codes without its losses,
        statistics or updates, with TFLite builtins only (the models' TFLite encoders)."""
        flat, leading = self._prepare(inputs)
        return tf.reshape(self._nearest(self._search_inputs(flat))[0], leading)

    def call(self, inputs, training=None):
        out, _ = self._quantize(inputs, training)
        return out

    def _quantize(self, inputs, training):
        """The forward pass: the output dict, and the `[N, D]` code vectors `quantized`
        holds in the codebook's own dtype (float32 under mixed precision), for layers
        that add them up (`tfvq.layers.ResidualVectorQuantizer`)."""
        flat, leading = self._prepare(inputs)
        flat = self._search_inputs(flat)
        # The row constant ||x||^2 does not change the argmin and is added only for `distances`.
        codes, scores = self._nearest(flat)
        distances = tf.maximum(scores + tf.reduce_sum(tf.square(to_float32(flat)), axis=-1, keepdims=True), 0.0)
        counts = ops.code_counts(codes, self.num_codes)
        if training and self.ema:
            self._ema_update(tf.stop_gradient(flat), codes, counts)
        codebook_wide = self._search_codebook()  # after the EMA update, before any reset
        if training and self.resets_codes:
            self._update_usage_and_reset(counts, tf.stop_gradient(flat))
        rows = tf.gather(codebook_wide, codes)
        quantized = tf.gather(tf.cast(codebook_wide, flat.dtype), codes)
        # The losses in float32 (squared differences of nearby 16-bit numbers lose their low bits).
        flat32, quantized32 = to_float32(flat), to_float32(quantized)
        e_latent = ops.safe_mean(tf.square(tf.stop_gradient(quantized32) - flat32))
        if self.ema:
            loss = self.commitment_cost * e_latent
        else:
            q_latent = ops.safe_mean(tf.square(quantized32 - tf.stop_gradient(flat32)))
            loss = q_latent + self.commitment_cost * e_latent
        if self.rotation_trick:
            rotated = rotation_trick(flat, quantized)
            quantized_st = tf.stop_gradient(quantized) + (rotated - tf.stop_gradient(rotated))
        else:
            quantized_st = flat + tf.stop_gradient(quantized - flat)
        out_shape = tf.concat([leading, [self.code_dim]], axis=0)
        out = {
            "quantized": tf.reshape(quantized_st, out_shape),
            "codes": tf.reshape(codes, leading),
            "loss": loss,
            "perplexity": ops.perplexity(counts),
            "distances": tf.reshape(distances, tf.concat([leading, [self.num_codes]], axis=0)),
        }
        return out, rows

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "commitment_cost": self.commitment_cost,
                "ema": self.ema,
                "decay": self.decay,
                "epsilon": self.epsilon,
                "distance": self.distance,
                "rotation_trick": self.rotation_trick,
            }
        )
        return config


class _RelaxedQuantizer(_QuantizerBase):
    """Core of the stochastic quantizers: a categorical posterior over codes.

    Subclasses define `logits(flat)` (`[N, D]` -> `[N, K]`). In training a
    reparameterised sample `s ~ RelaxedOneHotCategorical(temperature, logits)`
    gives `quantized = s @ codebook` (HQA Algorithm 2, lines 15-16); at
    inference the code is a hard sample of `Categorical(logits)` (HQA Algorithm
    3; `stochastic=True`) or the most probable code (`stochastic=False`), and
    `quantized` is its codebook vector.

    Args:
      temperature: initial Gumbel-softmax temperature; held in a non-trainable
        variable `temperature` that a schedule can `assign`.
      **kwargs: see `_QuantizerBase`.
    """

    def __init__(self, num_codes, code_dim, temperature=1.0, **kwargs):
        super().__init__(num_codes, code_dim, **kwargs)
        if float(temperature) <= 0.0:
            raise ValueError(f"temperature must be positive, got {temperature}.")
        self.initial_temperature = float(temperature)

    def build(self, input_shape=None):
        self.temperature = self.add_weight(
            name="temperature",
            shape=(),
            initializer=keras.initializers.Constant(self.initial_temperature),
            trainable=False,
            aggregation="only_first_replica",
            autocast=False,  # float32: the relaxed sample is float32
        )
        super().build(input_shape)

    def logits(self, flat):
        raise NotImplementedError

    def shifted_logits(self, flat):
        """`(l', c)` with the exact logits `l = l' + c[:, None]`.

        A per-position constant changes neither q nor its samples, so the hot
        path may drop one; subclasses whose logits carry a cheap-to-drop row
        term (HQA's `-s ||z_e||^2`) override this. Default: `c = 0`.
        """
        logits = self.logits(flat)
        return logits, tf.zeros(tf.shape(flat)[:1], logits.dtype)

    def nearest_codes(self, inputs):
        """int32 codes `[...]` of `inputs` `[..., D]`: the most probable code of q (`stochastic=False`'s codes),
        without the forward pass's entropy, statistics or resets."""
        flat, leading = self._prepare(inputs)
        logits, _ = self.shifted_logits(flat)
        return tf.reshape(tf.argmax(logits, axis=-1, output_type=tf.int32), leading)

    def _sample_seed(self, seed):
        if seed is not None:
            return tf.cast(tf.convert_to_tensor(seed), tf.int32)
        return tf.cast(self.seed_generator.next(), tf.int32)

    def _quantize(self, inputs, training, stochastic, seed):
        """The shared forward pass.

        At HQA's size each `[N, K]` elementwise pass costs about as much as a
        matrix product, so they are kept few: logits come from one fused
        MatMul+BiasAdd, and in training `ops.relaxed_quantize` draws TFP's
        relaxed sample and forms the soft lookup, H[q] and E_q[logit] with a
        hand-written gradient.

        Under mixed precision `flat` and `codebook` are in the compute dtype
        (the products), the logits and all that follows from them float32."""
        flat, leading = self._prepare(inputs)
        codebook = tf.cast(self.codebook, flat.dtype)
        logits, row_offset = self.shifted_logits(flat)
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        if training:
            quantized, codes, entropy, expected = ops.relaxed_quantize(
                logits, codebook, self.temperature, self._sample_seed(seed)
            )
        else:
            if stochastic:
                codes = tfd.Categorical(logits=logits, dtype=tf.int32).sample(seed=self._sample_seed(seed))
            else:
                codes = tf.argmax(logits, axis=-1, output_type=tf.int32)
            quantized = tf.gather(codebook, codes)
            probs = tf.exp(log_probs)
            entropy = -tf.reduce_sum(probs * log_probs, axis=-1)
            expected = tf.reduce_sum(probs * logits, axis=-1)
        expected = expected + row_offset  # E_q of the exact logits
        counts = ops.code_counts(codes, self.num_codes)
        if training and self.resets_codes:
            self._update_usage_and_reset(counts, flat)
        commitment = self._commitment(flat, self.codebook, log_probs, expected)
        k_shape = tf.concat([leading, [self.num_codes]], axis=0)
        out = {
            "quantized": tf.reshape(quantized, tf.concat([leading, [self.code_dim]], axis=0)),
            "codes": tf.reshape(codes, leading),
            "log_probs": tf.reshape(log_probs, k_shape),
            "entropy": ops.safe_mean(entropy),
            "commitment": ops.safe_mean(commitment),
            "perplexity": ops.perplexity(counts),
        }
        return out, logits, leading

    def _commitment(self, flat, codebook, log_probs, expected_logit):
        """`[N]` expected squared distances E_q ||z - e_k||^2 (HQA eq. 4)."""
        return ops.expected_squared_distance(flat, tf.exp(log_probs), codebook)

    def get_config(self):
        config = super().get_config()
        config["temperature"] = self.initial_temperature
        return config


@keras.saving.register_keras_serializable(package="tfvq")
class StochasticVectorQuantizer(_RelaxedQuantizer):
    """Stochastic (relaxed) VQ of Sønderby et al. 2017, as used by HQA.

    The posterior is HQA eq. 3, `q(z=k|x) ∝ exp(-s ||z_e - e_k||^2)`, with the
    scale `s = distance_scale`. HQA eq. 3 and eq. 6 use `s = 1`; HQA Algorithm 2
    and 3 write `s = 1/2` (a unit-variance Gaussian mixture, App. B); RRVQ eq. 2
    also uses 1/2. The default follows eq. 3; pass `distance_scale=0.5` for the
    algorithm's form.

    Training (HQA Algorithm 2): a reparameterised Gumbel-softmax sample at the
    variable `temperature` (linearly annealed by the trainer, HQA §5.1), and
    `quantized = soft_one_hot @ codebook`. Inference (Algorithm 3): a hard
    sample from eq. 3 (`stochastic=True`, the default) or the argmax
    (`stochastic=False`). Dead codes are reset as in HQA App. C.4 (usage over
    `reset_window=20` batches, threshold 3%, noise std 0.01); set
    `reset_enabled` to False to stop resetting (HQA resets for the first 75%
    of training).

    The HQA regulariser terms are returned separately: `entropy` (H[q],
    averaged over positions) and `commitment` (E_q ||z_e - e_k||^2, averaged
    over positions), and `loss = commitment_cost * commitment - entropy_cost *
    entropy`, the weighted regulariser of HQA eq. 4 with Table 10's default
    coefficients (beta_c = beta_e = 1e-3): HQA's "probabilistic loss".

    With `probabilistic_loss=False` (the "GS" rows of HQA Table 3 without the
    probabilistic loss) the regulariser is instead the VQ-VAE's codebook and
    commitment terms at the sampled code k (HQA eq. 2, the tau -> 0 limit of
    eq. 4 with stop-gradients, App. B.4, eq. 18-20):
    `loss = mean ||sg[z_e] - e_k||^2 + commitment_cost * mean ||z_e - sg[e_k]||^2`
    (means over the elements, as `VectorQuantizer`). The codebook then learns
    from these terms and from the relaxed sample's gradient.

    Args:
      num_codes: K.
      code_dim: D.
      temperature: initial Gumbel-softmax temperature.
      distance_scale: s in the logits `-s ||z_e - e_k||^2`.
      entropy_cost: beta_e of HQA Algorithm 2.
      commitment_cost: beta_c of HQA Algorithm 2.
      code_reset: reset dead codes in training (default True, as HQA).
      probabilistic_loss: HQA eq. 4's entropy and expected commitment (True,
        the default) or the VQ-VAE terms of eq. 2 at the sampled code (False).
      **kwargs: see `_QuantizerBase` (`reset_window`, `reset_threshold`,
        `reset_noise`, `seed`).

    Call args:
      inputs: `[..., D]` floats (z_e).
      training: relaxed sample if True.
      stochastic: at inference, sample (True) or take the argmax (False).
      seed: optional stateless seed, an int32 tensor of shape [2]; by default
        the layer's own seed stream is used.

    Returns: a dict with `quantized` `[..., D]`, `codes` int32 `[...]`,
      `log_probs` `[..., K]`, `entropy`, `commitment`, `loss`, `perplexity`.

    References:
      Williams et al., Hierarchical Quantized Autoencoders, 2020, §5.1, eq. 3-4,
      Algorithms 2-3, App. C.4.
      Sønderby, Poole, Mnih, Continuous Relaxation Training of Discrete Latent
      Variable Image Models, 2017.
    """

    def __init__(
        self,
        num_codes,
        code_dim,
        temperature=1.0,
        distance_scale=1.0,
        entropy_cost=1e-3,
        commitment_cost=1e-3,
        code_reset=True,
        probabilistic_loss=True,
        **kwargs,
    ):
        super().__init__(num_codes, code_dim, temperature=temperature, code_reset=code_reset, **kwargs)
        if float(distance_scale) <= 0.0:
            raise ValueError(f"distance_scale must be positive, got {distance_scale}.")
        self.distance_scale = float(distance_scale)
        self.entropy_cost = float(entropy_cost)
        self.commitment_cost = float(commitment_cost)
        self.probabilistic_loss = bool(probabilistic_loss)

    def logits(self, flat):
        """HQA eq. 3 logits `-distance_scale * ||z_e - e_k||^2` for `[N, D]` inputs."""
        return ops.scaled_distance_logits(flat, self.codebook, self.distance_scale)

    def shifted_logits(self, flat):
        """`-s (||e_k||^2 - 2 z_e.e_k)` (one fused MatMul+BiasAdd of inner size D) and the
        row term `-s ||z_e||^2`, which q does not depend on."""
        scale = self.distance_scale
        logits = ops.distance_scores(flat, self.codebook, scale=-scale)  # float32 under mixed precision
        return logits, -scale * tf.reduce_sum(tf.square(tf.cast(flat, logits.dtype)), axis=-1)

    def _commitment(self, flat, codebook, log_probs, expected_logit):
        # The logits are -s ||z_e - e_k||^2 exactly, so E_q ||z_e - e_k||^2 is
        # -E_q[logit] / s: no further pass over [N, K].
        return tf.maximum(-expected_logit / self.distance_scale, 0.0)

    def call(self, inputs, training=None, stochastic=True, seed=None):
        out, _, _ = self._quantize(inputs, training, stochastic, seed)
        if self.probabilistic_loss:
            out["loss"] = self.commitment_cost * out["commitment"] - self.entropy_cost * out["entropy"]
        else:
            # HQA eq. 2 at the sampled code (App. B.4): codebook term + beta * commitment term, in float32.
            flat = to_float32(self._prepare(inputs)[0])
            chosen = tf.gather(tf.convert_to_tensor(self.codebook), tf.reshape(out["codes"], [-1]))
            codebook_term = ops.safe_mean(tf.square(tf.stop_gradient(flat) - chosen))
            commitment_term = ops.safe_mean(tf.square(flat - tf.stop_gradient(chosen)))
            out["loss"] = codebook_term + self.commitment_cost * commitment_term
        return out

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "distance_scale": self.distance_scale,
                "entropy_cost": self.entropy_cost,
                "commitment_cost": self.commitment_cost,
                "probabilistic_loss": self.probabilistic_loss,
            }
        )
        return config


_COVARIANCES = ("diagonal", "isotropic", "unit")


@keras.saving.register_keras_serializable(package="tfvq")
class RelaxedResponsibilityQuantizer(_RelaxedQuantizer):
    """Relaxed-Responsibility VQ (RRVQ §3.2, eq. 6-7).

    A codebook of means (`codebook`, `[K, D]`) and a codebook of variances
    (`log_variances`: `[K, D]` for `covariance="diagonal"`, `[K, 1]` for
    `"isotropic"`, absent for `"unit"`, the sigma = 1 ablation of RRVQ Table
    G.1). The probability of code k for an embedding e is its Gaussian-mixture
    responsibility, log-determinant included:

        pi_k(e) ∝ N(e; mu_k, diag(sigma_k^2)).

    Eq. 6 (posterior q) and eq. 7 (prior p) share these codebooks, so the same
    layer gives both: `log_responsibilities(e)` for any embedding, and
    `call(e_q, prior=e_p)` returns q's sample together with the analytic
    `KL(q || p)` per position (RRVQ eq. 5). Without a prior the KL is taken
    against the uniform categorical (the top layer's prior), which is
    `log K - H[q]`. `prior_logits` takes p's logits directly instead (the
    Direct-Cat ablation of Table G.1).

    Training samples are relaxed (Gumbel-softmax at `temperature`); at
    evaluation the categoricals are not relaxed (RRVQ Table 1).

    Args:
      num_codes: K.
      code_dim: D (d_e in the paper).
      covariance: `"diagonal"`, `"isotropic"` or `"unit"`.
      temperature: initial Gumbel-softmax temperature (a variable).
      init_log_variance: initial value of every log-variance (0 = unit).
      **kwargs: see `_QuantizerBase` (`code_reset` defaults to False here).

    Returns (from `call`): a dict with `quantized` `[..., D]`, `codes` int32
      `[...]`, `log_probs` `[..., K]` (log q), `kl` `[...]` (KL(q || p) per
      position, nats), `loss` (mean of `kl` over positions), `entropy`,
      `commitment` (E_q ||e - mu_k||^2, averaged), `perplexity`.

    References:
      Willetts et al., Relaxed-Responsibility Hierarchical Discrete VAEs,
      §3.2, eq. 5-7, Table G.1.
    """

    def __init__(
        self,
        num_codes,
        code_dim,
        covariance="diagonal",
        temperature=1.0,
        init_log_variance=0.0,
        **kwargs,
    ):
        super().__init__(num_codes, code_dim, temperature=temperature, **kwargs)
        if covariance not in _COVARIANCES:
            raise ValueError(f"covariance must be one of {_COVARIANCES}, got {covariance!r}.")
        self.covariance = covariance
        self.init_log_variance = float(init_log_variance)

    def _codebook_initializer(self):
        return keras.initializers.RandomNormal(stddev=1.0, seed=self.seed)

    def _build_extra(self):
        self.log_variances = None
        if self.covariance == "unit":
            return
        cols = self.code_dim if self.covariance == "diagonal" else 1
        self.log_variances = self.add_weight(
            name="log_variances",
            shape=(self.num_codes, cols),
            initializer=keras.initializers.Constant(self.init_log_variance),
            trainable=True,
            aggregation="only_first_replica",
            autocast=False,  # float32: the log-determinant is a float32 bias of the logits
        )

    def logits(self, flat):
        """RRVQ eq. 6/7 log-densities `[N, K]` of `[N, D]` embeddings."""
        log_var = None if self.log_variances is None else tf.convert_to_tensor(self.log_variances)
        return ops.gaussian_log_density_logits(flat, self.codebook, log_var)

    def log_responsibilities(self, embeddings):
        """Normalised log-responsibilities `[..., K]` of `[..., D]` embeddings (eq. 6 and 7)."""
        flat, leading = self._prepare(embeddings)
        log_probs = tf.nn.log_softmax(self.logits(flat), axis=-1)
        return tf.reshape(log_probs, tf.concat([leading, [self.num_codes]], axis=0))

    def call(self, inputs, training=None, stochastic=True, seed=None, prior=None, prior_logits=None):
        if prior is not None and prior_logits is not None:
            raise ValueError("Pass either `prior` (p's embeddings) or `prior_logits`, not both.")
        out, q_logits, leading = self._quantize(inputs, training, stochastic, seed)
        if prior is not None:
            p_flat, _ = self._prepare(prior)
            p_logits = self.logits(p_flat)
        elif prior_logits is not None:
            p_logits = tf.reshape(tf.cast(prior_logits, q_logits.dtype), [-1, self.num_codes])
        else:
            p_logits = tf.zeros_like(q_logits)
        kl = ops.categorical_kl(q_logits, p_logits)
        out["kl"] = tf.reshape(kl, leading)
        out["loss"] = ops.safe_mean(kl)
        return out

    def get_config(self):
        config = super().get_config()
        config.update({"covariance": self.covariance, "init_log_variance": self.init_log_variance})
        return config
