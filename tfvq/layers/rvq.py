"""Residual vector quantization (RVQ): `ResidualQuantizer` over `VectorQuantizer` stages, with today's arguments.

Zeghidour et al., "SoundStream: An End-to-End Neural Audio Codec", 2021,
§3.3 and Algorithm 1.
"""

import keras

from tfvq.layers.residual import ResidualQuantizer
from tfvq.layers.vq import VectorQuantizer


@keras.saving.register_keras_serializable(package="tfvq")
class ResidualVectorQuantizer(ResidualQuantizer):
    """Residual VQ with quantizer dropout (SoundStream, Zeghidour et al. 2021, §3.3): a `ResidualQuantizer`
    whose stages are `VectorQuantizer`s.

    SoundStream Algorithm 1: with `r_1 = z`, stage i (a `VectorQuantizer`
    with its own codebook of `num_codes` codes) quantizes the residual
    `r_i` to its nearest code `q_i`, and `r_{i+1} = r_i - q_i`; the output is
    `q_1 + ... + q_k`. Each stage adds `log2(num_codes)` bits per vector, so
    the first k stages give k rates from one model. Quantizer dropout,
    gradients, mixed precision, codes and outputs are `ResidualQuantizer`'s
    (with gain 1: VQ codebooks learn the scale of their residuals): the output
    passes its gradient straight through to the input, each stage's
    commitment loss reaches the encoder and each codebook learns only from its
    own codebook loss (or EMA).

    This class keeps the arguments (and the saved configs) of the layer from
    before `ResidualQuantizer`: `ResidualVectorQuantizer(4, 256, 64, ...)` is
    `ResidualQuantizer(VectorQuantizer(256, 64, ..., seed=seed), 4,
    dropout=dropout, seed=seed)`.

    Args:
      num_quantizers: the number of stages, N_q.
      num_codes: K, the codes of each stage.
      code_dim: D.
      commitment_cost: beta of each stage (VQ-VAE eq. 3).
      ema: learn each codebook by EMA instead of gradients (SoundStream
        trains its codebooks by EMA, as VQ-VAE-2).
      dropout: quantizer dropout in training (§3.3).
      decay, epsilon: the stages' EMA decay and smoothing.
      expire_codes_below, reset_window: dead-code expiry in each stage (see
        `VectorQuantizer`; SoundStream replaces codes unused for several
        batches by random input frames).
      seed: integer seed: stage i's codebook initialiser and reset stream get
        `seed + i`, the dropout draws `seed`.
      **kwargs: passed to `keras.layers.Layer`.

    The stages use the Euclidean distance and the straight-through gradient
    (for other stage options, `ResidualQuantizer(VectorQuantizer(...), k)`).

    Call args and returns: as `ResidualQuantizer` (`codes` int32 `[..., k]`).

    Example:
      >>> rvq = ResidualVectorQuantizer(num_quantizers=4, num_codes=16, code_dim=8)
      >>> out = rvq(tf.zeros([2, 5, 8]), num_quantizers=3)
      >>> out["codes"].shape
      TensorShape([2, 5, 3])

    References:
      Zeghidour et al., SoundStream: An End-to-End Neural Audio Codec, 2021,
      §3.3, Algorithm 1 (residual VQ, quantizer dropout, codebook expiry).
    """

    def __init__(
        self,
        num_quantizers,
        num_codes,
        code_dim,
        commitment_cost=0.25,
        ema=False,
        dropout=False,
        decay=0.99,
        epsilon=1e-5,
        expire_codes_below=None,
        reset_window=20,
        seed=None,
        **kwargs,
    ):
        stage = VectorQuantizer(
            num_codes,
            code_dim,
            commitment_cost=commitment_cost,
            ema=ema,
            decay=decay,
            epsilon=epsilon,
            expire_codes_below=expire_codes_below,
            reset_window=reset_window,
            seed=seed,
            name="stage",
        )
        super().__init__(stage, num_quantizers, dropout=dropout, seed=seed, **kwargs)
        self.commitment_cost = stage.commitment_cost
        self.ema = stage.ema
        self.decay = stage.decay
        self.epsilon = stage.epsilon
        self.expire_codes_below = stage.expire_codes_below
        self.reset_window = stage.reset_window

    def get_config(self):
        config = keras.layers.Layer.get_config(self)  # the arguments of this class, not ResidualQuantizer's
        config.update(
            {
                "num_quantizers": self.num_quantizers,
                "num_codes": self.num_codes,
                "code_dim": self.code_dim,
                "commitment_cost": self.commitment_cost,
                "ema": self.ema,
                "dropout": self.dropout,
                "decay": self.decay,
                "epsilon": self.epsilon,
                "expire_codes_below": self.expire_codes_below,
                "reset_window": self.reset_window,
                "seed": self.seed,
            }
        )
        return config
