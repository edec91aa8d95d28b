"""Model families, each with its presets registered in the zoo beside its code.

The contract every model follows is in `tfvq.models.base` (`ImageModel`,
`CodeModel`). HQA and its VQ-VAE baseline; the hierarchical VAE backbone
with its two latent layers: RRVQ-VAE (also the rVQ-VAE baseline) and the
Spatial-VAE.
"""

from tfvq.models import hqa_presets, rrvq_presets  # noqa: F401  (register the families and presets)
from tfvq.models.base import CodeLayout, CodeModel, Endpoint, ImageModel, OptimizerRecipe, Stage, as_seed, \
    to_float_images
from tfvq.models.hierarchical_vae import HierarchicalVAE
from tfvq.models.hqa import HQA, HQALayer
from tfvq.models.rrvq_vae import RRVQVAE
from tfvq.models.spatial_vae import SpatialVAE
from tfvq.models.vqvae import VQVAE

__all__ = ["CodeLayout", "CodeModel", "Endpoint", "HQA", "HQALayer", "HierarchicalVAE", "ImageModel",
           "OptimizerRecipe", "RRVQVAE", "SpatialVAE", "Stage", "VQVAE", "as_seed", "to_float_images"]
