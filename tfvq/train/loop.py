"""Training under any `tf.distribute` strategy: the model's stages, in order.

The model says how it is trained (`model.training_stages(recipe)`, see
`tfvq.models.Stage`): HQA has one greedy stage per layer (HQA Algorithm 2),
RRVQ-VAE, Spatial-VAE and the VQ-VAE one stage. The trainer knows no model
family. For each stage it builds the optimiser of the stage's recipe
(`make_optimizer`), runs its steps (`tfvq.train.step`: one custom loop for
every strategy, since `model.fit` does not run under
MultiWorkerMirroredStrategy, keras-team/keras#20585), and, for a stage with
an evaluation, feeds the test metric every `eval_every` steps to
`ReduceOnPlateau`, which sets the optimiser's learning rate (RRVQ App. C;
evaluation periods of `eval_every` steps stand in for the paper's epochs).

A run is resumable: the model's weights (every one of `model.weights`), every
stage's optimiser, the plateau schedules, the current stage and the step
within it are checkpointed (`tfvq.zoo.run_folder`); running the same command
again continues from the last checkpoint. A non-finite loss stops the run
with `FloatingPointError` naming the stage and step, before anything is saved,
so the last good checkpoint stays.
"""

import dataclasses
import os
import time
from typing import Any, Mapping, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfvq import data as tfvq_data
from tfvq import zoo
from tfvq.layers.precision import check_precision, precision_scope
from tfvq.train import outputs
from tfvq.train.optimizers import make_optimizer
from tfvq.train.schedules import ReduceOnPlateau
from tfvq.train.step import make_step
from tfvq.train.strategies import is_chief, make_strategy
from tfvq.zoo import run_folder


SETUP_IMAGES = 512
"""Training images a stage's `setup` and `at_steps` hooks (data-dependent changes) see."""


@dataclasses.dataclass
class TrainOptions:
    """Options of a training run; `None` takes the zoo entry's recipe.

    `recipe` changes keys of the entry's recipe (`tfvq.zoo.recipe(model)`, e.g. an `HQARecipe`), and so do
    `batch_size`, `learning_rate` and `eval_examples`: all through `Recipe.replace`, so a key the recipe does
    not have raises `UnknownRecipeKeyError` (a ValueError and a TypeError) naming the keys it knows.

    Attributes:
      model: zoo name.
      dataset: `tfvq.data` name (default: the entry's dataset).
      data_dir: where tfds datasets are prepared.
      data_cache: how the training images are kept decoded (`tfvq.data.load(cache=...)`): "auto" reads the
        cache `tfvq data cache` wrote under `data_dir`, else decodes every epoch; "file" writes it first;
        "memory" decodes once into memory; "off"; or a cache file path ending in .npy.
      strategy: one of `tfvq.train.STRATEGIES`.
      batch_size: global batch size.
      steps: steps of every stage (HQA: per layer; one-stage models: in all).
      layers: which stages to train (1-based), in order; default all. For
        HQA a stage is a layer.
      model_dir: where checkpoints, summaries and outputs go.
      seed: seed of the data order, the initial weights and the sampling noise.
      log_every: steps between progress/TensorBoard updates.
      checkpoint_every: steps between checkpoints.
      eval_examples: test images used for the final metrics and PNG grids
        (and for each evaluation of a stage that has one); default the
        recipe's `eval_examples`, else 512.
      eval_every: steps between evaluations of stages that have one (default
        the stage's own, from the recipe's `eval_every`).
      verbose: print progress.
      tpu_address: for `strategy="tpu"`.
      learning_rate: the initial learning rate of every stage (default: the recipe's).
      recipe: {key: value} changes to the entry's recipe (e.g. {"initial_temperature": 0.5}), applied
        before `batch_size`, `learning_rate` and `eval_examples`.
      bundled_recipe: start from the recipe and dataset the entry's bundled weights were trained with
        (`ZooEntry.weights_recipe`, `weights_dataset`; e.g. `hqa_mnist`'s CPU recipe on `mnist10k`) instead
        of the paper's; `dataset` and the changes above still apply on top.
      image_size: train at H = W = image_size (models whose architecture allows it, e.g. HQA's fully
        convolutional stack); the dataset's images are converted to it.
      config: {key: value} changes to the entry's model configuration (`tfvq.zoo.build` overrides, e.g.
        {"rotation_trick": False} for `vq_digits`): the run folder's config.json records the model trained.
      from_weights: start from these weights (any path `tfvq.zoo.load` accepts, or "bundled"): fine-tune a
        trained model on new data. A run that resumes from its checkpoint ignores it.
      precision: "float32", "mixed_bfloat16" or "mixed_float16" (`tfvq.layers.precision`): the Keras
        dtype policy the model's layers are built under (variables stay float32, and so do logits,
        likelihoods, KL, statistics and the optimiser); "mixed_float16" also scales the loss.
      jit_compile: compile each replica's loss and gradients with XLA (`tf.function(jit_compile=True)`);
        off by default: slower on CPU (see the README's Speed section), for accelerator users.
    """

    model: str = "hqa_digits"
    dataset: Optional[str] = None
    data_dir: Optional[str] = None
    data_cache: str = "auto"
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
    learning_rate: Optional[float] = None
    image_size: Optional[int] = None
    config: Optional[Mapping[str, Any]] = None
    from_weights: Optional[str] = None
    precision: str = "float32"
    jit_compile: bool = False
    recipe: Optional[Mapping[str, Any]] = None
    bundled_recipe: bool = False


