"""k-means codebooks: k-means++ seeds (Arthur & Vassilvitskii 2007) and Lloyd steps, in NumPy and in TensorFlow.

Two forms of the same recipe -- seed the codes where the data is, then optionally move each code to the mean
of the points nearest to it (Lloyd's algorithm):

* `kmeans_plus_plus_codebook` (NumPy, scikit-learn's `kmeans_plusplus`): for code that holds data outside a
  graph, e.g. the models' training set-ups (`tfvq.models.stages`, `tfvq.models.quantized_ae` import it from
  here).
* `kmeans_codebook` (TensorFlow, graph-safe): what the codebook quantizers run on their first training batch
  when built with `codebook_init="kmeans++"` or `"kmeans"` (`tfvq.layers.codebook.CodebookQuantizer`), as
  SoundStream initialises its codebooks ("we run the k-means algorithm on the first training batch", Zeghidour
  et al. 2021, §3.3).
"""

import numpy as np
import tensorflow as tf

from tfvq.layers import ops

__all__ = ["kmeans_plus_plus_codebook", "kmeans_codebook", "lloyd_steps"]

_TINY = 1e-30
"""Weight of an already chosen point in the k-means++ draw (log of it is finite: such points are never drawn
while any other point is at a positive distance)."""


def kmeans_plus_plus_codebook(points, num_codes, seed=0, max_points=20000):
    """Codes [min(K, distinct points), D] seeded by k-means++ (Arthur & Vassilvitskii 2007) on `points` [N, D].

    scikit-learn's `kmeans_plusplus` picks the seeds: each next code is a
    point drawn with probability proportional to its squared distance to the
    nearest code so far, so the codes spread over where the data is. At most
    `max_points` points (a seeded random subset) are used.
    """
    from sklearn.cluster import kmeans_plusplus  # a heavy dependency, imported when a codebook asks for it

    points = np.asarray(points, np.float64).reshape(-1, np.shape(points)[-1])
    rng = np.random.default_rng(seed)
    if len(points) > max_points:
        points = points[rng.choice(len(points), max_points, replace=False)]
    points = np.unique(points, axis=0)  # k-means++ of repeated points would seed repeated codes
    count = min(num_codes, len(points))
    if count < 1:
        raise ValueError("k-means++ needs at least one point.")
    centers, _ = kmeans_plusplus(points, count, random_state=int(rng.integers(2**31 - 1)))
    return centers.astype(np.float32)


def _squared_distances_to(points, sq_norms, center):
    """`[N]` squared distances of `points` `[N, D]` (with `sq_norms` `[N]`) to one `center` `[D]`."""
    cross = tf.linalg.matvec(points, center)
    return tf.maximum(sq_norms - 2.0 * cross + tf.reduce_sum(tf.square(center)), 0.0)


def _kmeans_plus_plus(points, initial, seed):
    """k-means++ seeds: `[K, D]`, row i a point of `points` drawn with probability proportional to its squared
    distance to the nearest of rows 0..i-1 (row 0 uniformly). Once every point is a seed (fewer distinct points
    than codes), the remaining rows keep `initial`'s."""
    num_codes = initial.shape[0]
    n = tf.shape(points)[0]
    seeds = tf.random.experimental.stateless_split(seed, num_codes)
    sq_norms = tf.reduce_sum(tf.square(points), axis=-1)
    first = tf.random.stateless_uniform([], seeds[0], minval=0, maxval=n, dtype=tf.int32)
    center = tf.gather(points, first)
    centers = tf.tensor_scatter_nd_update(initial, [[0]], center[None])
    d2 = _squared_distances_to(points, sq_norms, center)

    def body(i, centers, d2):
        logits = tf.math.log(tf.maximum(d2, _TINY))[None]
        pick = tf.random.stateless_categorical(logits, 1, tf.gather(seeds, i), dtype=tf.int32)[0, 0]
        candidate = tf.gather(points, pick)
        fresh = tf.reduce_max(d2) > 0.0  # some point is not a seed yet
        row = tf.where(fresh, candidate, tf.gather(initial, i))
        centers = tf.tensor_scatter_nd_update(centers, [[i]], row[None])
        d2 = tf.where(fresh, tf.minimum(d2, _squared_distances_to(points, sq_norms, candidate)), d2)
        return i + 1, centers, d2

    _, centers, _ = tf.while_loop(lambda i, *_: i < num_codes, body, (tf.constant(1), centers, d2))
    return centers


