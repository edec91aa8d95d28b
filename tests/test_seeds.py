"""Seeds checked with NumPy alone (`tfvq.seeds`): None, an int or a pair of ints within int32, as two ints."""

import numpy as np
import pytest

from tfvq.seeds import seed_error, seed_values


@pytest.mark.parametrize("seed,want", [(None, None), (0, [0, 0]), (7, [7, 0]), (-3, [-3, 0]), (np.int64(9), [9, 0]),
                                       ((1, 2), [1, 2]), ([3, -4], [3, -4]), (np.array([5, 6], np.uint16), [5, 6]),
                                       ((2**31 - 1, -2**31), [2**31 - 1, -2**31])])
def test_a_seed_becomes_two_python_ints(seed, want):
    got = seed_values(seed)
    assert got == want and all(type(v) is int for v in got or [])


@pytest.mark.parametrize("seed", [True, np.bool_(False), 1.5, "1", b"12", (1, 2, 3), [[1, 2]], (1.0, 2.0), (1, None),
                                  {"a": 1}, np.zeros(2, bool)])
def test_anything_else_is_refused_saying_what_a_seed_is(seed):
    with pytest.raises(ValueError) as info:
        seed_values(seed)
    assert str(info.value) == seed_error(seed) + "."
    assert str(info.value).startswith("seed must be None, an int or a pair of ints (e.g. 1 or (1, 2)), got ")


@pytest.mark.parametrize("seed", [2**31, -2**31 - 1, (0, 2**32), np.array([0, 2**40])])
def test_ints_outside_int32_are_refused_with_the_range(seed):
    with pytest.raises(ValueError, match=r"\(each int must fit in int32, \[-2147483648, 2147483647\]\)\.$"):
        seed_values(seed)


def test_the_message_names_the_argument_and_shows_the_value():
    assert seed_error((1, 2, 3), "noise_seed") == ("noise_seed must be None, an int or a pair of ints "
                                                  "(e.g. 1 or (1, 2)), got (1, 2, 3)")
    with pytest.raises(ValueError, match=r"^noise_seed must be .* got 'x'\.$"):
        seed_values("x", name="noise_seed")
