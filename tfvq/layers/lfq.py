"""Lookup-free quantization (LFQ): one bit per channel, the sign, with an entropy penalty.

Yu et al., "Language Model Beats Diffusion -- Tokenizer is Key to Visual
Generation" (MAGVIT-v2), 2023 (ICLR 2024), §3.1.
"""

import keras
import tensorflow as tf

from tfvq.layers import ops
from tfvq.layers.implicit import ImplicitCodebookQuantizer
from tfvq.layers.precision import logits_dtype

MAX_CODE_DIM = 30
"""2^30 codes: the largest power of two whose codes and count fit an int32."""

MAX_EXACT_ENTROPY_DIM = 16
"""The largest code_dim whose codebook entropy may be computed exactly (an `[N, 2^d]` assignment)."""

DEFAULT_EXACT_ENTROPY_DIM = 12
"""`codebook_entropy=None` is exact up to this code_dim (4096 codes), factorised above."""

CODEBOOK_ENTROPIES = ("exact", "factorized")

_PROB_CLIP = 1e-6


def binary_entropy_from_logits(logits):
    """Entropy in nats of Bernoulli(sigmoid(logits)), stable for any logit:
    `H = p softplus(-l) + (1 - p) softplus(l)` (since `-log p = softplus(-l)`)."""
    p = tf.sigmoid(logits)
    return p * tf.nn.softplus(-logits) + (1.0 - p) * tf.nn.softplus(logits)


def binary_entropy(p):
    """Entropy in nats of Bernoulli(p); `p` is clipped to `[1e-6, 1 - 1e-6]` so its gradient stays finite."""
    p = tf.clip_by_value(p, _PROB_CLIP, 1.0 - _PROB_CLIP)
    return -(p * tf.math.log(p) + (1.0 - p) * tf.math.log1p(-p))


