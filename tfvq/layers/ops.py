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


def scaled_distance_logits(x, codebook, scale=1.0):
    """Logits `-scale * ||x_n - e_k||^2` in one fused matrix product.

    HQA eq. 3 (scale 1) and Algorithm 2 (scale 1/2). The expansion
    `-s||x||^2 + 2s x.e_k - s||e_k||^2` is evaluated as
    `[||x||^2, x] @ [[-s 1^T], [2s E^T]] + (-s ||e_k||^2)`, a `MatMul` followed by
    a `BiasAdd` that TensorFlow fuses into one kernel, so the `[N, K]` result is
    written once and no further elementwise pass over it is needed.

    Args:
      x: `[N, D]` float tensor.
      codebook: `[K, D]` float tensor.
      scale: positive float.

    Returns:
      `[N, K]` logits.
    """
    x_sq = tf.reduce_sum(tf.square(x), axis=-1, keepdims=True)
    features = tf.concat([x_sq, x], axis=-1)  # [N, D + 1]
    k = tf.shape(codebook)[0]
    weights = tf.concat([tf.fill([1, k], tf.cast(-scale, x.dtype)), (2.0 * scale) * tf.transpose(codebook)], axis=0)
    bias = -scale * tf.reduce_sum(tf.square(codebook), axis=-1)
    return tf.nn.bias_add(tf.matmul(features, weights), bias)


def gaussian_log_density_logits(x, means, log_variances=None):
    """Log-densities of `x` under each component of a Gaussian mixture.

    These are the unnormalised log responsibilities of RRVQ eq. 6 (posterior)
    and eq. 7 (prior): component k has mean `means[k]` and diagonal variance
    `exp(log_variances[k])`, so

        logit_k = -1/2 sum_d (x_d - mu_kd)^2 / s2_kd - 1/2 sum_d log s2_kd - D/2 log 2 pi.

    The log-determinant term is what lets a code with a broad variance win far
    from every mean and a code with a narrow variance win close to its own mean.
    The quadratic form is expanded so that the whole expression is one matrix
    product plus a bias (a single fused kernel, no `[N, K, D]` tensor):

        diagonal:  [x*x, x] @ [[-1/2 P^T], [(mu P)^T]] + b,   P = 1 / s2
        isotropic: [|x|^2, x] @ [[-1/2 p^T], [(p mu)^T]] + b  (p_k = 1 / s2_k)
        unit:      [|x|^2, x] @ [[-1/2 1^T], [mu^T]] + b

    with `b_k = -1/2 sum_d mu_kd^2 P_kd - 1/2 log det_k - D/2 log 2 pi`.

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
    diagonal = log_variances is not None and log_variances.shape[-1] != 1
    if diagonal:
        precision = tf.exp(-log_variances)  # [K, D]
        first = tf.square(x)
        first_w = -0.5 * tf.transpose(precision)
        log_det = tf.reduce_sum(log_variances, axis=-1)
    else:
        if log_variances is None:
            precision = tf.ones_like(means[:, :1])  # [K, 1]
            log_det = tf.zeros_like(means[:, 0])
        else:
            precision = tf.exp(-log_variances)  # [K, 1]
            log_det = dim * log_variances[:, 0]
        first = tf.reduce_sum(tf.square(x), axis=-1, keepdims=True)
        first_w = -0.5 * tf.transpose(precision)  # [1, K]
    weights = tf.concat([first_w, tf.transpose(means * precision)], axis=0)
    bias = -0.5 * tf.reduce_sum(tf.square(means) * precision, axis=-1) - 0.5 * log_det + const
    return tf.nn.bias_add(tf.matmul(tf.concat([first, x], axis=-1), weights), bias)


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


def expected_squared_distance(x, probs, codebook):
    """Probabilistic commitment `E_q ||x - e_k||^2 = sum_k q_k ||x - e_k||^2`.

    HQA eq. 4 (the probabilistic commitment loss) and Algorithm 2 line 20.
    Expanded as `||x||^2 - 2 x.(q @ E) + q @ ||E||^2`, so it costs one
    `[N, K] x [K, D]` product and no elementwise pass over `[N, K]`.

    Args:
      x: `[N, D]` inputs.
      probs: `[N, K]` probabilities of q.
      codebook: `[K, D]` codes.

    Returns:
      `[N]` expected squared distances.
    """
    x_sq = tf.reduce_sum(tf.square(x), axis=-1)
    mean_code = tf.matmul(probs, codebook)  # [N, D]
    e_sq = tf.reduce_sum(tf.square(codebook), axis=-1, keepdims=True)  # [K, 1]
    value = x_sq - 2.0 * tf.reduce_sum(x * mean_code, axis=-1) + tf.matmul(probs, e_sq)[:, 0]
    return tf.maximum(value, 0.0)


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


def code_counts(codes, num_codes):
    """How many times each of `num_codes` codes occurs in int32 `codes` (float32 `[K]`)."""
    return tf.math.bincount(
        tf.reshape(codes, [-1]), minlength=num_codes, maxlength=num_codes, dtype=tf.float32
    )


def perplexity(counts):
    """Perplexity `exp(H(counts / sum(counts)))` of code usage counts.

    A measure of code usage: it equals K when every code is used equally and 1
    when a single code is used (and 1 for no codes at all).

    Args:
      counts: `[K]` non-negative usage counts (see `code_counts`).

    Returns:
      A scalar.
    """
    total = tf.maximum(tf.reduce_sum(counts), 1.0)
    avg = counts / total
    return tf.exp(-tf.reduce_sum(avg * tf.math.log(avg + 1e-10)))


def safe_mean(x):
    """Mean of all elements of `x`, and 0 (not NaN) for an empty tensor."""
    count = tf.maximum(tf.cast(tf.size(x), x.dtype), 1.0)
    return tf.reduce_sum(x) / count
