"""The Fréchet distance between two sets of features, and the FID built on it.

The Fréchet Inception Distance (FID; Heusel et al., 2017, "GANs Trained by a Two Time-Scale Update Rule
Converge to a Local Nash Equilibrium", §"Fréchet Inception Distance") fits a Gaussian to the features of
each set of images and reports the Fréchet (2-Wasserstein) distance between the two Gaussians, which has
the closed form of Dowson & Landau (1982, "The Fréchet distance between multivariate normal
distributions"):

    d^2 = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^{1/2}).

HQA (Williams et al., 2020, §6.2, Table 3 and Figure 3) reports rFID: the FID between the test images and
their reconstructions.

**tfvq's rFID on digits is computed in the feature space of tfvq's own MNIST classifier**
(`tfvq.metrics.digit_classifier`, the 128 penultimate activations of a small CNN trained on `mnist10k`),
**not in Inception-v3's**. Its values do not compare with the rFID values printed in the HQA paper (or any
other paper); only its orderings do (which model, layer or rate reconstructs closer to the originals'
feature distribution).

This module needs NumPy only (no SciPy, no TensorFlow).
"""

import numpy as np


def feature_statistics(features):
    """The mean and covariance of a set of feature vectors: the Gaussian that FID fits to them.

    Args:
      features: array-like `[N, D]`, N >= 2 finite feature vectors (e.g. a classifier's penultimate
        activations for N images).

    Returns:
      `(mean, covariance)`: float64 `[D]` and `[D, D]`; the covariance is the unbiased one (divided by
      N - 1), as `numpy.cov(features, rowvar=False)`.

    Raises:
      ValueError: `features` is not 2-D, has fewer than 2 rows or no columns, or holds a NaN or infinity.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be a 2-D array [N, D], got shape {features.shape}.")
    if features.shape[0] < 2:
        raise ValueError(f"a covariance needs at least 2 feature vectors, got {features.shape[0]}.")
    if features.shape[1] < 1:
        raise ValueError("features must have at least one column (D >= 1), got D = 0.")
    if not np.all(np.isfinite(features)):
        raise ValueError("features hold a NaN or an infinity.")
    mean = features.mean(axis=0)
    centred = features - mean
    covariance = centred.T @ centred / (features.shape[0] - 1)
    return mean, covariance


def _check_gaussian(name, mu, cov):
    """`mu` and `cov` as float64 `[D]` and symmetric `[D, D]`, or a ValueError naming the argument."""
    mu = np.asarray(mu, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    if mu.ndim != 1 or mu.shape[0] < 1:
        raise ValueError(f"mu{name} must be a 1-D array [D] with D >= 1, got shape {mu.shape}.")
    if cov.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"cov{name} must have shape [D, D] = {(mu.shape[0],) * 2} to match mu{name}, "
                         f"got {cov.shape}.")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(cov))):
        raise ValueError(f"mu{name} or cov{name} holds a NaN or an infinity.")
    scale = max(np.max(np.abs(cov)), np.finfo(np.float64).tiny)
    if np.max(np.abs(cov - cov.T)) > 1e-6 * scale:
        raise ValueError(f"cov{name} is not symmetric: it is not a covariance matrix.")
    return mu, 0.5 * (cov + cov.T)


def _psd_sqrt(matrix):
    """The symmetric square root of a symmetric PSD matrix, its tiny negative eigenvalues (round-off)
    taken as 0."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(mu1, cov1, mu2, cov2):
    """The squared Fréchet distance between the Gaussians N(mu1, cov1) and N(mu2, cov2).

    d^2 = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^{1/2}) (Dowson & Landau, 1982; the FID of
    Heusel et al., 2017, §"Fréchet Inception Distance").

    S1 S2 is not symmetric, and a general matrix square root (`scipy.linalg.sqrtm`) of it can return
    complex round-off or fail when the covariances are singular (fewer samples than features). Instead
    the trace term is computed as Tr((S1^{1/2} S2 S1^{1/2})^{1/2}), the same number (S1 S2 and
    S1^{1/2} S2 S1^{1/2} have the same eigenvalues), from two symmetric eigendecompositions; eigenvalues
    below zero by round-off are clipped to 0. A result below zero by round-off is returned as 0.

    Args:
      mu1, mu2: float `[D]` means.
      cov1, cov2: float `[D, D]` symmetric positive semi-definite covariances.

    Returns:
      The squared distance, a Python float >= 0 (FID values are quoted as this d^2).

    Raises:
      ValueError: the shapes are not `[D]` and `[D, D]` with one D for both Gaussians, an input holds a
        NaN or an infinity, or a covariance is not symmetric.
    """
    mu1, cov1 = _check_gaussian("1", mu1, cov1)
    mu2, cov2 = _check_gaussian("2", mu2, cov2)
    if mu1.shape != mu2.shape:
        raise ValueError(f"the two Gaussians have different dimensions: D = {mu1.shape[0]} and {mu2.shape[0]}.")
    sqrt_cov1 = _psd_sqrt(cov1)
    middle = sqrt_cov1 @ cov2 @ sqrt_cov1
    middle_eigenvalues = np.linalg.eigvalsh(0.5 * (middle + middle.T))
    trace_sqrt = np.sum(np.sqrt(np.clip(middle_eigenvalues, 0.0, None)))
    difference = mu1 - mu2
    distance = difference @ difference + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt
    return float(max(distance, 0.0))


def fid(features_a, features_b):
    """The Fréchet distance between the Gaussians fitted to two sets of features (FID; Heusel et al., 2017).

    With features from tfvq's digit classifier (`DigitClassifier.features`) of test images and of their
    reconstructions, this is tfvq's rFID (HQA Table 3): comparable between tfvq's models, not with the
    paper's Inception-based values (see the module docstring).

    Args:
      features_a, features_b: array-like `[N_a, D]` and `[N_b, D]`, at least 2 finite rows each.

    Returns:
      The squared Fréchet distance, a Python float >= 0.

    Raises:
      ValueError: either array is not `[N >= 2, D]` and finite, or the two D differ.
    """
    features_a = np.asarray(features_a)
    features_b = np.asarray(features_b)
    if features_a.ndim == 2 and features_b.ndim == 2 and features_a.shape[1] != features_b.shape[1]:
        raise ValueError(f"the two feature sets have different widths: D = {features_a.shape[1]} and "
                         f"{features_b.shape[1]}.")
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))
