"""RRVQ's quantizer: `RelaxedResponsibilityQuantizer` (Willetts et al., §3.2, eq. 5-7).

A codebook of means and a codebook of variances; the probability of code k
for an embedding is its Gaussian-mixture responsibility (RRVQ eq. 6 for the
posterior q, eq. 7 for the prior p; `ops.gaussian_log_density_logits`), and
the layer returns q's sample with the analytic `KL(q || p)` of eq. 5
(`ops.categorical_kl`). Its relaxed sample in training and hard sample at
inference come from `RelaxedQuantizer` (`tfvq.layers.stochastic_vq`), its
codebook, input check and lookup from `CodebookQuantizer`
(`tfvq.layers.codebook`).
"""

import keras
import tensorflow as tf

from tfvq.layers import ops
from tfvq.layers.stochastic_vq import RelaxedQuantizer


_COVARIANCES = ("diagonal", "isotropic", "unit")


@keras.saving.register_keras_serializable(package="tfvq")
class RelaxedResponsibilityQuantizer(RelaxedQuantizer):
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
      **kwargs: see `CodebookQuantizer` (`code_reset` defaults to False here).

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
        flat, leading = self.flatten_inputs(embeddings)
        log_probs = tf.nn.log_softmax(self.logits(flat), axis=-1)
        return tf.reshape(log_probs, tf.concat([leading, [self.num_codes]], axis=0))

    def call(self, inputs, training=None, stochastic=True, seed=None, prior=None, prior_logits=None,
             code_bias=None):
        if prior is not None and prior_logits is not None:
            raise ValueError("Pass either `prior` (p's embeddings) or `prior_logits`, not both.")
        out, q_logits, leading = self.quantize_with_logits(inputs, training, stochastic, seed, code_bias)
        if prior is not None:
            p_flat, _ = self.flatten_inputs(prior)
            p_logits = self.logits(p_flat)
        elif prior_logits is not None:
            p_logits = tf.reshape(tf.cast(prior_logits, q_logits.dtype), [-1, self.num_codes])
        else:
            p_logits = tf.zeros_like(q_logits)
        kl = ops.categorical_kl(q_logits, p_logits)
        out["kl"] = tf.reshape(kl, leading)
        out["loss"] = self.with_regularizer(ops.safe_mean(kl))
        return out

    def get_config(self):
        config = super().get_config()
        config.update({"covariance": self.covariance, "init_log_variance": self.init_log_variance})
        return config
