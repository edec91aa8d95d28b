"""The shared base of the quantizers with a codebook variable: `CodebookQuantizer`.

`VectorQuantizer` (`tfvq.layers.vq`, HQA eq. 1-2), HQA's
`StochasticVectorQuantizer` (`tfvq.layers.stochastic_vq`, HQA eq. 3-4) and
RRVQ's `RelaxedResponsibilityQuantizer` (`tfvq.layers.relaxed_responsibility`,
RRVQ eq. 6-7) are subclasses: they differ only in how they turn distances into
a posterior. The base owns what they share: the `[K, D]` `codebook` of means,
the input check and flattening of `[..., D]` to `[N, D]` (`flatten_inputs`),
code lookup, and dead-code resetting with two rules -- HQA App. C.4 and the
expiry of SoundStream §3.3 / Jukebox -- with usage statistics all-reduced
across replicas.

Distributed training: statistics kept outside gradients (code usage counts;
the EMA statistics of `VectorQuantizer`) are summed over replicas with
`ReplicaContext.all_reduce` (`ops.all_reduce_sum`) before they are assigned,
and the variables are created with `aggregation="only_first_replica"`, so
every replica holds the same codebook and resets the same code the same way.

Mixed precision (`tfvq.layers.precision`): inputs are cast to the layer's
compute dtype (bfloat16 / float16 under a mixed policy) and the matrix
products run in it, but every variable is float32 and read as float32
(`autocast=False`): the codebook (its `||e_k||^2` bias is added to the logits
in float32), the usage counts and the subclasses' own variables (EMA
statistics, log-variances, temperature). Logits, log-probabilities, entropy,
commitment, KL and the losses are float32 (`ops` says why); `quantized` is in
the compute dtype.

The layers with an implicit codebook (FSQ, LFQ) share `tfvq.layers.implicit`
instead.
"""

import keras
import tensorflow as tf

from tfvq.layers import ops
from tfvq.layers.kmeans import kmeans_codebook

CODEBOOK_INITS = ("random", "kmeans++", "kmeans")
"""The `codebook_init=` values of the codebook quantizers (see `CodebookQuantizer`)."""

KMEANS_POINTS_PER_CODE = 16
"""k-means initialisation uses at most this many vectors per code from each replica's batch."""


