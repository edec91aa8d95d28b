"""Quantizer layers and the maths they share (see `tfvq.layers.ops`)."""

from tfvq.layers import ops
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
]
