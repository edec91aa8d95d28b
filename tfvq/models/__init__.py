"""Model families, each a folder with its code, its training recipe and its presets, and what they share.

Shared by every family:

    contract   the model contract, `ImageModel` and `CodeModel`; its parts: images in and out
               (`pixels`), seeds (`stateless_seeds`), codes (`code_checks`), training stages (`training`) and
               serving signatures (`serving`)
    recipes    `Recipe`, the base of every family's training recipe
    stages     the greedy stage of HQA's recipe and the per-layer report (HQA Algorithm 2, App. C.1)
    preset     `ZooEntry`: a named model as data

The families (a subpackage with a `presets` module is a family the zoo finds, `tfvq.zoo.registry`):

    hqa            HQA and its VQ-VAE baseline (`HQA`, `HQALayer`, `VQVAE`; `HQARecipe`, `VQVAERecipe`)
    rrvq           the hierarchical VAE backbone with its two latent layers: RRVQ-VAE (also the rVQ-VAE
                   baseline) and the Spatial-VAE (`HierarchicalVAE`, `RRVQVAE`, `SpatialVAE`;
                   `HierarchicalVAERecipe`)
    quantized_ae   HQA layer 1's autoencoder with today's quantizers (`FSQAutoencoder`, `LFQAutoencoder`,
                   `RVQAutoencoder`, `VQAutoencoder`)

The names below are importable from here; a family's other names from its folder.
"""

from tfvq.code_layout import CodeLayout
from tfvq.models.contract import CodeModel, ImageModel
from tfvq.models.hqa import HQA, VQVAE, HQALayer, HQARecipe, VQVAERecipe
from tfvq.models.pixels import to_float_images
from tfvq.models.quantized_ae import FSQAutoencoder, LFQAutoencoder, QuantizedAutoencoder, RVQAutoencoder, \
    VQAutoencoder, quantized_autoencoder
from tfvq.models.recipes import Recipe, UnknownRecipeKeyError
from tfvq.models.rrvq import RRVQVAE, HierarchicalVAE, HierarchicalVAERecipe, SpatialVAE
from tfvq.models.serving import Endpoint
from tfvq.models.stateless_seeds import as_seed
from tfvq.models.training import OptimizerRecipe, Stage

__all__ = ["CodeLayout", "CodeModel", "Endpoint", "FSQAutoencoder", "HQA", "HQALayer", "HQARecipe", "HierarchicalVAE",
           "HierarchicalVAERecipe", "ImageModel", "LFQAutoencoder", "OptimizerRecipe", "QuantizedAutoencoder", "RRVQVAE",
           "RVQAutoencoder", "Recipe", "SpatialVAE", "Stage", "UnknownRecipeKeyError", "VQAutoencoder", "VQVAE", "VQVAERecipe",
           "as_seed", "quantized_autoencoder", "to_float_images"]
