"""Greedy layer-by-layer training (HQA Algorithm 2) under any `tf.distribute` strategy.

One custom loop serves every strategy (`model.fit` does not run under
MultiWorkerMirroredStrategy, keras-team/keras#20585): each step runs
`strategy.run` over the global batch, gradients are all-reduced, clipped by
their global norm and applied by RAdam (HQA App. C) to the current layer's
variables only. Each layer has its own optimiser and learning-rate schedule
(constant, then cosine-annealed over the final third), the Gumbel-softmax
temperature is annealed linearly from tau_0 to tau_min over the layer's steps,
and dead codes are reset during the first 75% of them (App. C.4).

A run is resumable: the model, every optimiser, the current layer and the
step within it are checkpointed with `tf.train.CheckpointManager`; running the
same command again continues from the last checkpoint. A non-finite loss
stops the run with `FloatingPointError` naming the layer and step, before
anything is saved, so the last good checkpoint stays.
"""

import dataclasses
import json
import os
import time
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfvq import data as tfvq_data
from tfvq import zoo
from tfvq.train import outputs
from tfvq.train.optimizers import RAdam
from tfvq.train.schedules import CosineAnnealFinalFraction, linear_anneal
from tfvq.train.strategies import is_chief, make_strategy


@dataclasses.dataclass
class TrainOptions:
    """Options of a training run; `None` takes the zoo entry's recipe.

    Attributes:
      model: zoo name.
      dataset: `tfvq.data` name (default: the entry's dataset).
      data_dir: where tfds datasets are prepared.
      strategy: one of `tfvq.train.STRATEGIES`.
      batch_size: global batch size.
      steps: steps per layer (one number for every layer).
      layers: which layers to train (1-based), in order; default all.
      model_dir: where checkpoints, summaries and outputs go.
      seed: seed of the data order, the initial weights and the sampling noise.
      log_every: steps between progress/TensorBoard updates.
      checkpoint_every: steps between checkpoints.
      eval_examples: test images used for the final metrics and PNG grids.
      verbose: print progress.
      tpu_address: for `strategy="tpu"`.
    """

    model: str = "hqa_digits"
    dataset: Optional[str] = None
    data_dir: Optional[str] = None
    strategy: str = "one_device"
    batch_size: Optional[int] = None
    steps: Optional[int] = None
    layers: Optional[Sequence[int]] = None
    model_dir: Optional[str] = None
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 200
    eval_examples: int = 512
    verbose: bool = True
    tpu_address: Optional[str] = None