def lloyd_steps(points, centers, iterations):
    """`iterations` steps of Lloyd's algorithm: each code moves to the mean of the points nearest to it (a code
    nearest to no point stays). `points` `[N, D]`, `centers` `[K, D]`; returns `[K, D]`."""
    num_codes = centers.shape[0]
    ones = tf.ones_like(points[:, 0])
    for _ in range(int(iterations)):
        nearest = tf.argmin(ops.distance_scores(points, centers), axis=-1, output_type=tf.int32)
        sums = tf.math.unsorted_segment_sum(points, nearest, num_codes)
        counts = tf.math.unsorted_segment_sum(ones, nearest, num_codes)[:, None]
        centers = tf.where(counts > 0, sums / tf.maximum(counts, 1.0), centers)
    return centers


def kmeans_codebook(points, initial, seed, iterations=0):
    """A `[K, D]` codebook fitted to `points` `[N, D]` in TensorFlow: k-means++ seeds, then `iterations` Lloyd
    steps (0: the seeds alone).

    Graph-safe (a `tf.while_loop` of K draws, each one pass over the points), so a layer can run it inside a
    training step. The draws are stateless (`seed`, int32 `[2]`): the same points and seed give the same codes.
    Rows that get no seed (fewer distinct points than codes) keep `initial`'s. `points` must not be empty.

    Args:
      points: `[N, D]` float vectors (cast to `initial`'s dtype).
      initial: `[K, D]` the codebook before (K static).
      seed: int32 `[2]` stateless seed.
      iterations: Lloyd steps after the seeds (a Python int).

    Returns:
      `[K, D]` in `initial`'s dtype.
    """
    initial = tf.convert_to_tensor(initial)
    points = tf.cast(points, initial.dtype)
    centers = _kmeans_plus_plus(points, initial, tf.cast(seed, tf.int32))
    return lloyd_steps(points, centers, iterations)


def fit_stage_codebooks(stages, points, iterations=10, seed=0, max_points=20000):
    """Fits the codebooks of `VectorQuantizer` `stages`, one after another, by k-means on `points` [N, D] and
    their residuals (SoundStream §3.3's k-means initialisation; one stage: plain k-means).

    Stage by stage: k-means++ seeds (`kmeans_plus_plus_codebook`, Arthur & Vassilvitskii 2007), then
    `iterations` Lloyd steps on at most `max_points` points (a seeded subset); the next stage fits the
    residuals this one's nearest codes leave. A code left without points keeps its seed. A stage with EMA
    restarts its statistics from the fitted codebook. Returns the mean squared residual after each stage.
    """
    iterations = int(iterations)
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}.")
    rng = np.random.default_rng(seed)
    points = np.asarray(points, np.float64)
    if len(points) > max_points:
        points = points[rng.choice(len(points), max_points, replace=False)]
    residual = points
    errors = []
    for stage in stages:
        num_codes = stage.num_codes
        codebook = np.asarray(stage.codebook.numpy(), np.float64)
        if np.all(np.isfinite(residual)):
            seeds = kmeans_plus_plus_codebook(residual, num_codes, seed=int(rng.integers(2**31 - 1)))
            codebook[: len(seeds)] = seeds
            for _ in range(iterations):
                nearest = _nearest(residual, codebook)
                counts = np.bincount(nearest, minlength=num_codes)
                sums = np.zeros_like(codebook)
                np.add.at(sums, nearest, residual)
                used = counts > 0
                codebook[used] = sums[used] / counts[used, None]
        stage.codebook.assign(codebook.astype(np.float32))
        if stage.ema:
            stage.ema_cluster_size_hidden.assign(tf.zeros_like(stage.ema_cluster_size_hidden))
            stage.ema_dw_hidden.assign(tf.zeros_like(stage.ema_dw_hidden))
            stage.ema_steps.assign(tf.zeros_like(stage.ema_steps))
        residual = residual - codebook[_nearest(residual, codebook)]
        errors.append(float(np.mean(np.sum(residual ** 2, axis=1))))
    return errors


def _nearest(points, codebook):
    """The index of each point's nearest code ([N, D], [K, D] -> [N])."""
    scores = np.sum(codebook ** 2, axis=1)[None, :] - 2.0 * points @ codebook.T
    return np.argmin(scores, axis=1)
