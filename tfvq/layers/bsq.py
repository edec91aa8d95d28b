"""Binary spherical quantization (BSQ): the sign of a unit vector, scaled back onto the sphere.

Zhao, Xiong, Krähenbühl, "Image and Video Tokenization with Binary Spherical Quantization", 2024
(arXiv:2406.07548; ICLR 2025), §3 (BSQ and its entropy regulariser).
"""

import math

import keras
import tensorflow as tf

from tfvq.layers import ops
from tfvq.layers.lfq import LookupFreeQuantizer


@keras.saving.register_keras_serializable(package="tfvq")
class BinarySphericalQuantizer(LookupFreeQuantizer):
    """Binary spherical quantization (Zhao et al. 2024, BSQ).

    The input `v` (d = `code_dim` channels) is projected onto the unit sphere, `u = v / ||v||`, and each channel
    is quantized to its sign, scaled so the code is on the sphere too: `q = sign(u) / sqrt(d)` (`sign(0) = -1`,
    as `LookupFreeQuantizer`). The implicit codebook is the `2^d` corners `{-1, +1}^d / sqrt(d)`, never stored;
    codes are LFQ's (`sum_i [u_i > 0] 2^i`, bit i is channel i). The gradient is straight through from `q` to
    `u` (value `q` exactly: the layer returns `q + (u - sg[u])`), so it passes through the projection. Every
    code is at the same distance from the origin, so the quantization error is bounded,
    `||u - q||^2 = 2 - 2 u.q <= 2 - 2 / sqrt(d)`, whatever the input's scale.

    Entropy regulariser (the paper's, as LFQ's): `entropy_weight * (E_u[H(q(c|u))] - diversity_gamma *
    H(E_u[q(c|u)]))` with the soft assignment `q(c|u) ∝ exp(tau c.u)` over the codes. Because the codes are a
    product of per-channel signs, it factorises over bits, `q(c|u) = prod_i sigmoid(2 tau c_i u_i)`: so

    * the per-sample entropy is exact, `H(q(c|u)) = sum_i H(p_i)` with `p_i = p(c_i > 0 | u)` (the
      factorisation the paper derives before its approximation);
    * the codebook entropy is the paper's approximation (its eq. 8, "Use approx. (Eq 8)" in the authors'
      results): `H(E_u[q(c|u)]) ~ sum_i H(E_u[p_i])`, the entropy of the product of the per-bit batch means
      (`codebook_entropy="factorized"`, the default here). It is an upper bound of the exact entropy (a joint
      entropy is at most the sum of its marginals'); `codebook_entropy="exact"` computes the exact one over all
      `2^d` codes as `LookupFreeQuantizer` does (up to d = 16). Batch means are over the global batch (sums
      all-reduced across replicas).

    `temperature` T sets `tau = 2 d / T`: `p_i = sigmoid(4 sqrt(d) u_i / T)`, LFQ's soft assignment of
    `sqrt(d) u` (the sphere scaled so its codes are +-1), so a channel on its code is 98% certain at T = 1 for
    any d. The commitment term is `mean_n ||u_n - sg[q_n]||^2` (squared distances on the sphere, as the
    authors' code; their configs set its weight to 0, the default here).

    Residual stacks (`ResidualQuantizer`): the stack approximates `u` (`residual_target`), and stage k adds a
    code of norm `g^-k` (`residual_gain`, below): the input scale of a later stage does not matter (it is
    projected), only the scale of what it adds.

    Args:
      code_dim: d, the number of bits (1..30).
      entropy_weight: the weight of the entropy penalty.
      commitment_cost: the weight of `mean ||u - sg[q]||^2`.
      diversity_gamma: the weight of the codebook entropy inside the penalty (the paper's gamma; 1 is
        `E[H] - H[E]`).
      temperature: T of the soft assignment (see above).
      codebook_entropy: "factorized" (the paper's eq. 8; default) or "exact".
      **kwargs: passed to `keras.layers.Layer`.

    Returns (from `call`): as `LookupFreeQuantizer`: `quantized` `[..., d]` on the sphere, `codes` int32 `[...]`,
    and scalars `loss`, `commitment`, `entropy`, `codebook_entropy`, `perplexity`.

    Example:
      >>> bsq = BinarySphericalQuantizer(code_dim=8)
      >>> out = bsq(tf.random.normal([2, 4, 4, 8]))
      >>> out["codes"].shape, float(tf.norm(out["quantized"][0, 0, 0]))
      (TensorShape([2, 4, 4]), 1.0)

    References:
      Zhao, Xiong, Krähenbühl, Image and Video Tokenization with Binary Spherical Quantization, 2024, §3
      (eq. 8: the factorised codebook entropy).
    """

    residual_gain = 1.0 / math.sqrt(1.0 - 2.0 / math.pi)
    """`1 / sqrt(1 - 2/pi)` ~ 1.66: how much `ResidualQuantizer` divides each later stage's code vector by.

    A residual `r` with roughly independent, symmetric channels is best approached along `sign(r) / sqrt(d)`
    by a vector of norm `E|r_i| sqrt(d) ~ sqrt(2/pi) ||r||`, which leaves `sqrt(1 - 2/pi) ||r|| ~ 0.60 ||r||`:
    the residual shrinks by that factor per stage, so the stage's code norm should too. (A gain of 2, LFQ's,
    shrinks the codes faster than the residuals at d >= 8, and the error stops falling after 4 stages.)"""

    def __init__(
        self,
        code_dim,
        entropy_weight=0.1,
        commitment_cost=0.0,
        diversity_gamma=1.0,
        temperature=1.0,
        codebook_entropy="factorized",
        **kwargs,
    ):
        super().__init__(
            code_dim,
            entropy_weight=entropy_weight,
            commitment_cost=commitment_cost,
            diversity_gamma=diversity_gamma,
            temperature=temperature,
            codebook_entropy=codebook_entropy,
            **kwargs,
        )

    def _project(self, z):
        """`u = z / ||z||` (in the work dtype; the zero vector stays 0)."""
        return tf.math.l2_normalize(z, axis=-1, epsilon=1e-12)

    def residual_target(self, z):
        """`u = z / ||z||`, what `quantized` approximates: what a `ResidualQuantizer` of BSQ stages refines."""
        return self._project(z)

    def _code_scale(self):
        return 1.0 / math.sqrt(self.code_dim)

    def _commitment(self, flat, hard):
        return ops.safe_mean(tf.reduce_sum(tf.square(flat - hard), axis=-1))

    def _bit_logits(self, flat):
        return (4.0 * math.sqrt(self.code_dim) / self.temperature) * flat