class Trainer:
    """Builds the model, optimisers and checkpoint for `options` inside `strategy`."""

    def __init__(self, options, strategy=None):
        self.options = options
        self.entry = zoo.get(options.model)
        recipe = dict(self.entry.train)
        self.strategy = strategy or make_strategy(options.strategy, options.tpu_address)
        self.strategy_name = options.strategy if strategy is None else type(strategy).__name__
        self.chief = is_chief(self.strategy)
        self.dataset = options.dataset or self.entry.dataset
        self.batch_size = int(options.batch_size or recipe["batch_size"])
        replicas = self.strategy.num_replicas_in_sync
        if self.batch_size % replicas:
            raise ValueError(f"batch_size {self.batch_size} must be divisible by the {replicas} replicas.")
        keras.utils.set_random_seed(options.seed)
        with self.strategy.scope():
            self.model = zoo.build(options.model)
        num_layers = self.model.num_layers
        self.layers = list(options.layers or range(1, num_layers + 1))
        for l in self.layers:
            if not 1 <= l <= num_layers:
                raise ValueError(f"--layers must be in 1..{num_layers} for {options.model}, got {l}.")
        steps = recipe["steps"]
        self.steps = {l: int(options.steps or steps[(l - 1) % len(steps)]) for l in self.layers}
        self.recipe = recipe
        self.model_dir = options.model_dir or os.path.join("runs", options.model)
        with self.strategy.scope():
            self.optimizers = {}
            for l in self.layers:
                schedule = CosineAnnealFinalFraction(
                    recipe.get("learning_rate", 4e-4), self.steps[l], fraction=recipe.get("cosine_fraction", 1 / 3)
                )
                opt = RAdam(learning_rate=schedule, name=f"radam_layer_{l}")
                opt.build(self.model.layer_variables(l))
                self.optimizers[l] = opt
            self.layer_index = tf.Variable(0, dtype=tf.int64, trainable=False, name="layer_index")
            self.layer_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="layer_step")
        self.checkpoint = tf.train.Checkpoint(
            model=self.model,
            layer_index=self.layer_index,
            layer_step=self.layer_step,
            **{f"optimizer_layer_{l}": o for l, o in self.optimizers.items()},
        )
        ckpt_dir = os.path.join(self.model_dir, "checkpoints")
        if not self.chief:  # other workers write to a scratch copy (TF multi-worker convention)
            ckpt_dir = os.path.join(self.model_dir, "workers", f"{self.strategy.cluster_resolver.task_id}")
        self.manager = tf.train.CheckpointManager(self.checkpoint, ckpt_dir, max_to_keep=3)
        self.resumed_from = None
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            self.resumed_from = self.manager.latest_checkpoint
        self._step_fns = {}

    # ------------------------------------------------------------------ steps
    def _make_step(self, layer):
        model, strategy = self.model, self.strategy
        variables = model.layer_variables(layer)
        optimizer = self.optimizers[layer]
        total = self.steps[layer]
        quantizer = model.quantizer(layer)
        anneal = hasattr(quantizer, "temperature")
        t0 = self.recipe.get("initial_temperature", 1.0)
        t1 = self.recipe.get("final_temperature", 0.01)
        reset_until = self.recipe.get("reset_fraction", 0.75) * total
        clip = float(self.recipe.get("clip_norm", 1.0))
        base_seed = tf.constant([self.options.seed, layer], tf.int32)
        replicas = strategy.num_replicas_in_sync

        def replica_step(images, step):
            if anneal:
                quantizer.temperature.assign(tf.cast(linear_anneal(step, total, t0, t1), quantizer.temperature.dtype))
            if getattr(quantizer, "code_reset", False):
                quantizer.reset_enabled.assign(tf.cast(step, tf.float32) < reset_until)
            seed = tf.random.experimental.stateless_fold_in(base_seed, step)
            with tf.GradientTape() as tape:
                terms = model.layer_loss(images, layer, training=True, seed=seed)
            grads = tape.gradient(terms["loss"], variables)
            grads = [tf.convert_to_tensor(g) if g is not None else tf.zeros_like(v) for g, v in zip(grads, variables)]
            ctx = tf.distribute.get_replica_context()
            # Mean gradient over the global batch, clipped by its global norm (not per replica).
            grads = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, grads)
            grads, norm = tf.clip_by_global_norm(grads, clip)
            # Keras sums gradients over replicas when it applies them: hand it 1/R of the result.
            optimizer.apply_gradients(zip([g / replicas for g in grads], variables))
            terms["grad_norm"] = norm
            if anneal:
                terms["temperature"] = tf.convert_to_tensor(quantizer.temperature)
            return terms

        @tf.function
        def step_fn(iterator):
            images = next(iterator)
            per_replica = strategy.run(replica_step, args=(images, self.layer_step))
            self.layer_step.assign_add(1)
            return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in per_replica.items()}

        return step_fn

    def _dataset(self, layer, start_step):
        ds = tfvq_data.load(
            self.dataset,
            "train",
            batch_size=self.batch_size,
            data_dir=self.options.data_dir,
            shuffle=True,
            repeat=True,
            seed=self.options.seed * 1000 + layer * 100 + start_step,
            drop_remainder=True,
        )
        return iter(self.strategy.experimental_distribute_dataset(ds))

    def save(self):
        return self.manager.save(checkpoint_number=None)

    # ------------------------------------------------------------------- run
    def run(self):
        opts = self.options
        log = print if opts.verbose and self.chief else (lambda *a, **k: None)
        writer = tf.summary.create_file_writer(os.path.join(self.model_dir, "logs")) if self.chief else None
        if self.resumed_from:
            log(f"Resuming from {self.resumed_from} (layer {self.layers[int(self.layer_index.numpy())] if int(self.layer_index.numpy()) < len(self.layers) else 'done'}, step {int(self.layer_step.numpy())})")
        log(
            f"Training {opts.model} on {self.dataset}: layers {self.layers}, "
            f"{self.strategy.num_replicas_in_sync} replica(s) ({self.strategy_name}), "
            f"global batch {self.batch_size}, model_dir {self.model_dir}"
        )
        while int(self.layer_index.numpy()) < len(self.layers):
            layer = self.layers[int(self.layer_index.numpy())]
            total = self.steps[layer]
            start = int(self.layer_step.numpy())
            step_fn = self._make_step(layer)
            iterator = self._dataset(layer, start)
            log(f"Layer {layer}/{self.model.num_layers}: {total} steps, {self.model.bits(layer)} bits per image")
            bar = keras.utils.Progbar(total, verbose=1 if (opts.verbose and self.chief) else 0, stateful_metrics=["loss", "mse", "perplexity", "temp", "steps/s"],
                                      unit_name="step")
            if start:
                bar.update(start)
            t_last, s_last = time.perf_counter(), start
            for step in range(start, total):
                terms = step_fn(iterator)
                loss = float(terms["loss"])
                if not np.isfinite(loss):
                    raise FloatingPointError(
                        f"Non-finite loss ({loss}) at layer {layer}, step {step}. Stopped before saving; the last "
                        f"good checkpoint is {self.manager.latest_checkpoint or 'none (no checkpoint yet)'}."
                    )
                done = step + 1
                if done % opts.log_every == 0 or done == total:
                    now = time.perf_counter()
                    rate = (done - s_last) / max(now - t_last, 1e-9)
                    t_last, s_last = now, done
                    values = {k: float(v) for k, v in terms.items()}
                    bar.update(done, [("loss", values["loss"]), ("mse", values["mse"]),
                                      ("perplexity", values["perplexity"])]
                               + ([("temp", values["temperature"])] if "temperature" in values else [])
                               + [("steps/s", rate)])
                    if writer is not None:
                        with writer.as_default(step=done):
                            for k, v in values.items():
                                tf.summary.scalar(f"layer_{layer}/{k}", v)
                            tf.summary.scalar(f"layer_{layer}/steps_per_second", rate)
                            tf.summary.scalar(f"layer_{layer}/images_per_second", rate * self.batch_size)
                if done % opts.checkpoint_every == 0 and done < total:
                    self.save()
            self.layer_index.assign_add(1)
            self.layer_step.assign(0)
            self.save()
            if writer is not None:
                self._image_summary(writer, layer)
        return self.finish()

    def _image_summary(self, writer, layer):
        images = tfvq_data.load_numpy(self.dataset, "test", limit=8, data_dir=self.options.data_dir)
        recon = self.model.reconstruct(images, layer, stochastic=False).numpy()
        with writer.as_default(step=layer):
            tf.summary.image(f"reconstructions/layer_{layer}", np.concatenate([images, recon], axis=2), max_outputs=8)
        writer.flush()

    def finish(self):
        """Writes final weights, PNG grids and metrics.json (chief only); returns the metrics."""
        if not self.chief:
            return {}
        os.makedirs(self.model_dir, exist_ok=True)
        weights = os.path.join(self.model_dir, "model.weights.h5")
        self.model.save_weights(weights)
        images = tfvq_data.load_numpy(self.dataset, "test", limit=self.options.eval_examples,
                                      data_dir=self.options.data_dir)
        metrics, paths = outputs.write_outputs(self.model, images, sorted(self.layers), self.model_dir,
                                               seed=self.options.seed)
        summary = {"model": self.options.model, "dataset": self.dataset, "weights": weights, **paths,
                   "tensorboard": os.path.join(self.model_dir, "logs"), "layers": metrics}
        with open(os.path.join(self.model_dir, "metrics.json"), "w") as f:
            json.dump({"model": self.options.model, "dataset": self.dataset,
                       "layers": {str(k): v for k, v in metrics.items()}}, f, indent=2)
        return summary


def train(options=None, strategy=None, **kwargs):
    """Trains a zoo model greedily; see `TrainOptions`. Returns a summary dict."""
    options = options or TrainOptions(**kwargs)
    return Trainer(options, strategy).run()
