"""The shared base of the quantizers without a codebook variable: `ImplicitCodebookQuantizer`.

Finite scalar quantization (`tfvq.layers.fsq`; Mentzer et al. 2023, §3.1) and
lookup-free quantization (`tfvq.layers.lfq`; Yu et al. 2023, MAGVIT-v2, §3.1,
eq. 2-3) compute their codes from the input alone: their codebook is a grid
(`prod(levels)` points) or the corners `{-1, +1}^d`, never stored, so there is
nothing to learn, reset or all-reduce in it. What the two share is their
input check, which is the one of every layer (`ops.checked_input`).
"""

import keras
import tensorflow as tf

from tfvq.layers import ops


class ImplicitCodebookQuantizer(keras.layers.Layer):
    """The shared base of FSQ and LFQ (not used directly): their input check.

    A subclass has `code_dim` (the input's last dimension), `num_codes` and
    `_dim_words()` (how its messages name `code_dim`, e.g.
    `"len(levels)=4 (levels=(8, 5, 5, 5))"`), and calls `checked_inputs` at
    the start of its forward pass.
    """

    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] is not None:
            ops.check_last_dim(self, input_shape[-1], self.code_dim, self._dim_words())
        self.built = True

    def _dim_words(self):
        return f"code_dim={self.code_dim}"

    def checked_inputs(self, inputs):
        """`inputs` `[..., code_dim]` as a tensor of the compute dtype, after `ops.checked_input`."""
        z = ops.checked_input(inputs, self, self.code_dim, self._dim_words())
        return tf.cast(z, self.compute_dtype)
