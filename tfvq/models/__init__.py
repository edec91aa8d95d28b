"""Model families and their training recipes (the zoo's presets name them: `tfvq.zoo.presets`).

The contract every model follows is in `tfvq.models.contract` (`ImageModel`,
`CodeModel`), with its parts beside it: images in and out (`pixels`), seeds
(`stateless_seeds`), codes (`code_checks`), training stages (`training`) and serving
signatures (`serving`). HQA and its VQ-VAE baseline; the hierarchical VAE backbone
with its two latent layers: RRVQ-VAE (also the rVQ-VAE baseline) and the
Spatial-VAE; HQA layer 1's autoencoder with today's quantizers
(`tfvq.models.quantized_ae`: `FSQAutoencoder`, `LFQAutoencoder`,
`RVQAutoencoder`, `VQAutoencoder`). Each family
trains under its recipe dataclass (`tfvq.models.recipes`: `HQARecipe`,
`VQVAERecipe`, `HierarchicalVAERecipe`).
"""

from tfvq.code_layout import CodeLayout
from tfvq.models.contract import CodeModel, ImageModel
from tfvq.models.hierarchical_vae import HierarchicalVAE
from tfvq.models.hqa import HQA, HQALayer
from tfvq.models.pixels import to_float_images
from tfvq.models.quantized_ae import FSQAutoencoder, LFQAutoencoder, QuantizedAutoencoder, RVQAutoencoder, \
    VQAutoencoder, quantized_autoencoder
from tfvq.models.recipes import HierarchicalVAERecipe, HQARecipe, Recipe, UnknownRecipeKeyError, VQVAERecipe
from tfvq.models.rrvq_vae import RRVQVAE
from tfvq.models.serving import Endpoint
from tfvq.models.spatial_vae import SpatialVAE
from tfvq.models.stateless_seeds import as_seed
from tfvq.models.training import OptimizerRecipe, Stage
from tfvq.models.vqvae import VQVAE

__all__ = ["CodeLayout", "CodeModel", "Endpoint", "FSQAutoencoder", "HQA", "HQALayer", "HQARecipe", "HierarchicalVAE",
           "HierarchicalVAERecipe", "ImageModel", "LFQAutoencoder", "OptimizerRecipe", "QuantizedAutoencoder", "RRVQVAE",
           "RVQAutoencoder", "Recipe", "SpatialVAE", "Stage", "UnknownRecipeKeyError", "VQAutoencoder", "VQVAE", "VQVAERecipe",
           "as_seed", "quantized_autoencoder", "to_float_images"]
