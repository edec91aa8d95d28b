"""The run folder of `tfvq.train` and its checkpoints: the layout the trainer writes and `tfvq.zoo.load` reads.

A run folder (`train.py --model_dir`) holds:

    config.json, metadata.json, model.weights.h5
                         a model folder (`tfvq.zoo.folders`) of the final weights, written when the run ends
    model.prior.json     the static prior of those weights' codes over the training split (discrete models;
                         written by `train.py` where `tfvq.zoo.priors` puts a model folder's priors):
                         `tfvq compress --weights=MODEL_DIR` entropy-codes with it
    checkpoints/         `tf.train.CheckpointManager` checkpoints of the chief
    workers/<task id>/   scratch checkpoints of the other workers (multi-worker)
    logs/                TensorBoard event files
    metrics.json, *.png  the run's outputs

Checkpoints name the model's weights by position (`model_variables`), since
`tf.train.Checkpoint(model=...)` saves no variable of a Keras 3 model.
"""

import os

import tensorflow as tf

from tfvq.zoo.folders import WEIGHTS_FILE  # noqa: F401  (the run's final weights: a model folder's)

CHECKPOINTS = "checkpoints"
LOGS = "logs"


def model_variables(model):
    """The variables a checkpoint holds for `model`: `model.weights`, in order (trainable or not)."""
    return list(model.weights)


def checkpoint_dir(model_dir, worker=None):
    """Where checkpoints go: `checkpoints/` (chief), `workers/<id>/` for other workers (TF's convention)."""
    return os.path.join(model_dir, CHECKPOINTS) if worker is None else os.path.join(model_dir, "workers", str(worker))


def final_weights(model_dir):
    """The run's final weights file, or None if the run has not finished."""
    path = os.path.join(model_dir, WEIGHTS_FILE)
    return path if os.path.exists(path) else None


def latest_checkpoint(path):
    """The newest checkpoint prefix in a run folder (or in a checkpoint folder), or None."""
    return tf.train.latest_checkpoint(os.path.join(path, CHECKPOINTS)) or tf.train.latest_checkpoint(path)


def restore_model_variables(model, prefix):
    """Loads a checkpoint's model weights into `model` (optimiser state and step are ignored)."""
    tf.train.Checkpoint(model_variables=model_variables(model)).restore(prefix).expect_partial() \
        .assert_existing_objects_matched()
