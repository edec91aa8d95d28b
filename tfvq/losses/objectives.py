"""Training objectives built on top of per-group KL terms."""

import numpy as np
import tensorflow as tf

from tfvq.losses.likelihoods import _to_tensor

__all__ = ["free_bits_kl"]


def free_bits_kl(kl, free_bits):
    """IAF "free bits" (kl_min) KL term: sum_g max(mean_batch KL_g, lambda).

    Implements the KL part of the free-bits objective of Kingma et al. 2016
    (IAF, "free bits" section of the appendix),

      L~_lambda = E_x[E_q[log p(x|z)]] - sum_{j=1}^{K} max(lambda, E_x[KL(q(z_j|x) || p(z_j))]),

    where the latent variables are divided into K groups and the expectation
    over x is taken over the minibatch. This function returns the subtracted
    sum, i.e. the quantity to *add* to a loss.

    The floor means a group whose batch-averaged KL is below lambda contributes
    exactly lambda and receives no gradient (the encoder is free to use those
    lambda nats "for free"); a group above the floor contributes its batch mean
    and each element kl[i, g] receives gradient 1 / batch.

    Args:
      kl: Float tensor of shape [batch, groups]: per-example KL in nats, already
        summed within each group. Reshape a [batch, ...] tensor to
        [batch, groups] before calling (e.g. tf.reshape(kl, [batch, -1]) for one
        group per latent position).
      free_bits: lambda >= 0, in nats per group: a scalar (the same floor for
        every group) or a vector [groups] (a floor per group, e.g. lambda times
        the number of latents of each layer).

    Returns:
      Scalar tensor with `kl`'s dtype.

    Raises:
      ValueError: If `kl` does not have rank 2, or `free_bits` is concretely
        known to be negative (or is not a scalar).
    """
    kl = _to_tensor(kl)
    if not kl.dtype.is_floating:
        raise TypeError(f"free_bits_kl: `kl` must be floating, got {kl.dtype.name}.")
    if kl.shape.rank is not None and kl.shape.rank != 2:
        raise ValueError(
            "free_bits_kl: expected `kl` of rank 2 with shape [batch, groups] "
            f"(KL per example, summed within each group), got shape {kl.shape} "
            f"(rank {kl.shape.rank}). Reshape a [batch, ...] KL tensor to "
            "[batch, groups] first, e.g. tf.reshape(kl, [tf.shape(kl)[0], -1]).")
    if kl.shape.rank is None:
        kl = tf.ensure_shape(kl, [None, None])

    if tf.is_tensor(free_bits):
        free_bits_value = tf.get_static_value(free_bits)
    else:
        free_bits_value = np.asarray(free_bits)
    if free_bits_value is not None:
        free_bits_value = np.asarray(free_bits_value)
        if free_bits_value.ndim > 1:
            raise ValueError(
                f"free_bits_kl: free_bits must be a scalar or a vector [groups], got shape "
                f"{free_bits_value.shape}.")
        if free_bits_value.ndim == 1 and kl.shape[1] is not None and free_bits_value.shape[0] != kl.shape[1]:
            raise ValueError(
                f"free_bits_kl: free_bits has {free_bits_value.shape[0]} floors for {kl.shape[1]} groups.")
        if not np.all(free_bits_value >= 0):  # also rejects NaN
            raise ValueError(f"free_bits_kl: free_bits must be >= 0, got {free_bits_value}.")
    free_bits = tf.cast(free_bits, kl.dtype)

    mean_kl = tf.reduce_mean(kl, axis=0)  # [groups]
    return tf.reduce_sum(tf.maximum(mean_kl, free_bits))
