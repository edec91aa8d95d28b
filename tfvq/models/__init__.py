"""Model families: HQA and its VQ-VAE baseline; RRVQ-VAE (also the rVQ-VAE baseline) and the Spatial-VAE."""

from tfvq.models.hqa import HQA, HQALayer, check_images
from tfvq.models.rrvq_vae import RRVQVAE
from tfvq.models.spatial_vae import SpatialVAE
from tfvq.models.vqvae import VQVAE

__all__ = ["HQA", "HQALayer", "RRVQVAE", "SpatialVAE", "VQVAE", "check_images"]