class CodebookQuantizer(keras.layers.Layer):
    """The shared base of the quantizers with a codebook variable (not used directly).

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
      codebook_init: "random" (the layer's initializer), "kmeans++" or "kmeans": the codebook is fitted
        to the first training batch (see below).
      kmeans_iterations: Lloyd steps after the k-means++ seeds for `codebook_init="kmeans"`.
      orthogonal_weight: weight of the codebook's orthogonal regulariser in the layer's loss (0: none; see
        below).
      **kwargs: passed to `keras.layers.Layer`.

    Data-dependent initialisation (`codebook_init`): at the first training call, the codebook is fitted to
    the batch's inputs (as the search sees them: normalised for a cosine distance, projected for a
    low-dimensional lookup) by k-means++ seeds (Arthur & Vassilvitskii 2007), followed for "kmeans" by
    `kmeans_iterations` Lloyd steps (`tfvq.layers.kmeans.kmeans_codebook`): SoundStream's "k-means on the
    first training batch" (Zeghidour et al. 2021, §3.3), so no code starts where there is no data. It runs
    once: a saved bool variable `codebook_initialized` records it (a loaded model is not refitted). Under
    `tf.distribute` the batch is gathered from every replica and every replica fits the same codebook. At
    most `KMEANS_POINTS_PER_CODE` (16) K vectors of each replica's batch are used, an even stride through
    it (this also bounds the rows gathered, which happens at every training step while the option is set:
    a collective cannot sit inside the branch that runs once). Codes beyond the batch's distinct vectors
    keep their initial values: the batch should hold at least K vectors.

    Orthogonal regularisation (`orthogonal_weight`): the loss gains `orthogonal_weight *
    ops.orthogonality_penalty(codebook)`, the mean squared difference between the Gram matrix of the
    l2-normalised codes and the identity (Shin et al., "Exploration into Translation-Equivariant Image
    Quantization", ICASSP 2023). It acts through gradients, so a codebook learned by EMA refuses it.

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

    A subclass's forward pass calls `flatten_inputs` (the input check and
    `[..., D]` -> `[N, D]`) and, in training, `update_usage_and_reset` with
    the batch's code counts. It may override the hooks
    `_codebook_initializer()`, `_codebook_trainable()`, `_build_extra()`
    (more variables) and `_codes_replaced(dead, codebook)` (after a reset).
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
        codebook_init="random",
        kmeans_iterations=10,
        orthogonal_weight=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if codebook_init not in CODEBOOK_INITS:
            raise ValueError(f"codebook_init must be one of {CODEBOOK_INITS}, got {codebook_init!r}.")
        if isinstance(kmeans_iterations, bool) or not float(kmeans_iterations).is_integer() or kmeans_iterations < 0:
            raise ValueError(f"kmeans_iterations must be an integer >= 0, got {kmeans_iterations!r}.")
        if not float(orthogonal_weight) >= 0.0:
            raise ValueError(f"orthogonal_weight must be >= 0, got {orthogonal_weight!r}.")
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
        self.codebook_init = codebook_init
        self.kmeans_iterations = int(kmeans_iterations)
        self.orthogonal_weight = float(orthogonal_weight)

    @property
    def codebook_dim(self):
        """The width of the codebook's rows: D (a low-dimensional lookup narrows it, `VectorQuantizer`)."""
        return self.code_dim

    @property
    def resets_codes(self):
        """Whether dead codes are reset in training (by HQA's rule or by expiry)."""
        return self.code_reset or self.expire_codes_below is not None

    # ------------------------------------------------------------------ build
    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] is not None:
            ops.check_last_dim(self, input_shape[-1], self.code_dim)
        self.codebook = self.add_weight(
            name="codebook",
            shape=(self.num_codes, self.codebook_dim),
            initializer=self._codebook_initializer(),
            trainable=self._codebook_trainable(),
            aggregation="only_first_replica",
            autocast=False,  # float32 under mixed precision: cast where a product needs the compute dtype
        )
        self._build_extra()
        if self.codebook_init != "random":
            self.codebook_initialized = self._state_scalar("codebook_initialized", "bool", "zeros")
        if self.resets_codes:
            self.code_usage = self.add_weight(
                name="code_usage",
                shape=(self.num_codes,),
                initializer="zeros",
                trainable=False,
                aggregation="only_first_replica",
                autocast=False,  # counts stay float32
            )
            self.usage_batches = self._state_scalar("usage_batches", "int64", "zeros")
            self.reset_enabled = self._state_scalar("reset_enabled", "bool", "ones")
        self.built = True

    def _state_scalar(self, name, dtype, initializer):
        """A non-trainable scalar of the layer's state (a flag, a counter), the same on every replica."""
        return self.add_weight(name=name, shape=(), initializer=initializer, dtype=dtype, trainable=False,
                               aggregation="only_first_replica")

    def _codebook_initializer(self):
        return keras.initializers.RandomUniform(-1.0, 1.0, seed=self.seed)

    def _codebook_trainable(self):
        return True

    def _build_extra(self):
        """Hook for subclasses to add variables."""

    # ----------------------------------------------------------------- inputs
    def flatten_inputs(self, inputs):
        """`inputs` `[..., D]` checked (`ops.checked_input`), cast to the compute dtype and flattened.

        Returns:
          `(flat, leading)`: the `[N, D]` vectors and the `[...]` leading shape
          (an int32 tensor) that reshapes `[N, ...]` results back.
        """
        z = tf.cast(ops.checked_input(inputs, self, self.code_dim), self.compute_dtype)
        leading = tf.shape(z)[:-1]
        return tf.reshape(z, [-1, self.code_dim]), leading

    # ----------------------------------------------------------------- lookup
    def lookup(self, codes):
        """Returns the codebook vectors `[..., D]` of integer `codes` `[...]`."""
        codes = ops.checked_codes(codes)
        return tf.gather(tf.cast(self.codebook, self.compute_dtype), codes)

    # ------------------------------------------------ initialisation, regulariser
    def initialize_codebook(self, points):
        """Fits the codebook to `points` `[N, codebook_dim]` (the search's inputs) by k-means(++) the first
        time it is called with any points (see the class docstring); a no-op for `codebook_init="random"`.

        A subclass calls it from its forward pass in training, before the search."""
        if self.codebook_init == "random":
            return
        points = tf.stop_gradient(tf.cast(points, self.codebook.dtype))
        seed = tf.cast(self.seed_generator.next(), tf.int32)
        current = tf.convert_to_tensor(self.codebook)
        # At most KMEANS_POINTS_PER_CODE * K vectors of each replica's batch, evenly strided over it.
        cap = KMEANS_POINTS_PER_CODE * self.num_codes
        points = points[:: tf.maximum(1, (tf.shape(points)[0] + cap - 1) // cap)]
        # Gathered at every training step: a collective cannot sit inside the tf.cond below.
        gathered = ops.all_gather_rows(points)  # every replica fits the same codebook to the global batch
        fresh = tf.logical_and(tf.logical_not(self.codebook_initialized), tf.shape(gathered)[0] > 0)
        iterations = self.kmeans_iterations if self.codebook_init == "kmeans" else 0
        codebook = tf.cond(fresh, lambda: kmeans_codebook(gathered, current, seed, iterations), lambda: current)
        self.codebook.assign(codebook)
        self.codebook_initialized.assign(tf.logical_or(self.codebook_initialized, fresh))
        self._codebook_fitted(fresh)

    def _codebook_fitted(self, fresh):
        """Hook called after `initialize_codebook` with a scalar bool: whether the codebook was just fitted."""

    def _regularized_codebook(self):
        """The codes the orthogonal regulariser acts on: the codebook variable."""
        return tf.convert_to_tensor(self.codebook)

    def with_regularizer(self, loss):
        """`loss` plus `orthogonal_weight` times the codebook's orthogonality penalty (`loss` if the weight is 0)."""
        if not self.orthogonal_weight:
            return loss
        penalty = ops.orthogonality_penalty(tf.cast(self._regularized_codebook(), tf.float32))
        return loss + tf.cast(self.orthogonal_weight * penalty, loss.dtype)

    # ------------------------------------------------------------- code reset
    def update_usage_and_reset(self, counts, flat=None):
        """Counts code usage over `reset_window` batches, then resets the dead
        codes by HQA's rule (App. C.4) or by expiry (see the class docstring).

        A subclass calls it from its forward pass in training, when
        `resets_codes` is true (the variables it updates exist only then).

        Args:
          counts: `[K]` usage counts of this replica's batch.
          flat: `[N, D]` this replica's inputs (needed by the expiry rule).
        """
        counts = ops.all_reduce_sum(counts)
        enabled = tf.convert_to_tensor(self.reset_enabled)
        new_usage = self.code_usage + counts
        new_batches = self.usage_batches + 1
        due = tf.logical_and(enabled, new_batches >= self.reset_window)
        code_ids = tf.range(self.num_codes, dtype=tf.int32)

        if self.expire_codes_below is None:
            # HQA App. C.4: the least used code moves next to the most used one.
            noise = keras.random.normal((self.codebook_dim,), stddev=self.reset_noise, seed=self.seed_generator)

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
        padded = tf.concat([flat, tf.zeros([1, self.codebook_dim], flat.dtype)], axis=0)
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
            rows = ops.all_reduce_sum(tf.where(mine[:, None], rows, tf.zeros_like(rows)))
            available = ops.all_reduce_sum(tf.where(mine, available, tf.zeros_like(available)))
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
                "codebook_init": self.codebook_init,
                "kmeans_iterations": self.kmeans_iterations,
                "orthogonal_weight": self.orthogonal_weight,
            }
        )
        return config
