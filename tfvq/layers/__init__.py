"""Quantizer layers, the Gaussian latent and the maths they share (see `tfvq.layers.ops`)."""

from tfvq.layers import ops
from tfvq.layers.blocks import ResNetBlock, RunningNormalization, WeightNormConv2D
from tfvq.layers.gaussian import GaussianLatent
from tfvq.layers.quantizers import (
    RelaxedResponsibilityQuantizer,
    StochasticVectorQuantizer,
    VectorQuantizer,
)

__all__ = [
    "ops",
    "VectorQuantizer",
    "StochasticVectorQuantizer",
    "RelaxedResponsibilityQuantizer",
    "GaussianLatent",
    "RunningNormalization",
    "WeightNormConv2D",
    "ResNetBlock",
]
