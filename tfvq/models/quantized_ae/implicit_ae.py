"""The autoencoders of quantizers without a codebook to learn: `FSQAutoencoder` (finite scalar quantization,
Mentzer et al. 2023, §3.1) and `LFQAutoencoder` (lookup-free quantization, MAGVIT-v2, Yu et al. 2023, §3.1).

Each is `SingleLayerAutoencoder` (HQA layer 1's network) with the quantizer's implicit codebook: the grid of
`prod(levels)` points, or {-1, +1}^code_dim. One layer of codes.

References:
  Mentzer, Minnen, Agustsson, Tschannen, Finite Scalar Quantization: VQ-VAE
  Made Simple, 2023 (ICLR 2024), §3.1, Table 1.
  Yu et al., Language Model Beats Diffusion -- Tokenizer is Key to Visual
  Generation (MAGVIT-v2), 2023 (ICLR 2024), §3.1.
"""

import keras

from tfvq.layers.fsq import FiniteScalarQuantizer
from tfvq.layers.lfq import LookupFreeQuantizer
from tfvq.models.quantized_ae.quantized_autoencoder import SingleLayerAutoencoder

__all__ = ["FSQAutoencoder", "LFQAutoencoder"]


@keras.saving.register_keras_serializable(package="tfvq")
class FSQAutoencoder(SingleLayerAutoencoder):
    """HQA layer 1's autoencoder with finite scalar quantization (Mentzer et al. 2023, §3.1).

    The encoder's conv1x1 projects to `d = len(levels)` channels; `FiniteScalarQuantizer` bounds each channel
    with tanh to its `L_i` levels and rounds it (straight-through), so the codebook is the implicit grid of
    `prod(levels)` points: no codebook to learn, no codebook or commitment loss, no dead codes (§3.1). The
    training loss is the MSE alone.

    Codes (`CodeModel`): one layer, a grid of half the image's size (16x16 for 32x32 images) of
    `prod(levels)` codes (1000 for the default levels, `h w ceil(log2 1000)` = 2560 bits per 32x32 image at
    the fixed rate).

    Args:
      image_shape: (H, W, C), H and W even.
      levels: the levels of each channel (Mentzer et al. Table 1: (8, 5, 5, 5) for 2^10 codes).
      encoder_hidden, decoder_hidden: conv widths (HQA Table 10, layer 1: 16 and 16).
      eps: the FSQ bound's margin (the paper's 1e-3).
      **kwargs: passed to `keras.Model`.

    Example:
      >>> model = FSQAutoencoder((32, 32, 1))
      >>> model.code_shape(), model.code_layout().num_codes, model.bits()
      ((16, 16), (1000,), 2560)
    """

    quantizer_name = "fsq"

    def __init__(self, image_shape, levels=(8, 5, 5, 5), encoder_hidden=16, decoder_hidden=16, eps=1e-3,
                 **kwargs):
        fsq = FiniteScalarQuantizer(levels=levels, eps=eps, name="quantizer")  # checks the levels
        super().__init__(image_shape, fsq.code_dim, encoder_hidden=encoder_hidden, decoder_hidden=decoder_hidden,
                         **kwargs)
        self.fsq = fsq
        self.levels = fsq.levels
        self.eps = fsq.eps
        self._finish_single(fsq)

    @property
    def quantizer_layer(self):
        return self.fsq

    def describe(self):
        return {**super().describe(), "levels": list(self.levels)}

    def get_config(self):
        config = super().get_config()
        config.update(levels=list(self.levels), eps=self.eps)
        return config


@keras.saving.register_keras_serializable(package="tfvq")
class LFQAutoencoder(SingleLayerAutoencoder):
    """HQA layer 1's autoencoder with lookup-free quantization (MAGVIT-v2, Yu et al. 2023, §3.1).

    The encoder's conv1x1 projects to `code_dim` channels; `LookupFreeQuantizer` keeps each channel's sign
    (eq. 2), so the codebook is the implicit set {-1, +1}^code_dim and a code is the binary number of the signs
    (eq. 3). The training loss is the MSE plus the quantizer's commitment term and entropy penalty (§3.1: low
    per-sample entropy, high codebook entropy).

    Codes (`CodeModel`): one layer, a grid of half the image's size of `2^code_dim` codes (10 bits: 1024
    codes, `h w code_dim` = 2560 bits per 32x32 image, FSQ's rate).

    Args:
      image_shape: (H, W, C), H and W even.
      code_dim: the bits per position (at most 30).
      encoder_hidden, decoder_hidden: conv widths (HQA Table 10, layer 1: 16 and 16).
      entropy_weight, commitment_cost, diversity_gamma, temperature: `LookupFreeQuantizer`'s loss.
      **kwargs: passed to `keras.Model`.

    Example:
      >>> model = LFQAutoencoder((32, 32, 1), code_dim=10)
      >>> model.code_shape(), model.code_layout().num_codes, model.bits()
      ((16, 16), (1024,), 2560)
    """

    quantizer_name = "lfq"

    def __init__(self, image_shape, code_dim=10, encoder_hidden=16, decoder_hidden=16, entropy_weight=0.1,
                 commitment_cost=0.25, diversity_gamma=1.0, temperature=1.0, **kwargs):
        lfq = LookupFreeQuantizer(code_dim, entropy_weight=entropy_weight, commitment_cost=commitment_cost,
                                  diversity_gamma=diversity_gamma, temperature=temperature,
                                  name="quantizer")  # checks its arguments
        super().__init__(image_shape, lfq.code_dim, encoder_hidden=encoder_hidden, decoder_hidden=decoder_hidden,
                         **kwargs)
        self.lfq = lfq
        self.code_dim = lfq.code_dim
        self._finish_single(lfq)

    @property
    def quantizer_layer(self):
        return self.lfq

    def describe(self):
        return {**super().describe(), "code_dim": self.code_dim}

    def get_config(self):
        config = super().get_config()
        q = self.lfq
        config.update(code_dim=self.code_dim, entropy_weight=q.entropy_weight, commitment_cost=q.commitment_cost,
                      diversity_gamma=q.diversity_gamma, temperature=q.temperature)
        return config
