"""Model families and their training recipes (the zoo's presets name them: `tfvq.zoo.presets`).

The contract every model follows is in `tfvq.models.base` (`ImageModel`,
`CodeModel`). HQA and its VQ-VAE baseline; the hierarchical VAE backbone
with its two latent layers: RRVQ-VAE (also the rVQ-VAE baseline) and the
Spatial-VAE; HQA layer 1's autoencoder with today's quantizers
(`tfvq.models.quantized_ae`: `FSQAutoencoder`, `LFQAutoencoder`,
`RVQAutoencoder`, `VQAutoencoder`). Each family
trains under its recipe dataclass (`tfvq.models.recipes`: `HQARecipe`,
`VQVAERecipe`, `HierarchicalVAERecipe`).
"""

from tfvq.models.base import CodeLayout, CodeModel, Endpoint, ImageModel, OptimizerRecipe, Stage, as_seed, \
    to_float_images
from tfvq.models.hierarchical_vae import HierarchicalVAE
from tfvq.models.hqa import HQA, HQALayer
from tfvq.models.quantized_ae import FSQAutoencoder, LFQAutoencoder, QuantizedAutoencoder, RVQAutoencoder, \
    VQAutoencoder, quantized_autoencoder
from tfvq.models.recipes import HierarchicalVAERecipe, HQARecipe, Recipe, UnknownRecipeKeyError, VQVAERecipe
from tfvq.models.rrvq_vae import RRVQVAE
from tfvq.models.spatial_vae import SpatialVAE
from tfvq.models.vqvae import VQVAE

__all__ = ["CodeLayout", "CodeModel", "Endpoint", "FSQAutoencoder", "HQA", "HQALayer", "HQARecipe", "HierarchicalVAE",
           "HierarchicalVAERecipe", "ImageModel", "LFQAutoencoder", "OptimizerRecipe", "QuantizedAutoencoder", "RRVQVAE",
           "RVQAutoencoder", "Recipe", "SpatialVAE", "Stage", "UnknownRecipeKeyError", "VQAutoencoder", "VQVAE", "VQVAERecipe",
           "as_seed", "quantized_autoencoder", "to_float_images"]
