"""Seeds the Keras way as stateless seeds (`tfvq.models.stateless_seeds`): None, an int or a pair of ints, and
independent seeds folded from one."""

import numpy as np
import pytest
import tensorflow as tf

from tfvq.models.stateless_seeds import as_seed, fold_seeds


@pytest.mark.parametrize("seed,want", [(7, [7, 0]), (np.int64(7), [7, 0]), ((1, 2), [1, 2]), ([3, -4], [3, -4]),
                                       (np.array([5, 6], np.uint16), [5, 6]), (tf.constant(9), [9, 0]),
                                       (tf.constant([1, 2], tf.int64), [1, 2])])
def test_a_seed_becomes_an_int32_pair(seed, want):
    got = as_seed(seed)
    assert got.dtype == tf.int32 and got.shape == (2,)
    np.testing.assert_array_equal(got.numpy(), want)


def test_none_stays_none():
    assert as_seed(None) is None


@pytest.mark.parametrize("seed", [True, 1.0, "1", (1, 2, 3), [[1, 2]], (1.0, 2.0), 2**31, (0, -2**31 - 1),
                                  tf.constant(1.0), tf.zeros([3], tf.int32)])
def test_anything_else_raises_saying_what_a_seed_is(seed):
    with pytest.raises(ValueError, match="seed must be None, an int or a pair of ints"):
        as_seed(seed)


def test_the_error_names_the_argument():
    with pytest.raises(ValueError, match="^noise_seed must be"):
        as_seed("x", name="noise_seed")


def test_folded_seeds_are_the_stateless_fold_ins_of_the_seed():
    seeds = fold_seeds(3, 3)
    assert len(seeds) == 3 and len({tuple(s.numpy()) for s in seeds}) == 3
    for i, s in enumerate(seeds):
        np.testing.assert_array_equal(s.numpy(), tf.random.experimental.stateless_fold_in([3, 0], i).numpy())
    np.testing.assert_array_equal(fold_seeds((3, 0), 2)[1].numpy(), seeds[1].numpy())
    assert fold_seeds(None, 2) == [None, None]
