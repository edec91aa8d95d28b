"""The Fréchet distance (Dowson & Landau 1982; the FID of Heusel et al. 2017) against closed forms and a
SciPy oracle (`scipy.linalg.sqrtm`, used here only)."""

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg

import tfvq.metrics
from tfvq.metrics import feature_statistics, fid, frechet_distance


def random_spd(rng, dim, floor=0.1):
    """A random symmetric positive definite matrix with eigenvalues >= `floor`."""
    a = rng.normal(size=(dim, dim))
    return a @ a.T + floor * np.eye(dim)


def scipy_frechet_distance(mu1, cov1, mu2, cov2):
    """The textbook formula with a general matrix square root of S1 S2 (SciPy)."""
    trace_sqrt = np.real(np.trace(scipy.linalg.sqrtm(cov1 @ cov2)))
    return np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt


def test_feature_statistics_are_the_mean_and_numpys_unbiased_covariance():
    features = np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32)
    mean, covariance = feature_statistics(features)
    assert mean.dtype == covariance.dtype == np.float64
    assert mean.shape == (5,) and covariance.shape == (5, 5)
    np.testing.assert_allclose(mean, features.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(covariance, np.cov(features.astype(np.float64), rowvar=False), rtol=1e-12)


@pytest.mark.parametrize("shape", [(50, 8), (5, 8), (3, 1)], ids=["full_rank", "fewer_rows_than_columns", "one_column"])
def test_a_set_against_itself_is_zero(shape):
    features = np.random.default_rng(1).normal(loc=3.0, size=shape)
    assert fid(features, features) == pytest.approx(0.0, abs=1e-6)


def test_a_shifted_set_is_the_squared_length_of_the_shift():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(30, 6))
    shift = rng.normal(size=6)
    assert fid(features, features + shift) == pytest.approx(np.sum(shift**2), rel=1e-9)


def test_diagonal_gaussians_match_the_closed_form():
    rng = np.random.default_rng(3)
    mu1, mu2 = rng.normal(size=7), rng.normal(size=7)
    s1, s2 = rng.uniform(0.1, 3.0, size=7), rng.uniform(0.1, 3.0, size=7)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)


def test_equal_covariances_leave_only_the_distance_of_the_means():
    rng = np.random.default_rng(4)
    cov = random_spd(rng, 6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    assert frechet_distance(mu1, cov, mu2, cov) == pytest.approx(np.sum((mu1 - mu2) ** 2), rel=1e-8)


def test_commuting_covariances_match_the_closed_form_in_their_shared_eigenbasis():
    rng = np.random.default_rng(5)
    basis, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    l1, l2 = rng.uniform(0.0, 4.0, size=5), rng.uniform(0.0, 4.0, size=5)
    cov1, cov2 = basis @ np.diag(l1) @ basis.T, basis @ np.diag(l2) @ basis.T
    expected = np.sum((np.sqrt(l1) - np.sqrt(l2)) ** 2)
    assert frechet_distance(np.zeros(5), cov1, np.zeros(5), cov2) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_non_commuting_covariances_match_scipy_sqrtm(seed):
    rng = np.random.default_rng(10 + seed)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    cov1, cov2 = random_spd(rng, 6), random_spd(rng, 6)
    assert not np.allclose(cov1 @ cov2, cov2 @ cov1)
    expected = scipy_frechet_distance(mu1, cov1, mu2, cov2)
    assert frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(expected, rel=1e-8)


def test_feature_sets_match_scipy_sqrtm():
    rng = np.random.default_rng(20)
    a = rng.normal(size=(60, 4))
    b = rng.normal(size=(45, 4)) @ rng.normal(size=(4, 4)) + 0.5
    expected = scipy_frechet_distance(*feature_statistics(a), *feature_statistics(b))
    assert fid(a, b) == pytest.approx(expected, rel=1e-8)


def test_is_symmetric_in_its_arguments():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(20, 5)), rng.gamma(2.0, size=(25, 5))
    assert fid(a, b) > 0.1
    assert fid(a, b) == pytest.approx(fid(b, a), rel=1e-9)


def test_singular_covariances_give_a_finite_non_negative_distance():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(4, 10)), rng.normal(size=(6, 10))  # ranks 3 and 5 in 10 dimensions
    expected = scipy_frechet_distance(*feature_statistics(a), *feature_statistics(b))
    assert fid(a, b) == pytest.approx(expected, rel=1e-6)
    assert fid(a, b) >= 0.0


@pytest.mark.parametrize("features, message", [
    (np.zeros(5), "2-D"),
    (np.zeros((1, 3)), "at least 2"),
    (np.zeros((4, 0)), "at least one column"),
    (np.array([[0.0, 1.0], [np.nan, 2.0]]), "NaN"),
])
def test_bad_features_raise(features, message):
    with pytest.raises(ValueError, match=message):
        feature_statistics(features)
    with pytest.raises(ValueError, match=message):
        fid(features, np.ones((3, features.shape[-1])))


def test_feature_sets_of_different_widths_raise():
    with pytest.raises(ValueError, match="different widths"):
        fid(np.zeros((3, 2)), np.zeros((3, 4)))


@pytest.mark.parametrize("mu1, cov1, mu2, cov2, message", [
    (np.zeros(3), np.eye(2), np.zeros(3), np.eye(3), r"cov1 must have shape"),
    (np.zeros((3, 1)), np.eye(3), np.zeros(3), np.eye(3), r"mu1 must be a 1-D"),
    (np.zeros(3), np.eye(3), np.zeros(2), np.eye(2), "different dimensions"),
    (np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2), np.eye(2), "cov1 is not symmetric"),
    (np.zeros(2), np.eye(2), np.array([0.0, np.inf]), np.eye(2), "NaN or an infinity"),
])
def test_bad_gaussians_raise(mu1, cov1, mu2, cov2, message):
    with pytest.raises(ValueError, match=message):
        frechet_distance(mu1, cov1, mu2, cov2)


def test_the_metrics_package_sits_at_the_bottom_of_the_import_graph():
    above = re.compile(r"^\s*(from|import)\s+tfvq\.(models|zoo|train|codec|experiments)\b"
                       r"|^\s*from\s+tfvq\s+import\s+.*\b(models|zoo|train|codec|experiments)\b", re.M)
    folder = pathlib.Path(tfvq.metrics.__file__).resolve().parent
    for path in sorted(folder.glob("*.py")):
        assert not above.search(path.read_text()), path.name


def test_the_fid_imports_no_tensorflow():
    code = ("import sys\nfrom tfvq.metrics import fid\nfid([[0.0], [1.0]], [[0.0], [2.0]])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
