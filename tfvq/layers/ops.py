"""The maths of vector quantisation as small pure functions.

Every quantizer in `tfvq.layers` is built from these functions, and each one is
tested against a NumPy oracle. All of them take flat inputs: `x` is `[N, D]`
(N positions, D = code_dim) and a codebook is `[K, D]` (K = num_codes). A
batch of HQA layer-1 MNIST encodings `[512, 16, 16, 64]` is flattened to
`[131072, 64]` before it gets here.

Distances are formed by the expansion `||x||^2 - 2 x.E^T + ||E||^2` with one
plain matrix product: nothing of shape `[N, K, D]` is ever materialised, which
is what makes a training step at N = 131072, K = 256 affordable on a CPU.

Mixed precision (`tfvq.layers.precision`): inputs `x` may be bfloat16 or
float16 (the layers' compute dtype) while codebooks stay float32 (variables).
The matrix products then run in the 16-bit compute dtype (the kernels
accumulate in float32; TensorFlow's CPU kernels round the product's output to
16 bits), and what feeds a softmax -- logits, squared distances, Gaussian
log-densities -- is cast to float32 right after the product, with the
per-code bias (`||e_k||^2`, the log-determinant) added in float32. Everything
downstream (softmax, Gumbel noise, entropy, KL, commitment) is float32. With
float32 or float64 inputs nothing changes: one fused `MatMul+BiasAdd`.

Besides the maths, what every layer of `tfvq.layers` shares at its edges:

* the boundary checks (`checked_input`, `check_last_dim`, `checked_codes`):
  one check of an input's dtype, rank and last dimension for every
  quantizer, the residual stack and the Gaussian latent, so each error says
  the same thing in the same words;
* the replica helpers (`all_reduce_sum`, `all_gather_rows`,
  `usage_perplexity`, `replica_uniform`): statistics kept outside gradients
  (EMA sums, code usage, batch moments) are summed over the replicas of a
  `tf.distribute` strategy before they are assigned, and random draws are
  sliced by replica;
* `stateless_seed`: a call's seed, or the next one of the layer's stream.
"""

import math

import numpy as np

import tensorflow as tf

from tfvq.layers.precision import is_low_precision, logits_dtype, to_float32

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


def distance_scores(x, codebook, scale=1.0):
    """`scale * (||x_n - e_k||^2 - ||x_n||^2) = scale * (||e_k||^2 - 2 x_n.e_k)`, one fused kernel.

    The nearest code of HQA eq. 1 is the argmin of these scores (scale 1):
    dropping the row constant `||x_n||^2` leaves the argmin, the softmax and
    Gumbel samples of HQA eq. 3 (scale -s) unchanged, and saves passes over
    the `[N, K]` tensor. The scale is folded into the `[K, D]` weights and the
    matrix product and bias are fused by TensorFlow into one kernel.

    Mixed precision: for 16-bit `x` the product `x.e_k` runs in `x`'s dtype,
    its result is cast to float32 and the bias `scale ||e_k||^2` (from the
    codebook in float32) is added in float32; the scores are float32, since
    they feed a softmax (HQA eq. 3). Dropping `||x_n||^2` also keeps the
    16-bit rounding small: it is relative to `||e_k||^2 - 2 x_n.e_k`, not to
    the full squared distance.

    Args:
      x: `[N, D]` float tensor.
      codebook: `[K, D]` float tensor (float32 under mixed precision).
      scale: float multiplying the scores.

    Returns:
      `[N, K]` scores, float32 for 16-bit `x`, else in `x`'s dtype.
    """
    out_dtype = logits_dtype(x.dtype)
    codebook = tf.cast(codebook, out_dtype)
    bias = scale * tf.reduce_sum(tf.square(codebook), axis=-1)
    return _product_plus_bias(x, tf.cast((-2.0 * scale) * codebook, x.dtype), bias)


