"""Training under any `tf.distribute` strategy: greedy layer by layer (HQA) or end to end (RRVQ-VAE).

One custom loop serves every strategy (`model.fit` does not run under
MultiWorkerMirroredStrategy, keras-team/keras#20585): each step runs
`strategy.run` over the global batch, gradients are all-reduced, clipped by
their global norm and applied. The model decides which of two regimes runs:

* Greedy (HQA Algorithm 2; models without a true `end_to_end` attribute).
  The training is a sequence of stages, one per layer: RAdam (HQA App. C)
  updates the current layer's variables only. Each layer has its own
  optimiser and learning-rate schedule (constant, then cosine-annealed over
  the final third), the Gumbel-softmax temperature is annealed linearly from
  tau_0 to tau_min over the layer's steps, and dead codes are reset during the
  first 75% of them (App. C.4).
* End to end (RRVQ-VAE App. C; `model.end_to_end` is True). One stage (stage
  "layer 1" in the bookkeeping below) updates every trainable variable on
  `model.train_loss` (the free-bits negative ELBO in bits/dim) with AdaMax
  (recipe `optimizer`) at a learning rate held in the optimiser's variable.
  Every step calls `model.set_temperature(step, total_steps)` (the model's own
  Gumbel-softmax schedule). Every `eval_every` steps the test-set negative ELBO
  in bits/dim (`model.bits_per_dim`, mean over `eval_examples` test images,
  evaluated on one device with fixed sampling seeds) is fed to
  `ReduceOnPlateau`: "multiplying by 0.8 when there has been no decrease in
  the test set ELBO for 20 / 5 epochs, down to a minimum of 5e-5". This
  trainer counts evaluation periods of `eval_every` steps instead of epochs, so
  `plateau_patience` is in evaluations.

A run is resumable: the model (end to end: every weight of `model.weights`,
non-trainable ones included), every optimiser (with its learning rate), the
plateau schedule's state, the current stage and the step within it are
checkpointed with `tf.train.CheckpointManager`; running the same command again
continues from the last checkpoint. A non-finite loss stops the run with
`FloatingPointError` naming the step (and layer), before anything is saved, so
the last good checkpoint stays.
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
from tfvq.train.schedules import CosineAnnealFinalFraction, ReduceOnPlateau, linear_anneal
from tfvq.train.strategies import is_chief, make_strategy

OPTIMIZERS = {"adamax": keras.optimizers.Adamax, "adam": keras.optimizers.Adam, "radam": RAdam}
"""End-to-end optimisers by recipe name (`train["optimizer"]`); greedy training always uses RAdam."""


@dataclasses.dataclass
class TrainOptions:
    """Options of a training run; `None` takes the zoo entry's recipe.

    Attributes:
      model: zoo name.
      dataset: `tfvq.data` name (default: the entry's dataset).
      data_dir: where tfds datasets are prepared.
      strategy: one of `tfvq.train.STRATEGIES`.
      batch_size: global batch size.
      steps: steps per layer (one number for every layer); for an end-to-end
        model, the number of training steps.
      layers: which layers to train (1-based), in order; default all. Greedy
        models only.
      model_dir: where checkpoints, summaries and outputs go.
      seed: seed of the data order, the initial weights and the sampling noise.
      log_every: steps between progress/TensorBoard updates.
      checkpoint_every: steps between checkpoints.
      eval_examples: test images used for the final metrics and PNG grids
        (and, end to end, for each plateau evaluation and the train-set bits
        per dim); default the recipe's `eval_examples`, else 512.
      eval_every: end to end only: steps between test-set evaluations that
        drive the reduce-on-plateau learning rate (default the recipe's
        `eval_every`, else 500).
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
    eval_examples: Optional[int] = None
    eval_every: Optional[int] = None
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
        self.end_to_end = bool(getattr(self.model, "end_to_end", False))
        self.recipe = recipe
        self.eval_examples = int(options.eval_examples or recipe.get("eval_examples", 512))
        self.model_dir = options.model_dir or os.path.join("runs", options.model)
        if self.end_to_end:
            if options.layers is not None and list(options.layers) != [1]:
                raise ValueError(f"{options.model} is trained end to end: --layers applies to greedy models only.")
            self.layers = [1]  # one stage, with every variable
            self.steps = {1: int(options.steps or recipe["steps"][0])}
            self.eval_every = int(options.eval_every or recipe.get("eval_every", 500))
            if self.eval_every < 1:
                raise ValueError(f"eval_every must be >= 1, got {self.eval_every}.")
        else:
            num_layers = self.model.num_layers
            self.layers = list(options.layers or range(1, num_layers + 1))
            for l in self.layers:
                if not 1 <= l <= num_layers:
                    raise ValueError(f"--layers must be in 1..{num_layers} for {options.model}, got {l}.")
            steps = recipe["steps"]
            self.steps = {l: int(options.steps or steps[(l - 1) % len(steps)]) for l in self.layers}
        with self.strategy.scope():
            self.optimizers = {}
            if self.end_to_end:
                name = recipe.get("optimizer", "adamax")
                if name not in OPTIMIZERS:
                    raise ValueError(f"Unknown optimizer {name!r} in the recipe of {options.model}; "
                                     f"known: {', '.join(sorted(OPTIMIZERS))}.")
                # A float learning rate is a variable of the optimiser: the plateau schedule assigns it and the
                # checkpoint saves it (`optimizer/_learning_rate`).
                opt = OPTIMIZERS[name](learning_rate=float(recipe.get("learning_rate", 8e-4)), name=name)
                opt.build(self.model.trainable_variables)
                self.optimizers[1] = opt
            else:
                for l in self.layers:
                    schedule = CosineAnnealFinalFraction(
                        recipe.get("learning_rate", 4e-4), self.steps[l], fraction=recipe.get("cosine_fraction", 1 / 3)
                    )
                    opt = RAdam(learning_rate=schedule, name=f"radam_layer_{l}")
                    opt.build(self.model.layer_variables(l))
                    self.optimizers[l] = opt
            self.layer_index = tf.Variable(0, dtype=tf.int64, trainable=False, name="layer_index")
            self.layer_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="layer_step")
        if self.end_to_end:
            # Outside the strategy scope: plain variables, updated eagerly from the (replicated) evaluation.
            self.plateau = ReduceOnPlateau(
                factor=recipe.get("plateau_factor", 0.8),
                patience=recipe.get("plateau_patience", 5),
                min_value=recipe.get("min_learning_rate", 5e-5),
            )
            tracked = dict(optimizer=self.optimizers[1], plateau=self.plateau)
        else:
            self.plateau = None
            tracked = {f"optimizer_layer_{l}": o for l, o in self.optimizers.items()}
        # `model=` alone saves no variable of a Keras 3 model (tf.train.Checkpoint does not see Keras 3's
        # tracked layers): trainable ones would come back only through the optimisers' slots, non-trainable
        # ones (temperatures, code-usage counts, running statistics) not at all. So the model's weights are
        # saved as a list in `model.weights` order (their paths are not stable across builds).
        tracked["model_variables"] = zoo.checkpoint_variables(self.model)
        self.checkpoint = tf.train.Checkpoint(
            layer_index=self.layer_index,
            layer_step=self.layer_step,
            **tracked,
        )
        ckpt_dir = os.path.join(self.model_dir, "checkpoints")
        if not self.chief:  # other workers write to a scratch copy (TF multi-worker convention)
            ckpt_dir = os.path.join(self.model_dir, "workers", f"{self.strategy.cluster_resolver.task_id}")
        self.manager = tf.train.CheckpointManager(self.checkpoint, ckpt_dir, max_to_keep=3)
        self.resumed_from = None
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            self.resumed_from = self.manager.latest_checkpoint
        self._eval_fn = None
        self._eval_images = None

    @property
    def learning_rate(self):
        """The end-to-end optimiser's current learning rate (a Python float)."""
        return float(np.asarray(self.optimizers[1].learning_rate.numpy()))

    # ------------------------------------------------------------------ steps
    def _make_step(self, layer):
        """A `tf.function` running one global step of stage `layer` (1 for an end-to-end model)."""
        model, strategy = self.model, self.strategy
        optimizer = self.optimizers[layer]
        total = self.steps[layer]
        base_seed = tf.constant([self.options.seed, layer], tf.int32)
        replicas = strategy.num_replicas_in_sync
        if self.end_to_end:
            variables = model.trainable_variables
            clip = float(self.recipe.get("clip_norm", 100.0))

            def prepare(step):
                model.set_temperature(step, total)

            def loss_terms(images, seed):
                return model.train_loss(images, training=True, seed=seed)

            def extra_terms(terms):
                return terms

        else:
            variables = model.layer_variables(layer)
            quantizer = model.quantizer(layer)
            anneal = hasattr(quantizer, "temperature")
            t0 = self.recipe.get("initial_temperature", 1.0)
            t1 = self.recipe.get("final_temperature", 0.01)
            reset_until = self.recipe.get("reset_fraction", 0.75) * total
            clip = float(self.recipe.get("clip_norm", 1.0))

            def prepare(step):
                if anneal:
                    quantizer.temperature.assign(
                        tf.cast(linear_anneal(step, total, t0, t1), quantizer.temperature.dtype))
                if getattr(quantizer, "code_reset", False):
                    quantizer.reset_enabled.assign(tf.cast(step, tf.float32) < reset_until)

            def loss_terms(images, seed):
                return model.layer_loss(images, layer, training=True, seed=seed)

            def extra_terms(terms):
                if anneal:
                    terms["temperature"] = tf.convert_to_tensor(quantizer.temperature)
                return terms

        def replica_step(images, step):
            prepare(step)
            seed = tf.random.experimental.stateless_fold_in(base_seed, step)
            with tf.GradientTape() as tape:
                terms = dict(loss_terms(images, seed))
            grads = tape.gradient(terms["loss"], variables)
            grads = [tf.convert_to_tensor(g) if g is not None else tf.zeros_like(v) for g, v in zip(grads, variables)]
            ctx = tf.distribute.get_replica_context()
            # Mean gradient over the global batch, clipped by its global norm (not per replica).
            grads = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, grads)
            grads, norm = tf.clip_by_global_norm(grads, clip)
            # Keras sums gradients over replicas when it applies them: hand it 1/R of the result.
            optimizer.apply_gradients(zip([g / replicas for g in grads], variables))
            terms["grad_norm"] = norm
            return extra_terms(terms)

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

    # ------------------------------------------------------------ evaluation
    def evaluate_bpd(self, images=None):
        """Mean negative ELBO in bits/dim (`model.elbo`) over `images` (default: the eval test images).

        Runs on one device in batches of the global batch size, with fixed
        sampling seeds, so two evaluations of the same weights agree exactly
        (`outputs.evaluate_end_to_end`; its graph is traced once per run).
        """
        if images is None:
            if self._eval_images is None:
                self._eval_images = tfvq_data.load_numpy(self.dataset, "test", limit=self.eval_examples,
                                                         data_dir=self.options.data_dir)
            images = self._eval_images
        if self._eval_fn is None:
            self._eval_fn = outputs.make_elbo_fn(self.model)
        return outputs.evaluate_end_to_end(self.model, images, batch_size=self.batch_size, seed=self.options.seed,
                                           elbo_fn=self._eval_fn)["bpd"]

    def _plateau_step(self):
        """One evaluation: test bpd -> `ReduceOnPlateau` -> the optimiser's learning rate. Returns (bpd, lr)."""
        bpd = self.evaluate_bpd()
        optimizer = self.optimizers[1]
        new_lr = self.plateau.update(bpd, self.learning_rate)
        if new_lr != self.learning_rate:
            optimizer.learning_rate = new_lr
        return bpd, self.learning_rate

    # ------------------------------------------------------------------- run
    def run(self):
        opts = self.options
        log = print if opts.verbose and self.chief else (lambda *a, **k: None)
        writer = tf.summary.create_file_writer(os.path.join(self.model_dir, "logs")) if self.chief else None
        if self.resumed_from:
            log(f"Resuming from {self.resumed_from} (layer {self.layers[int(self.layer_index.numpy())] if int(self.layer_index.numpy()) < len(self.layers) else 'done'}, step {int(self.layer_step.numpy())})")
        what = "end to end" if self.end_to_end else f"layers {self.layers}"
        log(
            f"Training {opts.model} on {self.dataset}: {what}, "
            f"{self.strategy.num_replicas_in_sync} replica(s) ({self.strategy_name}), "
            f"global batch {self.batch_size}, model_dir {self.model_dir}"
        )
        if self.end_to_end:
            shown = ["loss", "bpd", "kl_bpd"]
            prefix = lambda layer: "train"  # noqa: E731
        else:
            shown = ["loss", "mse", "perplexity", "temperature"]
            prefix = lambda layer: f"layer_{layer}"  # noqa: E731
        while int(self.layer_index.numpy()) < len(self.layers):
            layer = self.layers[int(self.layer_index.numpy())]
            total = self.steps[layer]
            start = int(self.layer_step.numpy())
            step_fn = self._make_step(layer)
            iterator = self._dataset(layer, start)
            if self.end_to_end:
                log(f"End to end: {total} steps, {self.model.num_latent_layers} latent layers, "
                    f"{type(self.optimizers[1]).__name__} at learning rate {self.learning_rate:.3g}, "
                    f"test-set evaluation every {self.eval_every} steps")
            else:
                log(f"Layer {layer}/{self.model.num_layers}: {total} steps, {self.model.bits(layer)} bits per image")
            names = {"temperature": "temp"}
            bar = keras.utils.Progbar(total, verbose=1 if (opts.verbose and self.chief) else 0,
                                      stateful_metrics=[names.get(k, k) for k in shown]
                                      + ["test_bpd", "lr", "steps/s"],
                                      unit_name="step")
            if start:
                bar.update(start)
            t_last, s_last = time.perf_counter(), start
            for step in range(start, total):
                terms = step_fn(iterator)
                loss = float(terms["loss"])
                if not np.isfinite(loss):
                    where = f"step {step}" if self.end_to_end else f"layer {layer}, step {step}"
                    raise FloatingPointError(
                        f"Non-finite loss ({loss}) at {where}. Stopped before saving; the last "
                        f"good checkpoint is {self.manager.latest_checkpoint or 'none (no checkpoint yet)'}."
                    )
                done = step + 1
                shown_eval = []
                if self.end_to_end and done % self.eval_every == 0:
                    test_bpd, lr = self._plateau_step()
                    shown_eval = [("test_bpd", test_bpd), ("lr", lr)]
                    if writer is not None:
                        with writer.as_default(step=done):
                            tf.summary.scalar("eval/test_bpd", test_bpd)
                            tf.summary.scalar("eval/learning_rate", lr)
                            tf.summary.scalar("eval/plateau_wait", int(self.plateau.wait.numpy()))
                if done % opts.log_every == 0 or done == total or shown_eval:
                    now = time.perf_counter()
                    rate = (done - s_last) / max(now - t_last, 1e-9)
                    t_last, s_last = now, done
                    values = {k: float(v) for k, v in terms.items()}
                    bar.update(done, [(names.get(k, k), values[k]) for k in shown if k in values]
                               + shown_eval + [("steps/s", rate)])
                    if writer is not None:
                        with writer.as_default(step=done):
                            for k, v in values.items():
                                tf.summary.scalar(f"{prefix(layer)}/{k}", v)
                            if self.end_to_end:
                                tf.summary.scalar(f"{prefix(layer)}/learning_rate", self.learning_rate)
                            tf.summary.scalar(f"{prefix(layer)}/steps_per_second", rate)
                            tf.summary.scalar(f"{prefix(layer)}/images_per_second", rate * self.batch_size)
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
        if self.end_to_end:
            recon = self.model.reconstruct(images, seed=[self.options.seed, 0]).numpy()
            samples = self.model.sample(8, seed=[self.options.seed, 1]).numpy()
            with writer.as_default(step=self.steps[layer]):
                tf.summary.image("reconstructions", np.concatenate([images, recon], axis=2), max_outputs=8)
                tf.summary.image("samples", samples, max_outputs=8)
        else:
            recon = self.model.reconstruct(images, layer, stochastic=False).numpy()
            with writer.as_default(step=layer):
                tf.summary.image(f"reconstructions/layer_{layer}", np.concatenate([images, recon], axis=2),
                                 max_outputs=8)
        writer.flush()

    def finish(self):
        """Writes final weights, PNG grids and metrics.json (chief only); returns a summary dict."""
        if not self.chief:
            return {}
        os.makedirs(self.model_dir, exist_ok=True)
        weights = os.path.join(self.model_dir, "model.weights.h5")
        self.model.save_weights(weights)
        images = tfvq_data.load_numpy(self.dataset, "test", limit=self.eval_examples, data_dir=self.options.data_dir)
        common = {"model": self.options.model, "dataset": self.dataset}
        if self.end_to_end:
            train_images = tfvq_data.load_numpy(self.dataset, "train", limit=self.eval_examples,
                                                data_dir=self.options.data_dir)
            metrics, paths = outputs.write_end_to_end_outputs(
                self.model, train_images, images, self.model_dir, batch_size=self.batch_size, seed=self.options.seed,
                extra={**common, "steps": self.steps[1], "learning_rate": self.learning_rate}, elbo_fn=self._eval_fn,
            )
            return {**common, "end_to_end": True, "weights": weights, **paths,
                    "tensorboard": os.path.join(self.model_dir, "logs"), **metrics}
        metrics, paths = outputs.write_outputs(self.model, images, sorted(self.layers), self.model_dir,
                                               seed=self.options.seed)
        summary = {**common, "weights": weights, **paths,
                   "tensorboard": os.path.join(self.model_dir, "logs"), "layers": metrics}
        with open(os.path.join(self.model_dir, "metrics.json"), "w") as f:
            json.dump({**common, "layers": {str(k): v for k, v in metrics.items()}}, f, indent=2)
        return summary


def train(options=None, strategy=None, **kwargs):
    """Trains a zoo model (greedily or end to end, as the model says); see `TrainOptions`. Returns a summary dict."""
    options = options or TrainOptions(**kwargs)
    return Trainer(options, strategy).run()
