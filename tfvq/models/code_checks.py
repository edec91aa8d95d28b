"""The checks of what a discrete model is given against its `CodeLayout` (`tfvq.code_layout`): codes, layers and
code biases.

A layout gives the grid and codebook size of every layer, which layer
`encode` gives by default, and which layers a file of layer `l` carries (HQA:
the one layer, Algorithm 3; RRVQ-VAE: layers l..L, eq. 3). `check_codes`
validates what `decode` is given, `below_layer` the layer of `code_logits`,
and `checked_code_bias` the biases of `encode_biased`.
"""

import numpy as np
import tensorflow as tf


def below_layer(layout, layer):
    """`layer` checked for `CodeModel.code_logits`: an int in 2..L (the layer below it is `layer - 1`)."""
    layer = layout.check_layer(layer)
    if layer == 1:
        raise ValueError("Layer 1 is the finest layer: there are no codes below it to give probabilities for; "
                         f"code_logits takes a layer in 2..{layout.num_layers}.")
    return layer


def check_codes(codes, layout, layer):
    """Validates codes for `decode(codes, layer)`: a list of int32 tensors, one per layer sent.

    A single tensor is accepted for a one-layer code. Raises `TypeError` for
    non-integer codes and `ValueError` for a wrong number of layers, a wrong
    grid, or values outside [0, K) (checked when the values are known).
    """
    sent = layout.layers_sent(layer)
    if tf.is_tensor(codes) or isinstance(codes, np.ndarray):
        codes = [codes]
    codes = list(codes)
    if len(codes) != len(sent):
        what = f"layers {sent[0]}..{sent[-1]}" if len(sent) > 1 else f"layer {sent[0]}"
        raise ValueError(f"Expected the codes of {what} ({len(sent)} tensor{'s' if len(sent) > 1 else ''}, "
                         f"layer {sent[0]} first), got {len(codes)}.")
    out = []
    for l, c in zip(sent, codes):
        c = tf.convert_to_tensor(c)
        h, w = layout.grids[l - 1]
        k = layout.num_codes[l - 1]
        if not c.dtype.is_integer:
            raise TypeError(f"Layer {l} codes must be integers (int32), got dtype {c.dtype.name}.")
        if c.shape.rank != 3 or not c.shape[1:].is_compatible_with((h, w)):
            raise ValueError(f"Layer {l} codes must have shape [batch, {h}, {w}], got {c.shape.as_list()}.")
        if tf.executing_eagerly() and tf.size(c) > 0:
            lo, hi = int(tf.reduce_min(c)), int(tf.reduce_max(c))
            if lo < 0 or hi >= k:
                raise ValueError(f"Layer {l} codes must be in [0, {k - 1}], got values in [{lo}, {hi}].")
        out.append(tf.cast(c, tf.int32))
    if len({int(c.shape[0]) if c.shape[0] is not None else -1 for c in out}) > 1:
        raise ValueError(f"Every layer's codes must have the same batch size, got {[c.shape[0] for c in out]}.")
    return out


def checked_code_bias(code_bias, layout):
    """`code_bias` {layer: float [K_layer]} checked against `layout`, as float32 NumPy vectors."""
    if not isinstance(code_bias, dict):
        raise TypeError(f"code_bias must be a dict {{layer: [K] floats}}, got {type(code_bias).__name__}.")
    out = {}
    for l, bias in code_bias.items():
        layout.check_layer(l)
        bias = np.asarray(bias, np.float32)
        k = layout.num_codes[int(l) - 1]
        if bias.shape != (k,) or not np.all(np.isfinite(bias)):
            raise ValueError(f"code_bias of layer {l} must be {k} finite floats (one per code), got shape "
                             f"{bias.shape}.")
        out[int(l)] = bias
    return out
