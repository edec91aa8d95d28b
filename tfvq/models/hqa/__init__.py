"""HQA (Williams et al., Hierarchical Quantized Autoencoders, NeurIPS 2020) and its VQ-VAE baseline.

The folder holds the family:

    hqa_model     `HQA`, its `HQALayer`s (HQA §5, Algorithms 2-3, App. C) and the
                  switches of Table 3's ablated systems
    vqvae         `VQVAE`, Table 3's baseline (HQA App. C.3, Table 14)
    hqa_recipes   their training recipes, `HQARecipe` and `VQVAERecipe`
    presets       the zoo's entries (`FAMILIES`, `PRESETS`: HQA Tables 3, 9, 10, 14)
"""

from tfvq.models.hqa.hqa_model import HQA, DilatedResidual, HQALayer
from tfvq.models.hqa.hqa_recipes import GreedyRecipe, HQARecipe, VQVAERecipe
from tfvq.models.hqa.vqvae import VQVAE

__all__ = ["DilatedResidual", "GreedyRecipe", "HQA", "HQALayer", "HQARecipe", "VQVAE", "VQVAERecipe"]
