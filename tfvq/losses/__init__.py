"""Likelihoods, metrics and objectives for discrete VQ autoencoders."""

from tfvq.losses.likelihoods import bits_per_dim
from tfvq.losses.likelihoods import discretized_logistic_log_prob
from tfvq.losses.likelihoods import mse
from tfvq.losses.objectives import free_bits_kl

__all__ = [
    "bits_per_dim",
    "discretized_logistic_log_prob",
    "free_bits_kl",
    "mse",
]
