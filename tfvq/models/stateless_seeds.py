"""Seeds as TensorFlow's stateless seeds: every `seed=` of a model is None, an int, or a pair of ints (`as_seed`).

A seed is turned into a stateless seed (an int32 tensor of shape [2]) once,
and split into independent seeds (`fold_seeds`) where a model draws several
things; anything else is a `ValueError` saying what is expected. The check
itself is NumPy's (`tfvq.seeds`), shared with the codec's TensorFlow-free half.
"""

import tensorflow as tf

from tfvq.seeds import seed_error, seed_values


def as_seed(seed, name="seed"):
    """A stateless seed: None, or an int32 tensor of shape [2].

    Accepts None, an int (`s` -> `[s, 0]`), a pair of ints, or an integer
    tensor of shape [] or [2] (traced exports pass tensors). Ints must fit in
    int32 (`tfvq.seeds.seed_values` checks them). Anything else raises
    `ValueError` saying what is expected.
    """
    if seed is None:
        return None
    if tf.is_tensor(seed):
        if not seed.dtype.is_integer or seed.shape.rank not in (0, 1) or (
                seed.shape.rank == 1 and seed.shape[0] not in (None, 2)):
            raise ValueError(seed_error(seed, name) + f" (a {seed.dtype.name} tensor of shape {seed.shape.as_list()}).")
        seed = tf.cast(seed, tf.int32)
        return tf.stack([seed, tf.constant(0, tf.int32)]) if seed.shape.rank == 0 else tf.reshape(seed, [2])
    return tf.constant(seed_values(seed, name), tf.int32)


def fold_seeds(seed, count):
    """`count` independent stateless seeds from one seed (`as_seed`), or `[None] * count`."""
    seed = as_seed(seed)
    if seed is None:
        return [None] * count
    return [tf.random.experimental.stateless_fold_in(seed, i) for i in range(count)]
