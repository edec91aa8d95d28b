"""Tests of `tfvq.data.toy_modes`: the four-mode density of HQA §4.1 (Figure 1a), its samples and the
definitions of an unrealistic point."""

import numpy as np
import pytest

from tfvq.data import toy_modes


# ------------------------------------------------------------------ density
def test_density_integrates_to_one():
    grid = np.linspace(-8.0, 8.0, 160001)
    assert np.trapezoid(toy_modes.density(grid), grid) == pytest.approx(1.0, abs=1e-6)


def test_density_peaks_at_modes_and_vanishes_between_them():
    peak = 0.25 / (toy_modes.STD * np.sqrt(2.0 * np.pi))
    np.testing.assert_allclose(toy_modes.density(toy_modes.MODES), peak, rtol=1e-6)
    midpoints = (toy_modes.MODES[1:] + toy_modes.MODES[:-1]) / 2.0
    assert np.all(toy_modes.density(midpoints) < 1e-10 * peak)


def test_density_accepts_scalar_flat_and_column_inputs():
    x = np.array([-3.0, 0.0, 1.6])
    np.testing.assert_array_equal(toy_modes.density(x), toy_modes.density(x[:, None]))
    assert toy_modes.density(-3.0).shape == (1,)
    with pytest.raises(ValueError, match="shape"):
        toy_modes.density(np.zeros([2, 2]))


def test_modes_are_four_equal_weight_well_separated_components():
    assert toy_modes.MODES.shape == (4,)
    assert np.all(np.diff(toy_modes.MODES) >= 10 * toy_modes.STD)
    np.testing.assert_allclose(toy_modes.WEIGHTS, 0.25)


def test_sample_has_right_shape_dtype_and_is_seeded():
    x = toy_modes.sample(10, seed=3)
    assert x.shape == (10, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(x, toy_modes.sample(10, seed=3))
    assert toy_modes.sample(0, seed=0).shape == (0, 1)
    with pytest.raises(ValueError):
        toy_modes.sample(-1)


def test_sample_matches_each_mode_mean_and_std():
    n = 80000
    x = toy_modes.sample(n, seed=0)[:, 0].astype(np.float64)
    nearest = toy_modes.nearest_mode(x)
    for m, mean in enumerate(toy_modes.MODES):
        xm = x[nearest == m]
        # Weight 1/4: binomial std sqrt(n p (1-p)) ≈ 122 points; allow 5 sigma.
        assert abs(len(xm) - n / 4) < 5 * np.sqrt(n * 0.25 * 0.75)
        # Mean within 5 standard errors, std within 5% (its standard error is ~0.5%).
        assert abs(xm.mean() - mean) < 5 * toy_modes.STD / np.sqrt(len(xm))
        assert xm.std() == pytest.approx(toy_modes.STD, rel=0.05)


# --------------------------------------------------- nearest mode, low density
POINTS = np.array([-3.0, -3.29, -3.31, -2.0, -0.2, 1.5, 1.79, 2.6, 10.0])
NEAREST = np.array([0, 0, 0, 1, 1, 2, 2, 3, 3])
LOW = np.array([False, False, True, True, True, False, False, True, True])


def test_nearest_mode_on_hand_chosen_points():
    np.testing.assert_array_equal(toy_modes.nearest_mode(POINTS), NEAREST)
    np.testing.assert_array_equal(toy_modes.nearest_mode(POINTS[:, None]), NEAREST)


def test_is_low_density_is_more_than_three_std_from_every_mode():
    np.testing.assert_array_equal(toy_modes.is_low_density(POINTS), LOW)
    np.testing.assert_array_equal(toy_modes.is_low_density(POINTS[:, None]), LOW)
    # The threshold is in units of STD: 2.6 is 4 std from 3.0.
    assert not toy_modes.is_low_density(2.6, threshold=5.0)[0]
    assert toy_modes.is_low_density(-3.25, threshold=2.0)[0]
    with pytest.raises(ValueError):
        toy_modes.is_low_density(0.0, threshold=0.0)


def test_true_samples_are_rarely_low_density():
    x = toy_modes.sample(100000, seed=1)
    # P(|N(0,1)| > 3) = 0.27%.
    assert np.mean(toy_modes.is_low_density(x)) == pytest.approx(0.0027, abs=0.001)
