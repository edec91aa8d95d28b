"""Convolutional autoencoders with today's quantizers: FSQ, lookup-free, residual VQ, and VQ with its options.

Four families share one network, HQA layer 1's encoder and decoder (HQA App.
C.1, Table 10: conv3x3/2 -> Mish -> conv3x3 -> Mish -> conv1x1 down to a grid
of half the image's size; conv3x3 -> Mish -> nearest x2 -> conv3x3 -> Mish ->
conv3x3 -> sigmoid back up), so 32x32x1 digits become a 16x16 grid of codes,
and are trained end to end on the pixels' mean squared error plus the
quantizer's loss, one stage of HQA's optimiser (`VQVAERecipe`, as the VQ-VAE
baseline). Only the bottleneck differs, so the four compare quantizers alone:

* `FSQAutoencoder`: finite scalar quantization (Mentzer et al. 2023, §3.1):
  the encoder projects to `len(levels)` channels, each bounded and rounded to
  its levels; the codebook is the implicit grid of `prod(levels)` points
  (1000 for the default `(8, 5, 5, 5)`, the paper's Table 1). One layer of
  codes.
* `LFQAutoencoder`: lookup-free quantization (MAGVIT-v2, Yu et al. 2023,
  §3.1): one bit per channel, its sign; the codebook is {-1, +1}^code_dim.
  One layer of codes.
* `VQAutoencoder`: the VQ-VAE's learned codebook (van den Oord et al. 2017),
  with the rotation trick (Fifty et al. 2024), cosine codes and dead-code
  expiry as options. One layer of codes.
* `RVQAutoencoder`: residual vector quantization with quantizer dropout
  (SoundStream, Zeghidour et al. 2021, §3.3, Algorithm 1): `num_quantizers`
  codebooks, each quantizing what the stages before it left. Each depth is a
  rate: the code layout has one layer per stage, numbered so that a file of
  layer l carries stages 1..(Q - l + 1) (layer 1 every stage, the most bits
  and the finest image; layer Q the first stage alone, the fewest bits and the
  coarsest image). The layout is cumulative (`CodeLayout.cumulative`, as the
  RRVQ-VAE's): layer j holds stage Q - j + 1, and a file of layer l holds
  layers l..Q.

Why one class per quantizer and not one with a `quantizer=` switch: they
differ in their codes (one layer, or Q cumulative ones), in `encode`/`decode`,
and in their arguments (levels; bits; codes, code dimension and codebook
options; stages). A single class would accept, and write into its
configuration, arguments that mean nothing for the others. The zoo registers
one family per class, as for HQA and the VQ-VAE.
`quantized_autoencoder(image_shape, quantizer="fsq" | "lfq" | "rvq" | "vq",
...)` builds any of them by name.

`ComposedAutoencoder` (`quantizer="composed"`) is the one class over the
composed quantizers of `tfvq.layers`: any inner quantizer (VQ, SimVQ, FSQ, LFQ,
BSQ) named in its configuration, residual over S stages and grouped over G
channel groups, with one cumulative code layer per slot; it carries every
bottleneck of the comparison on real digits (`tfvq.experiments.quantizers`).

The folder: `quantized_autoencoder` (the shared network, stage and report),
`implicit_ae` (FSQ, LFQ), `codebook_ae` (VQ, residual VQ), `composed_ae` (any
quantizer, residual and grouped) and `presets` (the
zoo's entries: `FAMILIES`, `PRESETS`).

References:
  Mentzer, Minnen, Agustsson, Tschannen, Finite Scalar Quantization: VQ-VAE
  Made Simple, 2023 (ICLR 2024), §3.1, Table 1.
  Zeghidour, Luebs, Omran, Skoglund, Tagliasacchi, SoundStream: An End-to-End
  Neural Audio Codec, 2021, §3.3, Algorithm 1.
  Yu et al., Language Model Beats Diffusion -- Tokenizer is Key to Visual
  Generation (MAGVIT-v2), 2023 (ICLR 2024), §3.1.
  Fifty et al., Restructuring Vector Quantization with the Rotation Trick,
  2024, §4.
  Williams et al., Hierarchical Quantized Autoencoders, NeurIPS 2020, App. C.1,
  Table 10 (the encoder and decoder).
"""

from tfvq.layers.kmeans import fit_stage_codebooks
from tfvq.models.quantized_ae.codebook_ae import RVQAutoencoder, VQAutoencoder
from tfvq.models.quantized_ae.composed_ae import ComposedAutoencoder
from tfvq.models.quantized_ae.implicit_ae import FSQAutoencoder, LFQAutoencoder
from tfvq.models.quantized_ae.quantized_autoencoder import QuantizedAutoencoder, SingleLayerAutoencoder

__all__ = ["ComposedAutoencoder", "FSQAutoencoder", "LFQAutoencoder", "QUANTIZERS", "QuantizedAutoencoder", "RVQAutoencoder",
           "SingleLayerAutoencoder", "VQAutoencoder", "fit_stage_codebooks", "quantized_autoencoder"]

QUANTIZERS = {"composed": ComposedAutoencoder, "fsq": FSQAutoencoder, "lfq": LFQAutoencoder, "rvq": RVQAutoencoder,
              "vq": VQAutoencoder}
"""The quantizer names of `quantized_autoencoder` and their classes."""


def quantized_autoencoder(image_shape, quantizer="fsq", **kwargs):
    """The `QUANTIZERS` class of `quantizer` ("composed", "fsq", "lfq", "rvq" or "vq"), built with `image_shape`
    and `kwargs`."""
    if quantizer not in QUANTIZERS:
        raise ValueError(f"quantizer must be one of {', '.join(repr(q) for q in QUANTIZERS)}, got {quantizer!r}.")
    return QUANTIZERS[quantizer](image_shape, **kwargs)
