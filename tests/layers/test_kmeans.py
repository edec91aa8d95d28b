"""`tfvq.layers.kmeans`: the graph k-means++ seeds and Lloyd steps against NumPy, and the moved NumPy seeding."""

import numpy as np
import tensorflow as tf

from tfvq.layers.kmeans import kmeans_codebook, kmeans_plus_plus_codebook, lloyd_steps

RNG = np.random.default_rng(11)


def np_lloyd(points, centers, iterations):
    centers = centers.astype(np.float64).copy()
    for _ in range(iterations):
        nearest = ((points[:, None] - centers[None]) ** 2).sum(-1).argmin(-1)
        for k in range(len(centers)):
            if (nearest == k).any():
                centers[k] = points[nearest == k].mean(0)
    return centers


def clusters(k, per, dim=3, spread=1e-3, distance=100.0):
    means = RNG.normal(size=(k, dim)) * distance
    return (means[:, None] + RNG.normal(size=(k, per, dim)) * spread).reshape(-1, dim).astype(np.float32), means


def test_seeds_are_distinct_points_one_per_well_separated_cluster():
    points, means = clusters(8, 20)
    seeds = kmeans_codebook(points, np.zeros((8, 3), np.float32), tf.constant([1, 2]), iterations=0).numpy()
    assert all((np.abs(points - s).max(-1) == 0).any() for s in seeds)  # each seed is a data point
    # k-means++ draws by squared distance: a second seed in a taken cluster has probability ~1e-10.
    owner = ((seeds[:, None] - means[None]) ** 2).sum(-1).argmin(-1)
    assert sorted(owner) == list(range(8))


def test_same_seed_same_codebook_and_rows_without_a_point_keep_their_initial_values():
    points = RNG.normal(size=(3, 2)).astype(np.float32)
    initial = RNG.normal(size=(5, 2)).astype(np.float32)
    a = kmeans_codebook(points, initial, tf.constant([3, 4])).numpy()
    b = kmeans_codebook(points, initial, tf.constant([3, 4])).numpy()
    np.testing.assert_array_equal(a, b)
    # Three distinct points: three seeds (a permutation of the points), the last two rows as they were.
    np.testing.assert_array_equal(np.sort(a[:3], axis=0), np.sort(points, axis=0))
    np.testing.assert_array_equal(a[3:], initial[3:])


def test_lloyd_steps_match_numpy_and_kmeans_lowers_the_quantisation_error():
    points = RNG.normal(size=(200, 3)).astype(np.float32)
    initial = np.zeros((6, 3), np.float32)
    seeds = kmeans_codebook(points, initial, tf.constant([5, 6])).numpy()
    fitted = kmeans_codebook(points, initial, tf.constant([5, 6]), iterations=4).numpy()
    np.testing.assert_allclose(fitted, np_lloyd(points, seeds, 4), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lloyd_steps(points, seeds, 4).numpy(), fitted, rtol=1e-6, atol=1e-6)

    def error(c):
        return ((points[:, None] - c[None]) ** 2).sum(-1).min(-1).mean()

    assert error(fitted) < error(seeds)


def test_kmeans_runs_inside_a_tf_function():
    points, _ = clusters(4, 10)
    fn = tf.function(lambda p, s: kmeans_codebook(p, tf.zeros([4, 3]), s, iterations=2))
    out = fn(tf.constant(points), tf.constant([7, 8])).numpy()
    np.testing.assert_allclose(out, kmeans_codebook(points, np.zeros((4, 3), np.float32), tf.constant([7, 8]), 2))


def test_numpy_kmeans_plus_plus_codebook_is_importable_from_its_old_place_and_seeds_distinct_points():
    from tfvq.models.stages import kmeans_plus_plus_codebook as old

    assert old is kmeans_plus_plus_codebook
    points = np.concatenate([RNG.normal(size=(3, 2))] * 2)  # 3 distinct points, 8 codes
    codes = kmeans_plus_plus_codebook(points, 8, seed=1)
    assert codes.shape == (3, 2) and len(np.unique(codes, axis=0)) == 3
