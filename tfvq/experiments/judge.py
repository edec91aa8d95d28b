"""The real-digit judge of the experiments: the `mnist10k` test digits and what measures a reconstruction of them.

Three figures of a batch of reconstructions of the test digits, used by HQA's Table 3 and Figure 3
(`tfvq.experiments.hqa_mnist`) and the quantizers' comparison (`tfvq.experiments.quantizers`) alike: the MSE
(pixels in [0, 1]); the classification error of tfvq's MNIST classifier (`tfvq.metrics.digit_classifier`, a
small CNN trained on the training digits); and an rFID, the Fréchet distance between the classifier's
penultimate features of the originals and of the reconstructions (`tfvq.metrics.fid`). This rFID lives in an
MNIST classifier's feature space, not Inception's: its values do not compare with the papers' rFIDs, only its
orderings do.
"""

import numpy as np

from tfvq import data
from tfvq.metrics import digit_classifier
from tfvq.metrics.fid import feature_statistics, frechet_distance

DATASET = "mnist10k"


class Judge:
    """The test digits and what measures a reconstruction of them: the classifier, its features of the originals.

    Args:
      limit: the first `limit` test digits (default: all 2004).
      batch_size: images per call of `batched`'s function.
    """

    def __init__(self, limit=None, batch_size=500):
        self.images = data.load_numpy(DATASET, "test", limit=limit)
        self.labels = data.load_labels(DATASET, "test", limit=limit)
        self.classifier = digit_classifier.load_classifier()
        self.batch_size = batch_size
        self.reference = feature_statistics(self.classifier.features(self.images))

    def batched(self, fn):
        """`fn(images, batch index)` over the test digits in batches, concatenated."""
        n, b = len(self.images), self.batch_size
        return np.concatenate([np.asarray(fn(self.images[i:i + b], i // b)) for i in range(0, n, b)])

    def measure(self, reconstructions):
        """{"mse", "rfid", "error"} of reconstructions of the test digits (`error` a fraction)."""
        recon = np.clip(np.asarray(reconstructions, np.float32), 0.0, 1.0)
        features, logits = self.classifier.features_and_logits(recon)
        mu, cov = feature_statistics(features)
        return {"mse": float(np.mean((recon - self.images) ** 2)),
                "rfid": float(frechet_distance(mu, cov, *self.reference)),
                "error": float(np.mean(np.argmax(logits, axis=-1) != self.labels))}