@keras.saving.register_keras_serializable(package="tfvq")
class LookupFreeQuantizer(ImplicitCodebookQuantizer):
    """Lookup-free quantization (MAGVIT-v2, Yu et al. 2023, §3.1).

    The codebook is the set `{-1, +1}^d` of `2^d` codes (d = `code_dim`),
    never stored: each channel is quantized to its sign (eq. 2, with
    `sign(0) = -1`), the code index is `sum_i [z_i > 0] 2^i` (eq. 3; bit i is
    channel i), and `lookup` inverts it. The gradient of `quantized` is passed
    straight through (value `sign(z)` exactly: the layer returns
    `hard + (z - sg[z])`).

    Loss: `commitment_cost * mean((z - sg[q])^2) + entropy_weight *
    (E[H(q(z))] - diversity_gamma * H[E q(z)])`, the paper's entropy penalty
    (§3.1) plus the usual commitment term, with `q(z)` a soft assignment of
    `z` to the codes:

    * Soft assignment. `q(k | z) = softmax_k(-||z - c_k||^2 / temperature)`
      over all `2^d` codes `c_k`. As `||z - c||^2 = sum_i (z_i - c_i)^2`, it
      factorises exactly into independent bits with
      `p(bit_i = 1 | z) = sigmoid(4 z_i / temperature)` (the two squared
      distances of a channel differ by `(z_i + 1)^2 - (z_i - 1)^2 = 4 z_i`).
      So the scale 4 is not a free choice: it is the distance softmax at
      temperature 1, the same soft assignment as for VQ codebooks, and it
      makes `p` sharp enough that a channel at `|z_i| = 1` (on its code) is
      98% certain. `temperature` rescales it.
    * Per-sample entropy `E[H(q(z))]`: exact, since entropies of independent
      bits add (the paper's `H(q(z)) = sum_i H(q(z_i))`), averaged over the
      batch. Minimising it makes each assignment confident.
    * Codebook entropy `H[E q(z)]`, the entropy of the batch mean of `q(z)`
      over all `2^d` codes (`codebook_entropy="exact"`, the paper's
      definition). `log q(k | z) = sum_i log sigmoid(-l_i) + l . b_k` with
      `l_i = 4 z_i / T` and `b_k` the bits of code k (since
      `log sigmoid(l) - log sigmoid(-l) = l`), so the `[N, 2^d]` assignment
      is one matrix product, never an `[N, 2^d, d]` tensor. It needs `N 2^d`
      numbers: the default (`None`) is "exact" up to `d = 12` (4096 codes)
      and "factorized" above; "exact" is allowed up to `d = 16`.
      `codebook_entropy="factorized"`: `sum_i H(mean_n p_ni)`, the entropy of
      the product of the per-bit batch means (the paper's remark that
      `H[E q]` may be computed on groups of dimensions, taken to groups of
      one), cheap for any `d`. It is an upper bound of the exact entropy (a
      joint entropy is at most the sum of its marginals'): it rewards every
      bit being used half the time but cannot see correlated bits, and in
      training it lets the codes collapse -- on the digits (`lfq_digits`, 10
      bits) the batch used 3 codes after 1000 steps, all bits balanced but
      equal. Either way the batch mean is over the global batch (sums
      all-reduced over replicas), since the entropy of a mean is not the
      mean of the replicas' entropies.

    Entropies are in nats. `perplexity` is that of the codes used by the
    global batch (`ops.usage_perplexity`: exact, without a `[2^d]` tensor for
    `d > 16`; that path uses `tf.unique`, so for `d > 16` the layer reports
    `supports_jit = False` to Keras).

    Mixed precision: `z`, the probabilities, entropies and losses are float32
    (float64 under a float64 policy); `quantized` is in the compute dtype.

    Args:
      code_dim: d, the number of bits (1..30).
      entropy_weight: the weight of the entropy penalty.
      commitment_cost: the weight of `mean((z - sg[q])^2)` (VQ-VAE's beta).
      diversity_gamma: the weight of the codebook entropy inside the penalty
        (1 is the paper's `E[H] - H[E]`).
      temperature: the temperature of the soft assignment (see above).
      codebook_entropy: "exact", "factorized", or None (exact up to
        `code_dim` 12, factorised above; see above).
      **kwargs: passed to `keras.layers.Layer`.

    Call args:
      inputs: `[..., code_dim]` floats.
      training: unused (the loss is returned in inference too).

    Returns: a dict with `quantized` `[..., d]` in {-1, +1}, `codes` int32
      `[...]`, and scalars `loss`, `commitment`, `entropy` (per-sample,
      mean), `codebook_entropy` (exact or factorised) -- float32, or float64 under a
      float64 policy -- and `perplexity` (float32).

    References:
      Yu et al., Language Model Beats Diffusion -- Tokenizer is Key to Visual
      Generation (MAGVIT-v2), 2023, §3.1 (eq. 1-3 and the entropy penalty).
    """

    def __init__(
        self,
        code_dim,
        entropy_weight=0.1,
        commitment_cost=0.25,
        diversity_gamma=1.0,
        temperature=1.0,
        codebook_entropy=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(code_dim, bool) or not float(code_dim).is_integer() or not 1 <= int(code_dim) <= MAX_CODE_DIM:
            raise ValueError(
                f"code_dim must be an integer in [1, {MAX_CODE_DIM}] (the number of bits; 2^code_dim codes "
                f"must fit an int32), got {code_dim!r}."
            )
        if float(temperature) <= 0.0:
            raise ValueError(f"temperature must be positive, got {temperature}.")
        self.code_dim = int(code_dim)
        self.entropy_weight = float(entropy_weight)
        self.commitment_cost = float(commitment_cost)
        self.diversity_gamma = float(diversity_gamma)
        self.temperature = float(temperature)
        if codebook_entropy is None:
            codebook_entropy = "exact" if self.code_dim <= DEFAULT_EXACT_ENTROPY_DIM else "factorized"
        if codebook_entropy not in CODEBOOK_ENTROPIES:
            raise ValueError(f"codebook_entropy must be one of {CODEBOOK_ENTROPIES} or None, got {codebook_entropy!r}.")
        if codebook_entropy == "exact" and self.code_dim > MAX_EXACT_ENTROPY_DIM:
            raise ValueError(
                f"codebook_entropy='exact' needs an [N, 2^code_dim] assignment: at most code_dim "
                f"{MAX_EXACT_ENTROPY_DIM}, got {self.code_dim}. Use codebook_entropy='factorized'."
            )
        self.codebook_entropy = codebook_entropy
        # Above MAX_COUNTED_CODES the perplexity counts codes with tf.unique, which XLA cannot compile.
        self.supports_jit = self.num_codes <= ops.MAX_COUNTED_CODES

    @property
    def num_codes(self):
        """2^code_dim, the size of the implicit codebook."""
        return 2**self.code_dim

    def _bit_weights(self):
        return tf.bitwise.left_shift(tf.ones([self.code_dim], tf.int32), tf.range(self.code_dim, dtype=tf.int32))

    residual_gain = 2.0
    """How much `ResidualQuantizer` scales each later stage's input (see there): a channel's codes are -1 and +1,
    so an input in `[-2, 2]` is left at most 1 from its code, which 2 brings back to `[-2, 2]`; stage k then
    adds `+-2^-k` (successive approximation: the error bound halves with every stage)."""

    def _code_values(self, codes, dtype):
        # bit i of a code, by floor division and modulo (TFLite builtins, so decoders convert; BitwiseAnd is not)
        codes = tf.expand_dims(ops.checked_codes(codes), -1)  # not codes[..., None]: no TFLite op at unknown sizes
        bits = tf.math.floormod(tf.math.floordiv(codes, self._bit_weights()), 2)
        scale = self._code_scale()
        return tf.where(bits > 0, tf.constant(scale, dtype), tf.constant(-scale, dtype))

    def code_vectors(self, codes):
        """The code vectors `[..., d]` in {-1, +1} of int32 `codes` `[...]`, in float32 (float64 under a float64
        policy)."""
        return self._code_values(codes, logits_dtype(self.compute_dtype))

    def lookup(self, codes):
        """The code vectors `[..., d]` in {-1, +1} of int32 `codes` `[...]`."""
        return self._code_values(codes, self.compute_dtype)

    def _sign_codes(self, positive):
        """int32 codes `[...]` of the channels' signs `[..., d]` (bool, `z > 0`): bit i is channel i (eq. 3)."""
        return tf.reduce_sum(tf.cast(positive, tf.int32) * self._bit_weights(), axis=-1)

    def nearest_codes(self, inputs):
        """int32 codes `[...]` of `inputs` `[..., d]`: the forward pass's codes without its loss or statistics,
        with TFLite builtins only (the models' TFLite encoders)."""
        return self._sign_codes(self.checked_inputs(inputs) > 0)

    # Hooks of the sign quantizers (`BinarySphericalQuantizer` projects first and scales its codes).
    def _project(self, z):
        """What the sign is taken of, in the work dtype: `z` itself."""
        return z

    def _code_scale(self):
        """The magnitude of every code channel: 1."""
        return 1.0

    def _commitment(self, flat, hard):
        """`mean((z - q)^2)` over positions and channels."""
        return ops.safe_mean(tf.square(flat - hard))

    def _bit_logits(self, flat):
        """`[N, d]` logits of p(bit = 1 | z): the distance softmax, `4 z / T`."""
        return (4.0 / self.temperature) * flat

    def call(self, inputs, training=None):
        z = self.checked_inputs(inputs)
        work = logits_dtype(self.compute_dtype)
        u = self._project(tf.cast(z, work))
        positive = u > 0
        scale = self._code_scale()
        hard = tf.where(positive, tf.constant(scale, work), tf.constant(-scale, work))
        codes = self._sign_codes(positive)
        # Value exactly the code vector, gradient straight through (to u).
        quantized = tf.cast(hard, self.compute_dtype) + tf.cast(u - tf.stop_gradient(u), self.compute_dtype)

        flat = tf.reshape(u, [-1, self.code_dim])
        commitment = self._commitment(flat, tf.reshape(hard, [-1, self.code_dim]))
        logits = self._bit_logits(flat)
        entropy = ops.safe_mean(tf.reduce_sum(binary_entropy_from_logits(logits), axis=-1))
        count = ops.all_reduce_sum(tf.cast(tf.shape(flat)[0], work))
        if self.codebook_entropy == "exact":
            # log q(k | z) = sum_i log sigmoid(-l_i) + l . b_k: one [N, d] x [d, 2^d] product.
            bits = tf.cast(tf.bitwise.bitwise_and(tf.range(self.num_codes)[:, None], self._bit_weights()) > 0, work)
            log_q = tf.reduce_sum(tf.math.log_sigmoid(-logits), -1, keepdims=True) + tf.matmul(
                logits, bits, transpose_b=True)
            mean_q = ops.all_reduce_sum(tf.reduce_sum(tf.exp(log_q), axis=0)) / tf.maximum(count, 1.0)
            codebook_entropy = -tf.reduce_sum(mean_q * tf.math.log(tf.maximum(mean_q, tf.cast(1e-30, work))))
        else:
            prob_sum = ops.all_reduce_sum(tf.reduce_sum(tf.sigmoid(logits), axis=0))
            mean_p = prob_sum / tf.maximum(count, 1.0)
            codebook_entropy = tf.reduce_sum(binary_entropy(mean_p))
        penalty = entropy - self.diversity_gamma * codebook_entropy
        loss = self.commitment_cost * commitment + self.entropy_weight * penalty
        return {
            "quantized": quantized,
            "codes": codes,
            "loss": loss,
            "commitment": commitment,
            "entropy": entropy,
            "codebook_entropy": codebook_entropy,
            "perplexity": ops.usage_perplexity(codes, self.num_codes),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "code_dim": self.code_dim,
                "entropy_weight": self.entropy_weight,
                "commitment_cost": self.commitment_cost,
                "diversity_gamma": self.diversity_gamma,
                "temperature": self.temperature,
                "codebook_entropy": self.codebook_entropy,
            }
        )
        return config
