"""The Bjontegaard delta rate of benchmarks/codec_rates.py against cases with a closed form."""

import importlib.util
import math
import pathlib
import sys

import numpy as np
import pytest

_PATH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "codec_rates.py"
sys.path.insert(0, str(_PATH.parent))  # as when it runs as a script: its sibling `machine` imports
_spec = importlib.util.spec_from_file_location("codec_rates_under_test", _PATH)
codec_rates = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(codec_rates)
bd_rate = codec_rates.bd_rate


@pytest.mark.parametrize("points", [3, 4, 7])  # 3: PCHIP, 4 and more: the cubic fit
@pytest.mark.parametrize("factor", [0.5, 0.8, 1.0, 1.7])
def test_constant_factor_gives_that_factor(points, factor):
    psnr = np.linspace(15.0, 35.0, points)
    rate = 40.0 * np.exp(0.11 * psnr + 0.002 * (psnr - 20.0) ** 2)  # any smooth increasing curve
    value, span = bd_rate(factor * rate, psnr, rate, psnr)
    assert value == pytest.approx(factor - 1.0, abs=1e-9)
    assert span == pytest.approx((15.0, 35.0))


def test_partial_overlap_uses_only_the_common_range():
    # the test curve covers 20..40 dB, the anchor 10..30 dB: the BD-rate is taken over 20..30 dB only;
    # log(rate) is a cubic in PSNR on both sides, so the fits are exact
    anchor_psnr, test_psnr = np.linspace(10, 30, 6), np.linspace(20, 40, 5)
    log_rate = lambda p: 3.0 + 0.1 * p - 1e-3 * (p - 25) ** 2 + 2e-5 * p**3  # noqa: E731
    value, span = bd_rate(np.exp(log_rate(test_psnr) + math.log(0.6)), test_psnr,
                          np.exp(log_rate(anchor_psnr)), anchor_psnr)
    assert span == pytest.approx((20.0, 30.0))
    assert value == pytest.approx(-0.4, abs=1e-9)


def test_different_slopes_give_the_mean_log_ratio():
    # log(rate) = p / 5 against log(rate) = p / 10 over 20..30 dB: the mean difference is mean(p / 10) = 2.5
    p = np.array([20.0, 22.5, 25.0, 27.5, 30.0])
    value, _ = bd_rate(np.exp(p / 5), p, np.exp(p / 10), p)
    assert value == pytest.approx(math.expm1(2.5), rel=1e-9)
    # and the other way round, 1 / e^2.5 - 1
    value, _ = bd_rate(np.exp(p / 10), p, np.exp(p / 5), p)
    assert value == pytest.approx(math.expm1(-2.5), rel=1e-9)


def test_two_points_interpolate_linearly():
    # PCHIP through two points is the straight line: log(rate) linear in PSNR on both curves
    value, span = bd_rate([100.0, 100.0 * math.e], [20.0, 30.0], [50.0, 50.0 * math.e**2], [20.0, 30.0])
    # difference of log rates: log 2 + (0.1 - 0.2) (p - 20), mean over 20..30: log 2 - 0.5
    assert value == pytest.approx(2 * math.exp(-0.5) - 1, rel=1e-9)
    assert span == pytest.approx((20.0, 30.0))


def test_no_overlap_and_too_few_points():
    assert bd_rate([10, 20, 30, 40], [10, 12, 14, 16], [10, 20, 30, 40], [20, 22, 24, 26]) == (None, None)
    assert bd_rate([10, 20, 30, 40], [10, 12, 14, 16], [10, 20, 30, 40], [16, 18, 20, 22]) == (None, None)
    assert bd_rate([10], [12], [10, 20, 30, 40], [10, 12, 14, 16]) == (None, None)


def test_order_of_points_does_not_matter():
    p = np.array([14.0, 18.0, 21.0, 25.0, 31.0])
    r = np.exp(0.2 * p)
    a = bd_rate(1.3 * r, p, r, p)
    perm = [3, 0, 4, 1, 2]
    b = bd_rate(1.3 * r[perm], p[perm], r[::-1], p[::-1])
    assert a[0] == pytest.approx(b[0], abs=1e-12) and a[0] == pytest.approx(0.3, abs=1e-9)
