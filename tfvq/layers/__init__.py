"""Quantizer layers, the Gaussian latent and the maths they share (see `tfvq.layers.ops`)."""

from tfvq.layers import ops
from tfvq.layers.blocks import ResNetBlock, RunningNormalization, WeightNormConv2D
from tfvq.layers.fsq import FiniteScalarQuantizer
from tfvq.layers.gaussian import GaussianLatent
from tfvq.layers.lfq import LookupFreeQuantizer
from tfvq.layers.quantizers import (
    RelaxedResponsibilityQuantizer,
    StochasticVectorQuantizer,
    VectorQuantizer,
)
from tfvq.layers.rvq import ResidualVectorQuantizer

__all__ = [
    "ops",
    "VectorQuantizer",
    "StochasticVectorQuantizer",
    "RelaxedResponsibilityQuantizer",
    "ResidualVectorQuantizer",
    "FiniteScalarQuantizer",
    "LookupFreeQuantizer",
    "GaussianLatent",
    "RunningNormalization",
    "WeightNormConv2D",
    "ResNetBlock",
]
