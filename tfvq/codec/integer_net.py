"""A context network run in integer arithmetic: the same logits, bit for bit, on every machine.

A range decoder must see exactly the tables the encoder used. Floating-point
networks do not give them: summation order, fused multiply-adds and kernel
libraries change the last bits (oneDNN on and off differ by about 4e-5 nats
on the bundled context networks), and a table rounded from such a value can
come out differently on the two sides. Ballé, Johnston and Minnen (2019,
"Integer networks for data compression with latent-variable models", ICLR)
remove the problem at its root: the entropy model's network runs on
integers, so its outputs are defined by the weights alone. This module does
that for `tfvq.codec.context_net.ContextNet` (the fitted float network is
converted after training, as their post-training variant):

* embeddings and activations are integers in units of 2^-`ACT_BITS`;
* every kernel is rounded to integers in units of 2^-`WEIGHT_BITS`, every
  bias to the accumulator's units 2^-(`ACT_BITS` + `WEIGHT_BITS`);
* a convolution accumulates integer products; the result is floored back
  to activation units (an exact shift), ReLU'd and clipped to
  [0, 2^`ACT_LIMIT_BITS`);
* the logits come out as integers in units of 2^-`ACT_BITS` nats.

The products are summed with NumPy's float64 matrix product, which is exact
here whatever the order or the BLAS: every product and every partial sum is
an integer below 2^53 (`from_weights` checks the bound from the actual
weights). So the logits are a function of the weights and the inputs only.
The products run on one BLAS thread (`threadpoolctl`): their matrices have a
few hundred rows, and OpenBLAS's threads cost more than they save (a pass over
a 16x16 layer took 16 ms on two threads and 1.3 ms on one, on 2 busy cores).
Nothing here needs TensorFlow: a context-coded file decodes with NumPy.

The float network is rounded, not retrained: at these resolutions its logits
move by about 1e-3 nats, which costs a small fraction of a bit per image.
"""

import functools

import numpy as np
import threadpoolctl

ACT_BITS = 12
"""Activations and logits are integers in units of 2^-ACT_BITS."""
WEIGHT_BITS = 14
"""Kernels are integers in units of 2^-WEIGHT_BITS."""
ACT_LIMIT_BITS = 24
"""Activations are clipped to [0, 2^ACT_LIMIT_BITS) units, i.e. below 4096: a bound for `from_weights`'s check."""
_EXACT = 2.0 ** 53


def _rint(x, bits):
    """round(x 2^bits) to the nearest integer (ties to even) as float64: exact for float32 x."""
    return np.rint(np.asarray(x, np.float64) * (2.0 ** bits))


def _im2col3(x, at=None):
    """[n, h, w, c] -> [n, h, w, 9 c]: every 3x3 neighbourhood (zeros outside), in the kernel's (dy, dx, c) order;
    with a bool mask `at` [h, w], the neighbourhoods of those positions only: [n, at.sum(), 9 c]."""
    n, h, w, c = x.shape
    p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    if at is None:
        return np.concatenate([p[:, dy: dy + h, dx: dx + w] for dy in range(3) for dx in range(3)], axis=-1)
    ys, xs = np.nonzero(at)
    return np.concatenate([p[:, ys + dy, xs + dx] for dy in range(3) for dx in range(3)], axis=-1)


@functools.cache
def _blas():
    """The process's `threadpoolctl.ThreadpoolController` (made once: it looks up the loaded libraries)."""
    return threadpoolctl.ThreadpoolController()


class IntegerContextNet:
    """`ContextNet`'s function on integers (see the module doc). Build with `from_weights`.

    Attributes:
      num_codes, above_codes, factor: as `ContextNet`'s.
    """

    def __init__(self, num_codes, above_codes, factor, own, above, convs, mix, logits):
        self.num_codes, self.above_codes, self.factor = int(num_codes), above_codes, int(factor)
        self._own, self._above, self._convs, self._mix, self._logits = own, above, convs, mix, logits

    @classmethod
    def from_weights(cls, config, weights):
        """The integer network of a `ContextNet` with `config` (`net_config`) and `weights` (`get_weights()`).

        Raises:
          ValueError: weights so large that a sum could leave float64's exact integers (never for a
            fitted network: the bound is about 2^47 for weights below 64).
        """
        weights = [np.asarray(w, np.float32) for w in weights]
        if not all(np.isfinite(w).all() for w in weights):
            raise ValueError("The context network has non-finite weights; refit it.")
        has_above = config.get("above_codes") is not None
        own = _rint(weights[0], ACT_BITS)
        above = _rint(weights[1], ACT_BITS) if has_above else None
        rest = weights[2 if has_above else 1:]
        layers = []
        for kernel, bias in zip(rest[0::2], rest[1::2]):
            k = _rint(kernel.reshape(-1, kernel.shape[-1]), WEIGHT_BITS)
            b = _rint(bias, ACT_BITS + WEIGHT_BITS)
            bound = k.shape[0] * 2.0 ** ACT_LIMIT_BITS * np.abs(k).max(initial=0) + np.abs(b).max(initial=0)
            if bound >= _EXACT:
                raise ValueError(f"A context network layer's weights (largest {np.abs(kernel).max():.3g}) are too "
                                 "large for exact integer sums; refit the network.")
            layers.append((k, b))
        depth = int(config["depth"])
        if len(layers) != depth + 2:
            raise ValueError(f"Expected {depth + 2} convolutions for depth {depth}, got {len(layers)} weight pairs.")
        return cls(config["num_codes"], config.get("above_codes"), config.get("factor", 1), own, above,
                   layers[:depth], layers[depth], layers[depth + 1])

    @staticmethod
    def _dense(x, layer, relu=True):
        k, b = layer
        acc = x @ k + b  # exact: integers below 2^53 (`from_weights`)
        out = np.floor(acc * 2.0 ** -WEIGHT_BITS)  # back to activation units (a power of two: exact)
        return np.clip(out, 0, 2.0 ** ACT_LIMIT_BITS - 1) if relu else out

    def logits(self, known, above=None, at=None):
        """int64 logits [n, h, w, K] in units of 2^-`ACT_BITS` nats, from the network's inputs (as `ContextNet`);
        with a bool mask `at` [h, w], only those positions' logits: [n, at.sum(), K]."""
        with _blas().limit(limits=1, user_api="blas"):
            return self._logits_of(known, above, at)

    def _logits_of(self, known, above, at):
        known = np.asarray(known, np.int64)
        h = self._own[known]
        if self._above is not None:
            a = self._above[np.asarray(above, np.int64)]
            if self.factor > 1:
                a = np.repeat(np.repeat(a, self.factor, axis=1), self.factor, axis=2)
            h = np.concatenate([h, a], axis=-1)
        at = None if at is None else np.asarray(at, bool)
        for i, conv in enumerate(self._convs):  # the last 3x3 layer, and the 1x1 layers, at `at` only
            h = self._dense(_im2col3(h, at if i == len(self._convs) - 1 else None), conv)
        if at is not None and not self._convs:
            h = h[:, at]
        h = self._dense(h, self._mix)
        return self._dense(h, self._logits, relu=False).astype(np.int64)
