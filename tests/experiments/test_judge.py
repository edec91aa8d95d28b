"""Tests of `tfvq.experiments.judge`: the real-digit judge's MSE, classification error and rFID."""

import numpy as np
import pytest

from tfvq.experiments import judge as judge_module
from tfvq.metrics.fid import feature_statistics, fid


class _FakeJudge:
    """Measures as `Judge` does, with features that are the pixels themselves."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    class classifier:  # noqa: N801  (stands in for a DigitClassifier)
        @staticmethod
        def features(x):
            return np.asarray(x, np.float64).reshape(len(x), -1)[:, :6]

        @staticmethod
        def predict(x):
            return (np.asarray(x).reshape(len(x), -1).mean(axis=1) > 0.5).astype(int)

        @classmethod
        def features_and_logits(cls, x):
            return cls.features(x), np.eye(2)[cls.predict(x)]


def test_a_judge_measures_mse_error_and_the_frechet_distance_of_its_features():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(40, 4, 4, 1)).astype(np.float32)
    judge = _FakeJudge(images, (images.reshape(40, -1).mean(1) > 0.5).astype(int))
    judge.reference = feature_statistics(judge.classifier.features(images))
    recon = np.clip(images + 0.1 * rng.standard_normal(images.shape).astype(np.float32), 0, 1)
    got = judge_module.Judge.measure(judge, recon)
    assert got["mse"] == pytest.approx(np.mean((recon - images) ** 2), rel=1e-6)
    assert got["rfid"] == pytest.approx(fid(judge.classifier.features(images), judge.classifier.features(recon)))
    assert got["error"] == pytest.approx(np.mean(judge.classifier.predict(recon) != judge.labels))


def test_the_judge_holds_the_first_test_digits_and_their_labels_and_batches_over_them(monkeypatch):
    class Classifier:
        def features(self, x):
            return np.asarray(x, np.float64).reshape(len(x), -1)[:, :3]

    monkeypatch.setattr(judge_module.digit_classifier, "load_classifier", Classifier)
    judge = judge_module.Judge(limit=7, batch_size=3)
    np.testing.assert_array_equal(judge.images, judge_module.data.load_numpy("mnist10k", "test", limit=7))
    np.testing.assert_array_equal(judge.labels, judge_module.data.load_labels("mnist10k", "test", limit=7))
    calls = []
    out = judge.batched(lambda x, i: calls.append((len(x), i)) or x[:, 0, 0, 0])
    assert calls == [(3, 0), (3, 1), (1, 2)]
    np.testing.assert_array_equal(out, judge.images[:, 0, 0, 0])
