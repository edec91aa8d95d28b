"""`zoo.load` from a `tfvq.train` checkpoint restores every weight, trainable or not."""

import tfvq  # noqa: F401

import numpy as np
import pytest
import tensorflow as tf

from tfvq import zoo
from tfvq.zoo import run_folder


def _perturb(model, seed):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(size=v.shape).astype(v.dtype) if v.dtype != "int64" else np.full(v.shape, seed))


@pytest.mark.parametrize("name", ["rrvq_swatches", "hqa_digits"])
def test_load_from_checkpoint_prefix_restores_every_weight(tmp_path, name):
    trained = zoo.build(name)
    _perturb(trained, 3)
    prefix = tf.train.Checkpoint(model_variables=run_folder.model_variables(trained)).save(str(tmp_path / "ckpt"))
    loaded = zoo.load(name, weights=prefix)
    assert len(loaded.weights) == len(trained.weights)
    for a, b in zip(trained.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    # non-trainable state (e.g. the Gumbel-softmax temperatures) comes back too
    assert any(not v.trainable for v in loaded.weights)


def test_load_from_a_checkpoint_of_another_model_raises(tmp_path):
    other = zoo.build("hqa_digits")
    prefix = tf.train.Checkpoint(model_variables=run_folder.model_variables(other)).save(str(tmp_path / "ckpt"))
    with pytest.raises(ValueError, match="does not hold 'rrvq_swatches'"):
        zoo.load("rrvq_swatches", weights=prefix)