@tf.custom_gradient
def _product_plus_bias(x, weights, bias):
    """`x @ weights^T` (in `x`'s dtype), widened to `bias`'s dtype, `+ bias`: `distance_scores`' kernel.

    The gradient is autodiff's except for the bias: its gradient, the column
    sums of the `[N, K]` upstream gradient, is formed as the product
    `1^T @ G` (float32 accumulation, in the upstream's dtype), which on CPU
    is a third of the time of TensorFlow's `BiasAddGrad` reduction over N.
    """
    out = tf.nn.bias_add(tf.cast(tf.matmul(x, weights, transpose_b=True), bias.dtype), bias)

    def grad(upstream):
        g = tf.cast(upstream, x.dtype)
        grad_x = tf.matmul(g, weights)
        grad_weights = tf.matmul(g, x, transpose_a=True)
        grad_bias = tf.matmul(tf.ones([1, tf.shape(upstream)[0]], upstream.dtype), upstream)[0]
        return grad_x, grad_weights, grad_bias

    return out, grad


def scaled_distance_logits(x, codebook, scale=1.0):
    """Logits `-scale * ||x_n - e_k||^2` in one fused matrix product.

    HQA eq. 3 (scale 1) and Algorithm 2 (scale 1/2). The expansion
    `-s||x||^2 + 2s x.e_k - s||e_k||^2` is evaluated as
    `[||x||^2, x] @ [[-s 1^T], [2s E^T]] + (-s ||e_k||^2)`, a `MatMul` followed by
    a `BiasAdd` that TensorFlow fuses into one kernel, so the `[N, K]` result is
    written once and no further elementwise pass over it is needed.

    Mixed precision: for 16-bit `x` the logits are float32,
    `distance_scores(x, codebook, -s) - s ||x||^2` with the row term formed
    in float32 (a 16-bit `||x||^2` inside the product would round the whole
    distance).

    Args:
      x: `[N, D]` float tensor.
      codebook: `[K, D]` float tensor.
      scale: positive float.

    Returns:
      `[N, K]` logits, float32 for 16-bit `x`, else in `x`'s dtype.
    """
    if is_low_precision(x.dtype):
        x_sq = tf.reduce_sum(tf.square(to_float32(x)), axis=-1, keepdims=True)
        return distance_scores(x, codebook, -scale) - scale * x_sq
    codebook = tf.cast(codebook, x.dtype)
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

    Mixed precision: for 16-bit `x` the weights and the bias are formed in
    float32 from the float32 codebooks, the product `[x*x, x] @ W` runs in
    `x`'s dtype (`x*x` formed in float32, then rounded), and its result is
    cast to float32 before the bias is added: the log-densities feed a
    softmax (RRVQ eq. 6-7) and the KL (eq. 5), so they are float32.

    Args:
      x: `[N, D]` float tensor (embeddings).
      means: `[K, D]` codebook of means.
      log_variances: `None` for unit variances (the sigma = 1 ablation of RRVQ
        Table G.1), `[K, 1]` for one variance per code (isotropic) or `[K, D]`
        for diagonal variances.

    Returns:
      `[N, K]` log-densities (float32 for 16-bit `x`, else in `x`'s dtype); a
      softmax over the last axis gives the responsibilities.
    """
    compute_dtype = x.dtype
    out_dtype = logits_dtype(compute_dtype)
    x = tf.cast(x, out_dtype)
    means = tf.cast(means, out_dtype)
    if log_variances is not None:
        log_variances = tf.cast(log_variances, out_dtype)
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
    features = tf.concat([first, x], axis=-1)
    if compute_dtype != out_dtype:  # the product in 16 bits, the log-densities in float32
        product = tf.matmul(tf.cast(features, compute_dtype), tf.cast(weights, compute_dtype))
        return tf.nn.bias_add(tf.cast(product, out_dtype), bias)
    return tf.nn.bias_add(tf.matmul(features, weights), bias)


def categorical_entropy(logits):
    """Entropy `-sum_k q_k log q_k` of the categorical given by `logits`.

    This is the entropy term of HQA eq. 4 / Algorithm 2 (there written with the
    opposite sign as `L_entropy = sum_k p log p`). Computed from `log_softmax`,
    so it stays finite when some probabilities underflow to zero.

    Args:
      logits: `[..., K]` unnormalised log-probabilities.

    Returns:
      `[...]` entropies in nats (float32 for 16-bit logits, which are widened
      first).
    """
    log_q = tf.nn.log_softmax(to_float32(logits), axis=-1)
    return -tf.reduce_sum(tf.exp(log_q) * log_q, axis=-1)


def expected_squared_distance(x, probs, codebook):
    """Probabilistic commitment `E_q ||x - e_k||^2 = sum_k q_k ||x - e_k||^2`.

    HQA eq. 4 (the probabilistic commitment loss) and Algorithm 2 line 20.
    Expanded as `||x||^2 - 2 x.(q @ E) + q @ ||E||^2`, so it costs one
    `[N, K] x [K, D]` product and no elementwise pass over `[N, K]`.

    Mixed precision: for 16-bit `x` the product `q @ E` runs in `x`'s dtype
    and the rest (`||x||^2`, `q @ ||E||^2`, the sum) in float32; the result
    is float32.

    Args:
      x: `[N, D]` inputs.
      probs: `[N, K]` probabilities of q.
      codebook: `[K, D]` codes.

    Returns:
      `[N]` expected squared distances (float32 for 16-bit `x`).
    """
    out_dtype = logits_dtype(x.dtype)
    mean_code = tf.cast(tf.matmul(tf.cast(probs, x.dtype), tf.cast(codebook, x.dtype)), out_dtype)  # [N, D]
    x, probs, codebook = (tf.cast(t, out_dtype) for t in (x, probs, codebook))
    x_sq = tf.reduce_sum(tf.square(x), axis=-1)
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
      `[...]` KL divergences in nats, non-negative up to rounding (float32
      for 16-bit logits, which are widened first).
    """
    log_q = tf.nn.log_softmax(to_float32(q_logits), axis=-1)
    log_p = tf.nn.log_softmax(tf.cast(p_logits, log_q.dtype), axis=-1)
    return tf.reduce_sum(tf.exp(log_q) * (log_q - log_p), axis=-1)


def orthogonality_penalty(codebook):
    """`mean_{j,k} ((c_j . c_k) - [j = k])^2` of the l2-normalised codes `c_k`: `||C^ C^T - I||_F^2 / K^2`.

    The orthogonal regularisation of a codebook (Shin et al., "Exploration into Translation-Equivariant Image
    Quantization", ICASSP 2023): 0 when the codes are orthogonal, it pushes them apart in angle, so more of
    them stay in use. With K > D codes it cannot reach 0 (at least K - D of them are not orthogonal to the
    rest); its minimum then spreads the codes' directions evenly. Costs one `[K, D] x [D, K]` product.

    Args:
      codebook: `[K, D]` codes (float32).

    Returns:
      A scalar in the codebook's dtype.
    """
    normed = tf.math.l2_normalize(codebook, axis=-1, epsilon=1e-12)
    gram = tf.matmul(normed, normed, transpose_b=True)
    return tf.reduce_mean(tf.square(gram - tf.eye(tf.shape(gram)[0], dtype=gram.dtype)))


def code_counts(codes, num_codes):
    """How many times each of `num_codes` codes occurs in int32 `codes` (float32 `[K]`)."""
    codes = tf.reshape(codes, [-1])
    return tf.math.unsorted_segment_sum(tf.ones_like(codes, tf.float32), codes, num_codes)


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


@tf.function(jit_compile=True, autograph=False)
def _gumbel_perturbed(logits, uniform, temperature):
    """`(l - log(-log u)) / tau`: Gumbel-perturbed, tempered logits in one fused pass (all in the logits' dtype)."""
    return (logits - tf.math.log(-tf.math.log(uniform))) / temperature


@tf.function(jit_compile=True, autograph=False)
def _relaxed_logits_gradient(y, q, logits, g_y, r, a, b):
    """`y * (G E^T / tau - r) + q * (a l + b)` (see `relaxed_quantize`) in one fused pass.

    `g_y` (`G E^T / tau`) comes in the product dtype (16 bits under mixed
    precision) and is widened to the logits' dtype (float32) inside the
    kernel; the result is in the logits' dtype.
    """
    return y * (tf.cast(g_y, y.dtype) - r) + q * (a * logits + b)


def relaxed_quantize(logits, codebook, temperature, seed):
    """Relaxed one-hot sample, soft codebook lookup, entropy and E_q[logit] in one op.

    The training-time core of HQA Algorithm 2 (lines 14-20) and of RRVQ's
    relaxed samples. For logits `l` (`[N, K]`) it returns

    * `quantized = y @ codebook` with `y ~ RelaxedOneHotCategorical(tau, l)`:
      `y = softmax((l + g) / tau)`, `g = -log(-log u)`, `u ~ U(tiny, 1)` drawn
      with `tf.random.stateless_uniform(seed)`. This is exactly the draw of
      `tfd.RelaxedOneHotCategorical(tau, logits=l).sample(seed=seed)` (same
      seed, same values; tested), so the relaxation is TFP's.
    * `codes = argmax(y)`, the hard code of the sample (int32 `[N]`).
    * `entropy = H[q]` with `q = softmax(l)` (HQA eq. 4), `[N]`.
    * `expected_logit = sum_k q_k l_k`, `[N]`. With HQA's logits
      `l = -s ||z_e - e_k||^2` the probabilistic commitment of eq. 4 is
      `-expected_logit / s`.

    The gradient is written out rather than left to autodiff, because at HQA's
    size (N = 131072, K = 256) every `[N, K]` pass costs as much as a matrix
    product. With upstream gradients `G` (on `quantized`), `g_H`, `g_S`:

        dL/dl = y * (G E^T / tau - r) + q * ((g_S - g_H) * (l - S) + g_S),
        r = sum_k y_k (G E^T)_k / tau = (G . quantized) / tau,
        dL/dE = y^T G,

    where the softmax Jacobians of the sample, of H and of S are folded
    into one expression (dH/dl_j = -q_j (log q_j + H) and
    dS/dl_j = q_j (1 + l_j - S), with log q_j + H = l_j - S).

    The elementwise passes over `[N, K]` that are not a softmax, an argmax
    or a product -- the perturbed logits `(l + g) / tau` from `u`, and the
    logits' gradient above from `y`, `q`, `l`, `G E^T` and per-row scalars --
    are each one XLA-compiled kernel (`_gumbel_perturbed`,
    `_relaxed_logits_gradient`) instead of three and seven TensorFlow kernels
    that each read and write the whole `[N, K]` tensor. The softmaxes and
    reductions stay TensorFlow's (oneDNN's row softmax is faster on CPU than
    XLA's). XLA's `log` may differ from Eigen's in the last bit, so the
    relaxed sample equals TFP's to float rounding, and its codes exactly.

    Mixed precision: the two products with the codebook (`y @ E` forward,
    `G E^T` and `y^T G` backward) run in the codebook's dtype, so a 16-bit
    codebook (the compute dtype) gives a 16-bit `quantized`; everything over
    `[N, K]` besides -- the Gumbel noise, the relaxed sample `y`, `q`, the
    entropy, E_q[logit] and the logits' gradient -- is in the logits' dtype,
    float32 (a 16-bit `-log(-log u)` would clip the noise's tails and the
    softmax at temperature 0.01 would amplify its rounding 100-fold).

    Args:
      logits: `[N, K]` float logits of q (float32 under mixed precision).
      codebook: `[K, D]` codes, in the dtype the products run in.
      temperature: scalar Gumbel-softmax temperature (no gradient).
      seed: int32 `[2]` stateless seed.

    Returns:
      `(quantized [N, D], codes [N] int32, entropy [N], expected_logit [N])`,
      `quantized` in the codebook's dtype, the rest in the logits'.
    """
    dtype = logits.dtype
    product_dtype = codebook.dtype
    if isinstance(temperature, (int, float, np.floating)):
        temperature = tf.constant(temperature, dtype)  # directly, not through float32
    else:  # a tensor or a (Keras) variable
        temperature = tf.cast(tf.convert_to_tensor(temperature), dtype)
    uniform = replica_uniform(tf.shape(logits), seed, dtype, minval=np.finfo(dtype.as_numpy_dtype).tiny)
    # l - log(-log u) is TFP's `gumbel + logits` with gumbel = -log(-log u) (one fused kernel).
    noisy = _gumbel_perturbed(logits, uniform, temperature)
    codes = tf.argmax(noisy, axis=-1, output_type=tf.int32)

    @tf.custom_gradient
    def core(logits, codebook):
        y = tf.nn.softmax(noisy)
        y_product = tf.cast(y, product_dtype)
        quantized = tf.matmul(y_product, codebook)
        q = tf.nn.softmax(logits)
        expected = tf.reduce_sum(q * logits, axis=-1)
        # log-normaliser from the sampled code's column: lse = l_c - log q_c. The
        # Gumbel-max code c is drawn with probability q_c, so q_c is never a
        # value that underflows, and H = lse - E_q[l] needs no log-softmax pass.
        picked = tf.stack([tf.range(tf.shape(codes)[0], dtype=codes.dtype), codes], axis=1)
        lse = tf.gather_nd(logits, picked) - tf.math.log(tf.gather_nd(q, picked))
        entropy = tf.maximum(lse - expected, 0.0)

        def grad(g_quantized, g_entropy, g_expected):
            inv_t = 1.0 / temperature
            g_scaled = g_quantized * tf.cast(inv_t, g_quantized.dtype)  # [N, D]
            g_y = tf.matmul(g_scaled, codebook, transpose_b=True)  # [N, K], in the product dtype
            r = tf.reduce_sum(tf.cast(g_scaled, dtype) * tf.cast(quantized, dtype), axis=-1, keepdims=True)
            a = (g_expected - g_entropy)[:, None]
            b = g_expected[:, None] - a * expected[:, None]
            grad_logits = _relaxed_logits_gradient(y, q, logits, g_y, r, a, b)
            # Contracting over N as [D, N] x [N, K] is faster here than [K, N] x [N, D].
            grad_codebook = tf.transpose(tf.matmul(tf.cast(g_quantized, product_dtype), y_product, transpose_a=True))
            return grad_logits, grad_codebook

        return (quantized, entropy, expected), grad

    quantized, entropy, expected = core(logits, codebook)
    return quantized, codes, entropy, expected


def gaussian_kl(mean_q, log_scale_q, mean_p, log_scale_p):
    """Analytic `KL(N(mean_q, s_q^2) || N(mean_p, s_p^2))`, elementwise, in nats.

    The Gaussian KL of Kingma & Welling (2014, App. B), for one scalar
    dimension of a diagonal Gaussian (sum over the last axis for the KL of the
    whole vector), with `s = exp(log_scale)` a standard deviation:

        KL = log s_p - log s_q + (s_q^2 + (mean_q - mean_p)^2) / (2 s_p^2) - 1/2
           = 1/2 expm1(2 d) - d + 1/2 ((mean_q - mean_p) / s_p)^2,   d = log s_q - log s_p.

    The second form is the one evaluated: it is exactly zero when q == p and
    does not lose the small KL of a nearly matching pair to cancellation.
    Arguments broadcast against each other; no clamping is done here.

    16-bit arguments are widened to float32 first (the KL of RRVQ eq. 5 is
    summed over many positions; `expm1(2d) - 2d` cancels in 16 bits).

    Returns:
      Elementwise KL, non-negative up to rounding (float32 for 16-bit inputs).
    """
    mean_q, log_scale_q, mean_p, log_scale_p = (to_float32(t) for t in (mean_q, log_scale_q, mean_p, log_scale_p))
    d = log_scale_q - log_scale_p
    z = (mean_q - mean_p) * tf.exp(-log_scale_p)
    return 0.5 * tf.math.expm1(2.0 * d) - d + 0.5 * tf.square(z)


# ----------------------------------------------------------- boundary checks
def _label(layer):
    return f"{type(layer).__name__} '{layer.name}'"


def check_last_dim(layer, got, expected, words=None, what="inputs"):
    """Raises a ValueError naming what `layer` expected unless the last dimension `got` is `expected`.

    Args:
      layer: the layer whose input is checked (named in the message).
      got: the input's (static) last dimension.
      expected: the last dimension the layer takes.
      words: how the message names `expected`; default `code_dim=<expected>`.
      what: how the message names the input (`"inputs"`, `"prior"`).
    """
    if int(got) != int(expected):
        words = words or f"code_dim={expected}"
        raise ValueError(
            f"{_label(layer)} expects {what} whose last dimension is {words}, got last dimension {got}. "
            f"Project the {what} to {expected} channels first (e.g. a 1x1 convolution)."
        )


def checked_input(inputs, layer, last_dim, words=None, what="inputs", check=check_last_dim):
    """`inputs` as a tensor, after the one boundary check of every layer in `tfvq.layers`.

    A floating-point dtype (else a TypeError), at least one axis, and a last
    dimension of `last_dim` when it is known statically (else the ValueError
    of `check`, by default `check_last_dim`). The dtype is left as it came:
    the layer casts to its compute dtype.

    Args:
      inputs: `[..., last_dim]` floats.
      layer: the layer whose input is checked (named in the messages).
      last_dim: the last dimension the layer takes.
      words, what: passed to `check` (see `check_last_dim`).
      check: `check(layer, got, last_dim, words, what)` for a static last
        dimension; a layer with more to say (an odd width for a mean and a
        log-scale) passes its own.

    Returns:
      `inputs` as a `tf.Tensor`.
    """
    x = tf.convert_to_tensor(inputs)
    if not x.dtype.is_floating:
        raise TypeError(
            f"{_label(layer)} expects floating-point {what}, got dtype {x.dtype.name}. "
            f"Cast them first, e.g. tf.cast({what}, tf.float32)."
        )
    if x.shape.rank is not None and x.shape.rank < 1:
        raise ValueError(f"{_label(layer)} expects {what} of shape [..., {last_dim}], got a scalar.")
    if x.shape[-1] is not None:
        check(layer, x.shape[-1], last_dim, words, what)
    return x


def checked_codes(codes):
    """Integer `codes` (or digits) as an int32 tensor; a TypeError for any other dtype."""
    codes = tf.convert_to_tensor(codes)
    if not codes.dtype.is_integer:
        raise TypeError(f"codes must be integers, got dtype {codes.dtype.name}.")
    return tf.cast(codes, tf.int32)


def stateless_seed(seed, seed_generator):
    """An int32 `[2]` stateless seed: `seed` if given, else the next of `seed_generator` (a layer's stream)."""
    if seed is not None:
        return tf.cast(tf.convert_to_tensor(seed), tf.int32)
    return tf.cast(seed_generator.next(), tf.int32)


# ------------------------------------------------------------------ replicas
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


def replica_uniform(shape, seed, dtype, minval=0.0):
    """`tf.random.stateless_uniform(shape, seed, minval, 1)`, sliced by replica.

    Outside a `tf.distribute` replica context this is exactly
    `tf.random.stateless_uniform`. Inside one, replica r of R draws the r-th
    of R equal slices of the draw that one device would make for the whole
    global batch: its Philox counter starts `r * n / per_block` blocks further
    (n = number of elements of `shape`; a block holds 4 float32 or 2 float64
    values). So the replica id is folded into the random stream -- replicas
    never share noise -- and a mirrored step sees the same noise, example for
    example, as a one-device step on the same global batch with the same seed.
    Shards must be equal and `n` a multiple of the block size for the slices
    to line up exactly (the trainer drops remainders; K = 256 codes always
    gives a multiple of 4).
    """
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)
    alg = tf.raw_ops.StatelessRandomGetAlg()
    ctx = tf.distribute.get_replica_context()
    if ctx is not None and ctx.num_replicas_in_sync > 1:
        per_block = 2 if dtype == tf.float64 else 4
        n = tf.cast(tf.reduce_prod(shape), tf.uint64)
        replica = tf.cast(ctx.replica_id_in_sync_group, tf.uint64)
        counter = counter + tf.stack([replica * (n // per_block), tf.constant(0, tf.uint64)])
    rnd = tf.raw_ops.StatelessRandomUniformV2(shape=shape, key=key, counter=counter, alg=alg, dtype=dtype)
    minval = tf.constant(minval, dtype)
    return rnd * (tf.constant(1.0, dtype) - minval) + minval


MAX_COUNTED_CODES = 2**16
"""Codebooks up to this size count usage in a dense `[K]` vector; larger ones by `tf.unique`."""


def usage_perplexity(codes, num_codes):
    """Perplexity of the codes used by the global batch (`perplexity`), all replicas counted.

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
        return perplexity(all_reduce_sum(code_counts(codes, num_codes)))
    _, _, counts = tf.unique_with_counts(all_gather_rows(codes))
    return perplexity(tf.cast(counts, tf.float32))
