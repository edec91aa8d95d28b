"""Fixtures of the training tests."""

import pytest
import tensorflow as tf

from tfvq.train import loop
from tfvq.zoo.tiny import register_tiny


@pytest.fixture
def tiny_trainer(tmp_path):
    """`make(name, **options)`: a trainer of `name`'s tiny model (`tfvq.zoo.tiny`) on the digits (converted to
    its image shape), batch 4, stage 1, on one CPU; `options` change any `TrainOptions` key."""

    def make(name, **options):
        options = dict(dict(model=register_tiny(name), dataset="digits", batch_size=4, steps=2, layers=[1], seed=1,
                            eval_examples=8, verbose=False, model_dir=str(tmp_path / "run")), **options)
        return loop.Trainer(loop.TrainOptions(**options), tf.distribute.OneDeviceStrategy("/cpu:0"))

    return make
