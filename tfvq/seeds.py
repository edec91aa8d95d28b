"""Seeds the Keras way, checked with NumPy alone: None, an int, or a pair of ints, each within int32.

What every `seed=` of the model contract takes (`tfvq.models.stateless_seeds.as_seed` makes the tensor of one); the
codec checks a seed here before it knows whether TensorFlow will decode the file (`tfvq.codec.decoding`).
"""

import numpy as np

_INT32 = np.iinfo(np.int32)


def seed_error(seed, name="seed"):
    """The start of the `ValueError` message for a seed that is none of these."""
    return f"{name} must be None, an int or a pair of ints (e.g. 1 or (1, 2)), got {seed!r}"


def seed_values(seed, name="seed"):
    """The seed as a list of two ints (`s` -> `[s, 0]`), or None for None; `ValueError` for anything else,
    or ints outside int32."""
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)):
        raise ValueError(seed_error(seed, name) + ".")
    if isinstance(seed, (int, np.integer)):
        values = [int(seed), 0]
    else:
        try:
            array = np.asarray(seed)
        except Exception:  # noqa: BLE001  (anything NumPy cannot read is not a seed)
            raise ValueError(seed_error(seed, name) + ".") from None
        if array.shape != (2,) or array.dtype.kind not in "iu":
            raise ValueError(seed_error(seed, name) + ".")
        values = [int(v) for v in array]
    if not all(_INT32.min <= v <= _INT32.max for v in values):
        raise ValueError(seed_error(seed, name) + f" (each int must fit in int32, [{_INT32.min}, {_INT32.max}]).")
    return values
