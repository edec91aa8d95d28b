"""The hierarchical VAEs of RRVQ (Willetts et al., Relaxed-Responsibility Hierarchical Discrete VAEs).

The folder holds the family:

    hierarchical_vae   `HierarchicalVAE`, the ResNet VAE backbone (RRVQ §3, App. C)
    rrvq_vae           `RRVQVAE`: relaxed-responsibility discrete latents (RRVQ §3.2; also the rVQ-VAE)
    spatial_vae        `SpatialVAE`: Gaussian latents (RRVQ Table 1, App. B)
    rrvq_recipe        their training recipe, `HierarchicalVAERecipe` (RRVQ App. C)
    presets            the zoo's entries (`FAMILIES`, `PRESETS`: RRVQ Table 1, App. C, App. F)
"""

from tfvq.models.rrvq.hierarchical_vae import HierarchicalVAE
from tfvq.models.rrvq.rrvq_recipe import HierarchicalVAERecipe
from tfvq.models.rrvq.rrvq_vae import RRVQVAE
from tfvq.models.rrvq.spatial_vae import SpatialVAE

__all__ = ["HierarchicalVAE", "HierarchicalVAERecipe", "RRVQVAE", "SpatialVAE"]
