"""The one-dimensional four-mode density of HQA §4.1 (Figure 1a).

The data of HQA's illustrative experiment, which `tfvq.experiments.toy_modes` runs (one idea at two
levels, hence one name: this module holds the density, that one the experiment).

HQA's illustrative task compresses points drawn from "a simple multi-modal
distribution" with four well-separated modes; a reconstruction is *unrealistic*
when it "takes on a value that has low probability under the original
distribution", i.e. falls outside the four modes (HQA §4.1). The paper gives no
numbers. **The parameters below are this package's choice**: an equal-weight
mixture of four Gaussians

    p(x) = 1/4 * sum_m N(x; MODES[m], STD^2),   MODES = (-3, -1.5, 1.5, 3),  STD = 0.1,

so neighbouring modes are at least 1.5 / 0.1 = 15 standard deviations apart and
the density midway between two neighbours is about 1e-12 of its peak.

The spacing is deliberately unequal. With equally spaced modes (say -3, -1, 1,
3) the mean of three neighbouring modes is itself a mode ((-3 - 1 + 1) / 3 = -1),
so a 1-bit quantizer that puts three modes under one code reconstructs them
*on* a mode and looks realistic by coincidence. With the means above, the
average of any 2 or 3 modes lies at least 0.5 (5 std) from every mode, so
whatever a 2-code model merges is reconstructed in a low-density region.

Definitions used throughout (`tfvq.experiments.toy_modes` reports them):

* `nearest_mode(x)`: the index (0..3) of the mode mean closest to x.
* `is_low_density(x, threshold=3.0)`: x is *unrealistic* when it lies more than
  `threshold` standard deviations from every mode, i.e.
  `|x - MODES[nearest_mode(x)]| > threshold * STD`. With the default 3 std a
  sample of the true density is flagged with probability 0.27%.

Example:
  >>> x = sample(4, seed=0)
  >>> x.shape, x.dtype
  ((4, 1), dtype('float32'))
  >>> is_low_density([-3.0, -2.0, 1.45]).tolist()
  [False, True, False]
"""

import numpy as np

MODES = np.array([-3.0, -1.5, 1.5, 3.0], dtype=np.float32)
"""Means of the four mixture components (this package's choice; HQA gives none)."""

STD = 0.1
"""Standard deviation of every component (this package's choice)."""

WEIGHTS = np.full(len(MODES), 1.0 / len(MODES), dtype=np.float64)
"""Mixture weights: equal."""

LOW_DENSITY_THRESHOLD = 3.0
"""Default distance, in units of `STD`, beyond which a point is unrealistic."""


def _as_points(x):
    """`x` as a float64 array of shape `[n]` (accepts scalars, `[n]` and `[n, 1]`)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim > 1:
        raise ValueError(f"expected a scalar, shape [n] or shape [n, 1] of points, got shape {x.shape}.")
    return np.atleast_1d(x)


def sample(n, seed=None):
    """Draws `n` points from the four-mode mixture.

    Args:
      n: number of points (>= 0).
      seed: an int or `np.random.Generator`; None draws fresh entropy.

    Returns:
      float32 array of shape `[n, 1]`.
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}.")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    components = rng.choice(len(MODES), size=n, p=WEIGHTS)
    x = MODES[components].astype(np.float64) + STD * rng.standard_normal(n)
    return x.astype(np.float32)[:, None]


def density(x):
    """The mixture density p(x) at points `x` (scalar, `[n]` or `[n, 1]`); returns float64 `[n]`."""
    x = _as_points(x)
    z = (x[:, None] - MODES[None, :].astype(np.float64)) / STD
    pdf = np.exp(-0.5 * z**2) / (STD * np.sqrt(2.0 * np.pi))
    return pdf @ WEIGHTS


def nearest_mode(x):
    """Index (int64 `[n]`, 0..3) of the mode mean closest to each point of `x`."""
    x = _as_points(x)
    return np.argmin(np.abs(x[:, None] - MODES[None, :].astype(np.float64)), axis=1)


def distance_to_nearest_mode(x):
    """`|x - MODES[nearest_mode(x)]|` in units of `STD` (float64 `[n]`)."""
    x = _as_points(x)
    return np.min(np.abs(x[:, None] - MODES[None, :].astype(np.float64)), axis=1) / STD


def is_low_density(x, threshold=LOW_DENSITY_THRESHOLD):
    """Whether each point is *unrealistic* (HQA §4.1): more than `threshold`
    standard deviations from every mode. Returns a bool array `[n]`."""
    if float(threshold) <= 0.0:
        raise ValueError(f"threshold must be positive (in units of STD), got {threshold}.")
    return distance_to_nearest_mode(x) > float(threshold)
