"""Metrics of reconstructions: the FID (`fid`) and tfvq's pre-trained MNIST digit classifier
(`digit_classifier`), for HQA Table 3 and Figure 3 (Williams et al., 2020, §6.2).

tfvq's rFID on digits is the FID in the feature space of tfvq's own digit classifier, not Inception's:
its values do not compare with the paper's rFID, only its orderings do (see `tfvq.metrics.fid`).

`fid`, `feature_statistics` and `frechet_distance` need NumPy only; the classifier's names
(`DigitClassifier`, `build_classifier`, `train_classifier`, `load_classifier`) import TensorFlow when
first used. This package imports nothing of tfvq but `tfvq.data` (to train) and `tfvq.cli_utils`.
"""

import importlib

from tfvq.metrics.fid import feature_statistics, fid, frechet_distance

_CLASSIFIER_NAMES = ("DigitClassifier", "as_float_images", "build_classifier", "load_classifier",
                     "train_classifier")

__all__ = ["feature_statistics", "fid", "frechet_distance", *_CLASSIFIER_NAMES]


def __getattr__(name):
    """The classifier's names, imported on first use (they import Keras and TensorFlow)."""
    if name in _CLASSIFIER_NAMES:
        return getattr(importlib.import_module("tfvq.metrics.digit_classifier"), name)
    raise AttributeError(f"module 'tfvq.metrics' has no attribute {name!r}")
