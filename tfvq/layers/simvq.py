"""SimVQ: a frozen random codebook through one learned linear map.

Zhu, Li, Zhang, Chen, "Addressing Representation Collapse in Vector Quantized Models with One Linear Layer",
2024 (arXiv:2411.02038).
"""

import keras
import tensorflow as tf

from tfvq.layers.vq import VectorQuantizer


@keras.saving.register_keras_serializable(package="tfvq")
class SimVectorQuantizer(VectorQuantizer):
    """SimVQ (Zhu et al. 2024): the codebook is `C W`, a frozen random basis `C` (`[K, D]`, the `codebook`
    variable, not trainable) times one learned linear map `W` (`[D, D]`, the `linear` variable).

    Plain VQ updates only the codes that are nearest to some input: the others never move and are never
    used, and the usable codebook collapses to a few codes (the worse the larger K). In SimVQ every code is a
    row of `C W`, so the codebook loss of any used code moves `W` and with it the whole codebook: the span
    of the codes follows the encoder's outputs as a whole, and codes keep being used at any K (the paper's
    §3-4; measured here on a small task at K = 4096, see `tests/layers/test_simvq.py`). On real digits
    (docs/results.md, "Every quantizer on real digits") it keeps 8-32% of 2^14 codes in use where VQ keeps 4%,
    but settles on 8 of 16 and 17 of 256: the gain grows with K.

    Forward pass, losses and gradients are `VectorQuantizer`'s with `C W` as the codebook (the paper's loss):
    the nearest code `e_k = (C W)_k`, a straight-through gradient (or the rotation trick), and
    `||sg[z_e] - e_k||^2 + beta ||z_e - sg[e_k]||^2`, whose codebook term trains `W` (`C` stays as drawn).
    `C` is drawn from `N(0, 1/D)` (the authors' code), and `W` starts at the identity, so the codes start at
    `C`. `distance="cosine"` normalises `C W`'s rows as `VectorQuantizer` does. With `codebook_init` the
    k-means centres of the first batch become `C` and `W` restarts at the identity (`C` is then frozen at
    those centres). `orthogonal_weight` regularises `C W`.

    Not available (a `ValueError`): `ema=True` (the codebook is learned through `W` by gradients), dead-code
    resets and expiry (they would move rows of `C`, which SimVQ keeps frozen; it is meant not to need them)
    and `lookup_dim`.

    Args:
      num_codes: K.
      code_dim: D.
      commitment_cost: beta.
      **kwargs: `VectorQuantizer`'s (`distance`, `rotation_trick`, `codebook_init`, `orthogonal_weight`,
        `seed`, ...).

    Returns (from `call`): as `VectorQuantizer`.

    Example:
      >>> simvq = SimVectorQuantizer(num_codes=4096, code_dim=8)
      >>> simvq(tf.zeros([2, 4, 4, 8]))["codes"].shape
      TensorShape([2, 4, 4])

    References:
      Zhu, Li, Zhang, Chen, Addressing Representation Collapse in Vector Quantized Models with One Linear
      Layer, 2024.
    """

    def __init__(self, num_codes, code_dim, commitment_cost=0.25, **kwargs):
        for key, off in (("ema", False), ("code_reset", False), ("expire_codes_below", None), ("lookup_dim", None)):
            if kwargs.get(key, off) not in (off,):
                raise ValueError(
                    f"SimVectorQuantizer does not take {key}={kwargs[key]!r}: its codebook C is frozen and "
                    "learned only through W by gradients."
                )
        super().__init__(num_codes, code_dim, commitment_cost=commitment_cost, **kwargs)

    def _codebook_initializer(self):
        return keras.initializers.RandomNormal(stddev=self.code_dim**-0.5, seed=self.seed)

    def _codebook_trainable(self):
        return False

    def _build_extra(self):
        self.linear = self.add_weight(
            name="linear",
            shape=(self.code_dim, self.code_dim),
            initializer="identity",
            trainable=True,
            aggregation="only_first_replica",
            autocast=False,  # float32 under mixed precision, as the codebook
        )

    def _codebook_fitted(self, fresh):
        """A codebook just fitted by k-means is `C`: `W` restarts at the identity, so the codes are the centres."""
        w = tf.convert_to_tensor(self.linear)
        self.linear.assign(tf.where(fresh, tf.eye(self.code_dim, dtype=w.dtype), w))

    def _codebook_vectors(self):
        """`C W` (float32; l2-normalised after, for `distance="cosine"`)."""
        return tf.matmul(tf.convert_to_tensor(self.codebook), tf.convert_to_tensor(self.linear))
