"""The maths of vector quantisation as small pure functions.

Every quantizer in `tfvq.layers` is built from these functions, and each one is
tested against a NumPy oracle. All of them take flat inputs: `x` is `[N, D]`
(N positions, D = code_dim) and a codebook is `[K, D]` (K = num_codes). A
batch of HQA layer-1 MNIST encodings `[512, 16, 16, 64]` is flattened to
`[131072, 64]` before it gets here.

Distances are formed by the expansion `||x||^2 - 2 x.E^T + ||E||^2` with one
plain matrix product: nothing of shape `[N, K, D]` is ever materialised, which
is what makes a training step at N = 131072, K = 256 affordable on a CPU.
"""

import math

import tensorflow as tf

_LOG_2PI = math.log(2.0 * math.pi)


def squared_distances(x, codebook):
    """Pairwise squared Euclidean distances `||x_n - e_k||^2`.

    Used by HQA eq. 1 (nearest code) and eq. 3 (stochastic posterior logits).

    Args:
      x: `[N, D]` float tensor.
      codebook: `[K, D]` float tensor.

    Returns:
      `[N, K]` tensor of non-negative squared distances. The expansion can give
      tiny negative values by cancellation; they are clamped to zero.
    """
    x_sq = tf.reduce_sum(tf.square(x), axis=-1, keepdims=True)  # [N, 1]
    e_sq = tf.reduce_sum(tf.square(codebook), axis=-1)  # [K]
    cross = tf.matmul(x, codebook, transpose_b=True)  # [N, K]
    return tf.maximum(x_sq - 2.0 * cross + e_sq, 0.0)


def gaussian_log_density_logits(x, means, log_variances=None):
    """Log-densities of `x` under each component of a Gaussian mixture.

    These are the unnormalised log responsibilities of RRVQ eq. 6 (posterior)
    and eq. 7 (prior): component k has mean `means[k]` and diagonal variance
    `exp(log_variances[k])`, so

        logit_k = -1/2 sum_d (x_d - mu_kd)^2 / s2_kd - 1/2 sum_d log s2_kd - D/2 log 2 pi.

    The log-determinant term is what lets a code with a broad variance win far
    from every mean and a code with a narrow variance win close to its own mean.
    The quadratic form is expanded into two matrix products,
    `(x*x) @ (1/s2)^T - 2 x @ (mu/s2)^T + sum_d mu^2/s2`, so no `[N, K, D]`
    tensor is formed.

    Args:
      x: `[N, D]` float tensor (embeddings).
      means: `[K, D]` codebook of means.
      log_variances: `None` for unit variances (the sigma = 1 ablation of RRVQ
        Table G.1), `[K, 1]` for one variance per code (isotropic) or `[K, D]`
        for diagonal variances.

    Returns:
      `[N, K]` log-densities; a softmax over the last axis gives the
      responsibilities.
    """
    dim = tf.cast(tf.shape(x)[-1], x.dtype)
    const = -0.5 * dim * tf.constant(_LOG_2PI, x.dtype)
    if log_variances is None:
        return -0.5 * squared_distances(x, means) + const
    precision = tf.exp(-log_variances)  # [K, 1] or [K, D]
    if log_variances.shape[-1] == 1:
        # Isotropic: one variance per code scales the Euclidean distance.
        quad = squared_distances(x, means) * tf.transpose(precision)
        log_det = dim * tf.transpose(log_variances)  # [1, K]
    else:
        quad = (
            tf.matmul(tf.square(x), precision, transpose_b=True)
            - 2.0 * tf.matmul(x, means * precision, transpose_b=True)
            + tf.reduce_sum(tf.square(means) * precision, axis=-1)
        )
        quad = tf.maximum(quad, 0.0)
        log_det = tf.reduce_sum(log_variances, axis=-1)  # [K]
    return -0.5 * quad - 0.5 * log_det + const


def categorical_entropy(logits):
    """Entropy `-sum_k q_k log q_k` of the categorical given by `logits`.

    This is the entropy term of HQA eq. 4 / Algorithm 2 (there written with the
    opposite sign as `L_entropy = sum_k p log p`). Computed from `log_softmax`,
    so it stays finite when some probabilities underflow to zero.

    Args:
      logits: `[..., K]` unnormalised log-probabilities.

    Returns:
      `[...]` entropies in nats.
    """
    log_q = tf.nn.log_softmax(logits, axis=-1)
    return -tf.reduce_sum(tf.exp(log_q) * log_q, axis=-1)


def expected_squared_distance(logits, distances):
    """Probabilistic commitment `E_q ||z_e - e_k||^2 = sum_k q_k d_k`.

    HQA eq. 4 (the probabilistic commitment loss) and Algorithm 2 line 20.

    Args:
      logits: `[..., K]` logits of q.
      distances: `[..., K]` squared distances from each position to each code.

    Returns:
      `[...]` expected squared distances.
    """
    return tf.reduce_sum(tf.nn.softmax(logits, axis=-1) * distances, axis=-1)


def categorical_kl(q_logits, p_logits):
    """Analytic `KL(q || p)` between two categoricals given as logits.

    The per-latent KL of RRVQ eq. 5, computed exactly (no sampling):
    `sum_k q_k (log q_k - log p_k)`.

    Args:
      q_logits: `[..., K]` logits of q.
      p_logits: `[..., K]` logits of p (broadcastable to q's shape).

    Returns:
      `[...]` KL divergences in nats, non-negative up to rounding.
    """
    log_q = tf.nn.log_softmax(q_logits, axis=-1)
    log_p = tf.nn.log_softmax(p_logits, axis=-1)
    return tf.reduce_sum(tf.exp(log_q) * (log_q - log_p), axis=-1)


def perplexity(code_probs):
    """Perplexity `exp(H(mean_n q_n))` of the average code distribution.

    A measure of code usage: it equals K when every code is used equally and 1
    when a single code is used.

    Args:
      code_probs: `[N, K]` probabilities (one-hot rows for hard codes).

    Returns:
      A scalar.
    """
    count = tf.maximum(tf.cast(tf.shape(code_probs)[0], code_probs.dtype), 1.0)
    avg = tf.reduce_sum(code_probs, axis=0) / count
    return tf.exp(-tf.reduce_sum(avg * tf.math.log(avg + 1e-10)))


def safe_mean(x):
    """Mean of all elements of `x`, and 0 (not NaN) for an empty tensor."""
    count = tf.maximum(tf.cast(tf.size(x), x.dtype), 1.0)
    return tf.reduce_sum(x) / count