def run_recipe(options, recipe):
    """`recipe` (an entry's) with the changes `options` asks for (`TrainOptions.recipe`, then `batch_size`,
    `learning_rate`, `eval_examples` where set); an unknown key raises `UnknownRecipeKeyError`."""
    changes = dict(options.recipe or {})
    for key in ("batch_size", "learning_rate", "eval_examples"):
        if getattr(options, key) is not None:
            changes[key] = getattr(options, key)
    return recipe.replace(**changes) if changes else recipe


class Trainer:
    """Builds the model, its stages, optimisers and checkpoint for `options` inside `strategy`.

    Stages are numbered from 1 (`stage_numbers`); `optimizers[n]` is stage
    n's optimiser and `plateaus[n]` its plateau schedule, if it has one.
    """

    def __init__(self, options, strategy=None):
        self.options = options
        self.entry = zoo.get(options.model)
        self.recipe = run_recipe(options, self.entry.recipe_for(options.bundled_recipe))
        self.strategy = strategy or make_strategy(options.strategy, options.tpu_address)
        self.strategy_name = options.strategy if strategy is None else type(strategy).__name__
        self.chief = is_chief(self.strategy)
        self.dataset = options.dataset or self.entry.dataset_for(options.bundled_recipe)
        self.batch_size = self.recipe.batch_size
        replicas = self.strategy.num_replicas_in_sync
        if self.batch_size % replicas:
            raise ValueError(f"batch_size {self.batch_size} must be divisible by the {replicas} replicas.")
        self.precision = check_precision(options.precision)
        keras.utils.set_random_seed(options.seed)
        overrides = {}
        if options.image_size is not None:
            if int(options.image_size) < 1:
                raise ValueError(f"image_size must be a positive number of pixels, got {options.image_size}.")
            channels = zoo.get(options.model).config["image_shape"][-1]
            overrides["image_shape"] = (int(options.image_size), int(options.image_size), channels)
        if options.config:
            if "image_shape" in options.config and options.image_size is not None:
                raise ValueError("Pass the image size once: --image_size or config image_shape, not both.")
            overrides.update(options.config)
        # Layers take the dtype policy in force when they are built; the previous policy is restored after.
        with precision_scope(self.precision), self.strategy.scope():
            try:
                self.model = zoo.build(options.model, **overrides)
            except (TypeError, ValueError) as err:  # a key the model's family does not take, or a bad value
                raise ValueError(f"{options.model} ({self.entry.family}) cannot be built with config "
                                 f"{dict(options.config or {})}: {err}. Its configuration keys: "
                                 f"{', '.join(sorted(self.entry.config))}.") from err
            if options.from_weights is not None:
                zoo.load_weights_into(self.model, options.from_weights, name=options.model)
        all_stages = self.model.training_stages(self.recipe, steps=options.steps)
        count = len(all_stages)
        self.stage_numbers = list(options.layers or range(1, count + 1))
        for n in self.stage_numbers:
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= count:
                raise ValueError(f"--layers must be in 1..{count} for {options.model} (it trains in {count} "
                                 f"stage{'s' if count > 1 else ''}: {', '.join(s.name for s in all_stages)}), got {n}.")
        self.stages = {n: all_stages[n - 1] for n in self.stage_numbers}
        self.eval_examples = self.recipe.eval_examples
        self.model_dir = options.model_dir or os.path.join("runs", options.model)
        if options.eval_every is not None and int(options.eval_every) < 1:
            raise ValueError(f"eval_every must be >= 1, got {options.eval_every}.")
        self.optimizers, self.plateaus = {}, {}
        with self.strategy.scope():
            for n, stage in self.stages.items():
                opt = make_optimizer(stage.optimizer, stage.steps, name=f"{stage.optimizer.name}_{stage.name}",
                                     loss_scale=self.precision == "mixed_float16")
                opt.build(stage.variables())
                self.optimizers[n] = opt
            self.stage_index = tf.Variable(0, dtype=tf.int64, trainable=False, name="stage_index")
            self.stage_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="stage_step")
        for n, stage in self.stages.items():
            if stage.optimizer.plateau is not None:
                # Outside the strategy scope: plain variables, updated eagerly from the evaluation.
                self.plateaus[n] = ReduceOnPlateau(**stage.optimizer.plateau)
        self.checkpoint = tf.train.Checkpoint(
            stage_index=self.stage_index,
            stage_step=self.stage_step,
            optimizers={str(n): opt for n, opt in self.optimizers.items()},
            plateaus={str(n): p for n, p in self.plateaus.items()},
            model_variables=run_folder.model_variables(self.model),
        )
        worker = None if self.chief else self.strategy.cluster_resolver.task_id
        self.manager = tf.train.CheckpointManager(self.checkpoint, run_folder.checkpoint_dir(self.model_dir, worker),
                                                  max_to_keep=3)
        self.resumed_from = None
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            self.resumed_from = self.manager.latest_checkpoint
        self._eval_images = None

    # ------------------------------------------------------------- pieces
    def eval_every(self, n):
        """Steps between evaluations of stage n (None: the stage has no evaluation)."""
        stage = self.stages[n]
        if stage.evaluate is None:
            return None
        return int(self.options.eval_every or stage.eval_every or 500)

    def learning_rate(self, n=None):
        """Stage n's current learning rate (default: the first stage), a Python float."""
        opt = self.optimizers[self.stage_numbers[0] if n is None else n]
        return float(np.asarray(opt.learning_rate.numpy()))

    def make_step(self, n):
        """A `tf.function` running one global step of stage n."""
        return make_step(self.strategy, self.stages[n], self.optimizers[n], self.stage_step, [self.options.seed, n],
                         jit_compile=self.options.jit_compile)

    def make_dataset(self, n, start_step):
        """The distributed training iterator of stage n, reshuffled from `start_step` on a resume."""
        ds = tfvq_data.load(self.dataset, "train", batch_size=self.batch_size, data_dir=self.options.data_dir,
                            image_shape=self.model.image_shape, cache=self.options.data_cache,
                            shuffle=True, repeat=True, seed=self.options.seed * 1000 + n * 100 + start_step,
                            drop_remainder=True)
        return iter(self.strategy.experimental_distribute_dataset(ds))

    def eval_images(self):
        if self._eval_images is None:
            self._eval_images = tfvq_data.load_numpy(self.dataset, "test", limit=self.eval_examples,
                                                     image_shape=self.model.image_shape,
                                                     data_dir=self.options.data_dir)
        return self._eval_images

    def evaluate(self, n, images=None):
        """Stage n's evaluation (e.g. test bits per dim) on `images` (default: the eval test images).

        Runs on one device with fixed sampling seeds: two evaluations of the
        same weights agree exactly.
        """
        images = self.eval_images() if images is None else images
        return float(self.stages[n].evaluate(images, self.batch_size, self.options.seed))

    def plateau_step(self, n):
        """One evaluation of stage n -> `ReduceOnPlateau` -> its learning rate. Returns (metric, lr)."""
        metric = self.evaluate(n)
        new_lr = self.plateaus[n].update(metric, self.learning_rate(n))
        if new_lr != self.learning_rate(n):
            self.optimizers[n].learning_rate = new_lr
        return metric, self.learning_rate(n)

    def save(self):
        return self.manager.save(checkpoint_number=None)

    # ------------------------------------------------------------------- run
    def run(self):
        opts = self.options
        log = print if opts.verbose and self.chief else (lambda *a, **k: None)
        writer = tf.summary.create_file_writer(os.path.join(self.model_dir, run_folder.LOGS)) if self.chief else None
        if self.resumed_from:
            at = int(self.stage_index.numpy())
            where = self.stages[self.stage_numbers[at]].name if at < len(self.stage_numbers) else "done"
            log(f"Resuming from {self.resumed_from} (stage {where}, step {int(self.stage_step.numpy())})")
        log(f"Training {opts.model} on {self.dataset}: stages {', '.join(self.stages[n].name for n in self.stage_numbers)}"
            f", {self.strategy.num_replicas_in_sync} replica(s) ({self.strategy_name}), global batch "
            f"{self.batch_size}, {self.precision}{', XLA' if opts.jit_compile else ''}, model_dir {self.model_dir}")
        while int(self.stage_index.numpy()) < len(self.stage_numbers):
            n = self.stage_numbers[int(self.stage_index.numpy())]
            self._run_stage(n, log, writer)
            self.stage_index.assign_add(1)
            self.stage_step.assign(0)
            self.save()
            if writer is not None:
                outputs.write_image_summaries(writer, self.model, self._preview_images(), step=n,
                                              seed=opts.seed, stages=[m - 1 for m in self.stage_numbers
                                                                      if m <= n])
        return self.finish()

    def _setup_images(self):
        return tfvq_data.load_numpy(self.dataset, "train", limit=SETUP_IMAGES, data_dir=self.options.data_dir,
                                    image_shape=self.model.image_shape)

    def _preview_images(self):
        return tfvq_data.load_numpy(self.dataset, "test", limit=8, data_dir=self.options.data_dir,
                                    image_shape=self.model.image_shape)

    def _run_stage(self, n, log, writer):
        opts, stage = self.options, self.stages[n]
        start = int(self.stage_step.numpy())
        if start == 0 and stage.setup is not None:
            # Data-dependent initialisation, once per stage (a resumed stage keeps its trained state).
            stage.setup(self._setup_images())
        step_fn = self.make_step(n)
        iterator = self.make_dataset(n, start)
        every = self.eval_every(n)
        log(stage.title + (f"; {type(self.optimizers[n]).__name__} at learning rate {self.learning_rate(n):.3g}"
                           + (f", test-set evaluation every {every} steps" if every else "")))
        names = {"temperature": "temp"}
        bar = keras.utils.Progbar(stage.steps, verbose=1 if (opts.verbose and self.chief) else 0,
                                  stateful_metrics=[names.get(k, k) for k in stage.shown]
                                  + [stage.eval_name, "lr", "steps/s"],
                                  unit_name="step")
        if start:
            bar.update(start)
        t_last, s_last = time.perf_counter(), start
        for step in range(start, stage.steps):
            if step in stage.at_steps:
                stage.at_steps[step](self._setup_images())
            terms = step_fn(iterator)
            loss = float(terms["loss"])
            if not np.isfinite(loss):
                raise FloatingPointError(
                    f"Non-finite loss ({loss}) at stage {stage.name}, step {step}. Stopped before saving; the last "
                    f"good checkpoint is {self.manager.latest_checkpoint or 'none (no checkpoint yet)'}."
                )
            done = step + 1
            shown_eval = []
            if every and done % every == 0:
                metric, lr = self.plateau_step(n) if n in self.plateaus else (self.evaluate(n), self.learning_rate(n))
                shown_eval = [(stage.eval_name, metric), ("lr", lr)]
                if writer is not None:
                    with writer.as_default(step=done):
                        tf.summary.scalar(f"eval/{stage.eval_name}", metric)
                        tf.summary.scalar("eval/learning_rate", lr)
            if done % opts.log_every == 0 or done == stage.steps or shown_eval:
                now = time.perf_counter()
                rate = (done - s_last) / max(now - t_last, 1e-9)
                t_last, s_last = now, done
                values = {k: float(v) for k, v in terms.items()}
                bar.update(done, [(names.get(k, k), values[k]) for k in stage.shown if k in values]
                           + shown_eval + [("steps/s", rate)])
                if writer is not None:
                    with writer.as_default(step=done):
                        for k, v in values.items():
                            tf.summary.scalar(f"{stage.name}/{k}", v)
                        tf.summary.scalar(f"{stage.name}/learning_rate", self.learning_rate(n))
                        tf.summary.scalar(f"{stage.name}/steps_per_second", rate)
                        tf.summary.scalar(f"{stage.name}/images_per_second", rate * self.batch_size)
            if done % opts.checkpoint_every == 0 and done < stage.steps:
                self.save()

    def finish(self):
        """Writes the final weights, PNG grids and metrics.json (chief only); returns a summary dict.

        The run folder (`model_dir` in the summary) is then a model folder: `tfvq.zoo.load(model_dir)`.
        """
        if not self.chief:
            return {}
        os.makedirs(self.model_dir, exist_ok=True)
        weights = os.path.join(self.model_dir, run_folder.WEIGHTS_FILE)
        test = tfvq_data.load_numpy(self.dataset, "test", limit=self.eval_examples, data_dir=self.options.data_dir,
                                    image_shape=self.model.image_shape)
        train = tfvq_data.load_numpy(self.dataset, "train", limit=self.eval_examples, data_dir=self.options.data_dir,
                                     image_shape=self.model.image_shape)
        extra = {"model": self.options.model, "dataset": self.dataset,
                 "steps": {self.stages[n].name: self.stages[n].steps for n in self.stage_numbers},
                 "learning_rate": {self.stages[n].name: self.learning_rate(n) for n in self.stage_numbers}}
        report, paths = outputs.write_run_outputs(self.model, test, train, self.model_dir, extra,
                                                  stages=[n - 1 for n in sorted(self.stage_numbers)],
                                                  batch_size=self.batch_size, seed=self.options.seed)
        # The run folder is a model folder (config.json, metadata.json, model.weights.h5): zoo.load(model_dir).
        zoo.save(self.model, self.model_dir, metadata={**extra, "metrics": report["metrics"]})
        return {**extra, "model_dir": self.model_dir, "weights": weights,
                "tensorboard": os.path.join(self.model_dir, run_folder.LOGS), **paths, "report": report}


def train(options=None, strategy=None, **kwargs):
    """Trains a zoo model, stage by stage, as the model says (see `TrainOptions`). Returns a summary dict."""
    options = options or TrainOptions(**kwargs)
    return Trainer(options, strategy).run()
