"""Model families: HQA and its VQ-VAE baseline."""

from tfvq.models.hqa import HQA, HQALayer, check_images
from tfvq.models.vqvae import VQVAE

__all__ = ["HQA", "HQALayer", "VQVAE", "check_images"]
