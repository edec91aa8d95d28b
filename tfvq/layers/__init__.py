"""Quantizer layers, the Gaussian latent and the maths they share (see `tfvq.layers.ops`).

One file per quantizer: `vq` (VQ-VAE, the rotation trick, the low-dimensional lookup), `simvq` (SimVQ's `C W`
codebook), `stochastic_vq` (HQA's), `relaxed_responsibility` (RRVQ's), `fsq`, `lfq`, `bsq` (binary spherical);
the quantizers made of quantizers, `residual` (residual stages of any of them), `grouped` (groups of
channels) and `rvq` (the residual stack of `VectorQuantizer`s), share `composed` (and its one code layout).
Their bases are `codebook` (a codebook variable with dead-code reset, k-means initialisation from `kmeans`
and the orthogonal regulariser) and `implicit` (FSQ's, LFQ's and BSQ's input check); `ops` holds the maths,
the input check and the replica helpers they all use.
"""

from tfvq.layers import ops
from tfvq.layers.blocks import ResNetBlock, RunningNormalization, WeightNormConv2D
from tfvq.layers.bsq import BinarySphericalQuantizer
from tfvq.layers.fsq import FiniteScalarQuantizer
from tfvq.layers.gaussian import GaussianLatent
from tfvq.layers.grouped import GroupedQuantizer
from tfvq.layers.lfq import LookupFreeQuantizer
from tfvq.layers.relaxed_responsibility import RelaxedResponsibilityQuantizer
from tfvq.layers.residual import ResidualQuantizer
from tfvq.layers.rvq import ResidualVectorQuantizer
from tfvq.layers.simvq import SimVectorQuantizer
from tfvq.layers.stochastic_vq import StochasticVectorQuantizer
from tfvq.layers.vq import VectorQuantizer

__all__ = [
    "ops",
    "VectorQuantizer",
    "SimVectorQuantizer",
    "StochasticVectorQuantizer",
    "RelaxedResponsibilityQuantizer",
    "ResidualVectorQuantizer",
    "ResidualQuantizer",
    "GroupedQuantizer",
    "FiniteScalarQuantizer",
    "LookupFreeQuantizer",
    "BinarySphericalQuantizer",
    "GaussianLatent",
    "RunningNormalization",
    "WeightNormConv2D",
    "ResNetBlock",
]
