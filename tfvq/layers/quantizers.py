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
      seed: integer seed for the layer's random stream (sampling, reset noise).
      **kwargs: passed to `keras.layers.Layer`.
    """

    def __init__(
        self,
        num_codes,
        code_dim,
        code_reset=False,
        reset_window=20,
        reset_threshold=0.03,
        reset_noise=0.01,
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
        self.num_codes = int(num_codes)
        self.code_dim = int(code_dim)
        self.code_reset = bool(code_reset)
        self.reset_window = int(reset_window)
        self.reset_threshold = float(reset_threshold)
        self.reset_noise = float(reset_noise)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

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
        if self.code_reset:
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
    def _update_usage_and_reset(self, counts):
        """HQA App. C.4: count code usage over `reset_window` batches, then move
        the least used code next to the most used one if its usage is below
        `reset_threshold` of the most used code's. Usage counts are summed over
        replicas first, and the noise is drawn from the layer's seed stream, so
        every replica makes the same decision and the same move."""
        counts = all_reduce_sum(counts)
        enabled = tf.convert_to_tensor(self.reset_enabled)
        new_usage = self.code_usage + counts
        new_batches = self.usage_batches + 1
        noise = keras.random.normal((self.code_dim,), stddev=self.reset_noise, seed=self.seed_generator)
        due = tf.logical_and(enabled, new_batches >= self.reset_window)

        def reset():
            most = tf.argmax(new_usage, output_type=tf.int32)
            least = tf.argmin(new_usage, output_type=tf.int32)
            max_use = tf.gather(new_usage, most)
            do_move = tf.gather(new_usage, least) < self.reset_threshold * max_use
            cb = tf.convert_to_tensor(self.codebook)
            moved = tf.gather(cb, most) + tf.cast(noise, cb.dtype)
            new_cb = tf.where(
                do_move,
                tf.tensor_scatter_nd_update(cb, [[least]], moved[None]),
                cb,
            )
            return new_cb, tf.zeros_like(new_usage), tf.zeros_like(new_batches)

        def accumulate():
            return tf.convert_to_tensor(self.codebook), new_usage, new_batches

        def skip():
            return tf.convert_to_tensor(self.codebook), tf.zeros_like(new_usage), tf.zeros_like(new_batches)

        new_cb, usage, batches = tf.cond(
            due, reset, lambda: tf.cond(enabled, accumulate, skip)
        )
        self.codebook.assign(new_cb)
        self.code_usage.assign(usage)
        self.usage_batches.assign(batches)

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
                "seed": self.seed,
            }
        )
        return config


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

    Args:
      num_codes: K.
      code_dim: D.
      commitment_cost: beta of HQA eq. 2 (VQ-VAE used 0.25).
      ema: learn the codebook by EMA instead of gradients.
      decay: EMA decay (0.99 in VQ-VAE).
      epsilon: Laplace smoothing of the EMA cluster sizes.
      **kwargs: see `_QuantizerBase` (`code_reset`, `seed`, ...).

    Returns (from `call`): a dict with
      `quantized` `[..., D]` (straight-through), `codes` int32 `[...]`,
      `loss` scalar, `perplexity` scalar, `distances` `[..., K]`.

    Example:
      >>> vq = VectorQuantizer(num_codes=8, code_dim=4)
      >>> out = vq(tf.zeros([2, 3, 3, 4]))
      >>> out["codes"].shape
      TensorShape([2, 3, 3])

    References:
      van den Oord et al., Neural Discrete Representation Learning, 2017.
      Williams et al., Hierarchical Quantized Autoencoders, 2020, eq. 1-2.
    """

    def __init__(self, num_codes, code_dim, commitment_cost=0.25, ema=False, decay=0.99, epsilon=1e-5, **kwargs):
        super().__init__(num_codes, code_dim, **kwargs)
        if not 0.0 <= float(decay) < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}.")
        self.commitment_cost = float(commitment_cost)
        self.ema = bool(ema)
        self.decay = float(decay)
        self.epsilon = float(epsilon)

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

    def call(self, inputs, training=None):
        flat, leading = self._prepare(inputs)
        codebook = tf.cast(self.codebook, flat.dtype)
        # ||x - e||^2 - ||x||^2 in one fused MatMul+BiasAdd; the row constant
        # ||x||^2 does not change the argmin and is added only for `distances`.
        # Both are float32 under mixed precision (ops.distance_scores).
        scores = ops.distance_scores(flat, self.codebook)
        codes = tf.argmin(scores, axis=-1, output_type=tf.int32)
        distances = tf.maximum(scores + tf.reduce_sum(tf.square(to_float32(flat)), axis=-1, keepdims=True), 0.0)
        counts = ops.code_counts(codes, self.num_codes)
        if training:
            if self.ema:
                self._ema_update(tf.stop_gradient(flat), codes, counts)
                codebook = tf.cast(self.codebook, flat.dtype)
            if self.code_reset:
                self._update_usage_and_reset(counts)
        quantized = tf.gather(codebook, codes)
        # The losses in float32 (squared differences of nearby 16-bit numbers lose their low bits).
        flat32, quantized32 = to_float32(flat), to_float32(quantized)
        e_latent = ops.safe_mean(tf.square(tf.stop_gradient(quantized32) - flat32))
        if self.ema:
            loss = self.commitment_cost * e_latent
        else:
            q_latent = ops.safe_mean(tf.square(quantized32 - tf.stop_gradient(flat32)))
            loss = q_latent + self.commitment_cost * e_latent
        quantized_st = flat + tf.stop_gradient(quantized - flat)
        out_shape = tf.concat([leading, [self.code_dim]], axis=0)
        return {
            "quantized": tf.reshape(quantized_st, out_shape),
            "codes": tf.reshape(codes, leading),
            "loss": loss,
            "perplexity": ops.perplexity(counts),
            "distances": tf.reshape(distances, tf.concat([leading, [self.num_codes]], axis=0)),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "commitment_cost": self.commitment_cost,
                "ema": self.ema,
                "decay": self.decay,
                "epsilon": self.epsilon,
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
        if training and self.code_reset:
            self._update_usage_and_reset(counts)
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
    coefficients (beta_c = beta_e = 1e-3).

    Args:
      num_codes: K.
      code_dim: D.
      temperature: initial Gumbel-softmax temperature.
      distance_scale: s in the logits `-s ||z_e - e_k||^2`.
      entropy_cost: beta_e of HQA Algorithm 2.
      commitment_cost: beta_c of HQA Algorithm 2.
      code_reset: reset dead codes in training (default True, as HQA).
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
        **kwargs,
    ):
        super().__init__(num_codes, code_dim, temperature=temperature, code_reset=code_reset, **kwargs)
        if float(distance_scale) <= 0.0:
            raise ValueError(f"distance_scale must be positive, got {distance_scale}.")
        self.distance_scale = float(distance_scale)
        self.entropy_cost = float(entropy_cost)
        self.commitment_cost = float(commitment_cost)

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
        out["loss"] = self.commitment_cost * out["commitment"] - self.entropy_cost * out["entropy"]
        return out

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "distance_scale": self.distance_scale,
                "entropy_cost": self.entropy_cost,
                "commitment_cost": self.commitment_cost,
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
