"""HQA's stochastic quantizer: `StochasticVectorQuantizer` and its base `RelaxedQuantizer`.

`RelaxedQuantizer` is the core of the stochastic quantizers: a categorical
posterior over the codes of a `[K, D]` codebook, given by logits, relaxed in
training (the draw of `tfd.RelaxedOneHotCategorical`, made by
`ops.relaxed_quantize` with a hand-written gradient; HQA Algorithm 2) and hard
at inference (HQA Algorithm 3). Its subclasses differ only in their `logits`:

* `StochasticVectorQuantizer` (here) -- HQA eq. 3, `-s ||z_e - e_k||^2`, with
  HQA eq. 4's entropy and probabilistic commitment (or eq. 2 at the sampled
  code, App. B.4);
* `RelaxedResponsibilityQuantizer` (`tfvq.layers.relaxed_responsibility`) --
  RRVQ eq. 6-7, Gaussian-mixture responsibilities.

The codebook, input check, lookup and dead-code reset (HQA App. C.4) come
from `tfvq.layers.codebook`. Every layer returns a dict of tensors with stable
keys (never a distribution), so models built on them save, distribute and
export cleanly. Mixed precision: the logits, log-probabilities, entropy,
commitment and losses are float32, the temperature a float32 variable.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfvq.layers import ops
from tfvq.layers.codebook import CodebookQuantizer
from tfvq.layers.precision import to_float32

tfd = tfp.distributions


class RelaxedQuantizer(CodebookQuantizer):
    """Core of the stochastic quantizers: a categorical posterior over codes (not used directly).

    Subclasses define `logits(flat)` (`[N, D]` -> `[N, K]`) and build their
    `call` on `quantize_with_logits`. In training a
    reparameterised sample `s ~ RelaxedOneHotCategorical(temperature, logits)`
    gives `quantized = s @ codebook` (HQA Algorithm 2, lines 15-16); at
    inference the code is a hard sample of `Categorical(logits)` (HQA Algorithm
    3; `stochastic=True`) or the most probable code (`stochastic=False`), and
    `quantized` is its codebook vector.

    Args:
      temperature: initial Gumbel-softmax temperature; held in a non-trainable
        variable `temperature` that a schedule can `assign`.
      **kwargs: see `CodebookQuantizer`.
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
        flat, leading = self.flatten_inputs(inputs)
        logits, _ = self.shifted_logits(flat)
        return tf.reshape(tf.argmax(logits, axis=-1, output_type=tf.int32), leading)

    def quantize_with_logits(self, inputs, training=None, stochastic=True, seed=None, code_bias=None):
        """The shared forward pass: the output dict without `loss`, with q's logits.

        A subclass's `call` adds its `loss` (and RRVQ its `kl`, from the logits).

        Args:
          inputs: `[..., D]` floats.
          training: relaxed sample (and dead-code resets) if True.
          stochastic: at inference, sample (True) or take the argmax (False).
          seed: optional int32 `[2]` stateless seed; by default the layer's
            own seed stream (`ops.stateless_seed`).
          code_bias: None, or float `[K]` added to q's log-probabilities
            before the most probable code is taken (inference with
            `stochastic=False` only): the code at each position is
            `argmax_k log q(k) + code_bias[k]`, entropy-constrained VQ's
            choice (Chou, Lookabaugh & Gray 1989) when `code_bias` is a
            weight times the log-probabilities of the codes' entropy coder.
            q itself (`log_probs`, `entropy`) is unchanged.

        Returns:
          `(out, logits, leading)`: the dict of `quantized`, `codes`,
          `log_probs`, `entropy`, `commitment`, `perplexity`; q's `[N, K]`
          logits up to a per-row constant (`shifted_logits`); the `[...]`
          leading shape of the inputs.

        At HQA's size each `[N, K]` elementwise pass costs about as much as a
        matrix product, so they are kept few: logits come from one fused
        MatMul+BiasAdd, and in training `ops.relaxed_quantize` draws TFP's
        relaxed sample and forms the soft lookup, H[q] and E_q[logit] with a
        hand-written gradient.

        Under mixed precision `flat` and `codebook` are in the compute dtype
        (the products), the logits and all that follows from them float32."""
        if code_bias is not None and (training or stochastic):
            raise ValueError("code_bias changes the most probable code: it needs training=False and "
                             "stochastic=False.")
        flat, leading = self.flatten_inputs(inputs)
        if training:
            self.initialize_codebook(flat)
        codebook = tf.cast(self.codebook, flat.dtype)
        logits, row_offset = self.shifted_logits(flat)
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        if training:
            quantized, codes, entropy, expected = ops.relaxed_quantize(
                logits, codebook, self.temperature, ops.stateless_seed(seed, self.seed_generator)
            )
        else:
            if stochastic:
                seed = ops.stateless_seed(seed, self.seed_generator)
                codes = tfd.Categorical(logits=logits, dtype=tf.int32).sample(seed=seed)
            elif code_bias is not None:
                bias = tf.cast(tf.convert_to_tensor(code_bias), logits.dtype)
                if bias.shape.rank != 1 or bias.shape[0] != self.num_codes:
                    raise ValueError(f"code_bias must be a vector of {self.num_codes} floats (one per code), got "
                                     f"shape {bias.shape}.")
                codes = tf.argmax(logits + bias, axis=-1, output_type=tf.int32)
            else:
                codes = tf.argmax(logits, axis=-1, output_type=tf.int32)
            quantized = tf.gather(codebook, codes)
            probs = tf.exp(log_probs)
            entropy = -tf.reduce_sum(probs * log_probs, axis=-1)
            expected = tf.reduce_sum(probs * logits, axis=-1)
        expected = expected + row_offset  # E_q of the exact logits
        counts = ops.code_counts(codes, self.num_codes)
        if training and self.resets_codes:
            self.update_usage_and_reset(counts, flat)
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
class StochasticVectorQuantizer(RelaxedQuantizer):
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
      **kwargs: see `CodebookQuantizer` (`reset_window`, `reset_threshold`,
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

    def call(self, inputs, training=None, stochastic=True, seed=None, code_bias=None):
        out, _, _ = self.quantize_with_logits(inputs, training, stochastic, seed, code_bias)
        if self.probabilistic_loss:
            loss = self.commitment_cost * out["commitment"] - self.entropy_cost * out["entropy"]
            out["loss"] = self.with_regularizer(loss)
        else:
            # HQA eq. 2 at the sampled code (App. B.4): codebook term + beta * commitment term, in float32.
            flat = to_float32(self.flatten_inputs(inputs)[0])
            chosen = tf.gather(tf.convert_to_tensor(self.codebook), tf.reshape(out["codes"], [-1]))
            codebook_term = ops.safe_mean(tf.square(tf.stop_gradient(flat) - chosen))
            commitment_term = ops.safe_mean(tf.square(flat - tf.stop_gradient(chosen)))
            out["loss"] = self.with_regularizer(codebook_term + self.commitment_cost * commitment_term)
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
