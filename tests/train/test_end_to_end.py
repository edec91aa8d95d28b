"""The trainer on end-to-end models (RRVQ-VAE App. C): AdaMax on every variable, the learning rate reduced
on plateaus of the test bits/dim, resume, failure, outputs, distribution, and train.py's static prior of a run
(what `tfvq train` prints: tests/commands/test_train.py)."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfvq import zoo
from tfvq.train import loop

rrvq_vae = pytest.importorskip("tfvq.models.rrvq.rrvq_vae")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAMILY = "test_e2e_rrvq_vae"
NAME = "test_e2e_rrvq_tiny"
NAME_NO_FREE_BITS = "test_e2e_rrvq_tiny_no_free_bits"
# The smallest sensible RRVQ-VAE on the 32x32x1 digits: two latent layers (8x8 then 4x4), 16 codes.
TINY_CONFIG = dict(image_shape=(32, 32, 1), latent_sizes=(8, 4), num_codes=16, code_dim=8, channels=16,
                   blocks_per_layer=1, strap_blocks=0, seed=1)
TINY_RECIPE = dict(batch_size=8, steps=(30,), optimizer="adamax", learning_rate=2e-3, plateau_factor=0.8,
                   plateau_patience=1, min_learning_rate=5e-5, eval_every=10, eval_examples=16, clip_norm=100.0)
OPTS = dict(model=NAME, batch_size=8, eval_examples=16, log_every=1, verbose=False)


def _register():
    zoo.register_family(FAMILY, rrvq_vae.RRVQVAE)
    known = zoo.list_models("test_e2e_*")
    for name, config in ((NAME, TINY_CONFIG), (NAME_NO_FREE_BITS, dict(TINY_CONFIG, free_bits=0.0))):
        if name not in known:
            zoo.register(zoo.ZooEntry(name=name, family=FAMILY, config=config, train=TINY_RECIPE, dataset="digits",
                                      paper="test", table="test", description="a tiny RRVQ-VAE for the trainer tests"))


_register()


def _variables(variables):
    return [np.array(v) for v in variables]


def _optimizer_state(trainer):
    opt = trainer.optimizers[1]
    return [np.array(v) for v in opt.variables]


def test_an_end_to_end_model_gets_one_stage_adamax_on_every_variable(tmp_path):
    trainer = loop.Trainer(loop.TrainOptions(**OPTS, steps=2, model_dir=str(tmp_path)))
    assert trainer.stage_numbers == [1] and trainer.stages[1].steps == 2
    assert trainer.stages[1].variables() == trainer.model.trainable_variables
    assert type(trainer.optimizers[1]).__name__ == "Adamax"
    assert trainer.learning_rate() == pytest.approx(2e-3)
    assert trainer.eval_every(1) == 10 and trainer.eval_examples == 16
    with pytest.raises(ValueError, match=r"1\.\.1 .*1 stage: train"):
        loop.Trainer(loop.TrainOptions(**OPTS, steps=2, layers=[2], model_dir=str(tmp_path / "x")))


def test_end_to_end_training_lowers_the_loss_on_digits(tmp_path):
    trainer = loop.Trainer(loop.TrainOptions(**OPTS, steps=30, model_dir=str(tmp_path)))
    before = _variables(trainer.model.trainable_variables)
    step = trainer.make_step(1)
    iterator = trainer.make_dataset(1, 0)
    terms = [{k: float(v) for k, v in step(iterator).items()} for _ in range(30)]
    losses = [t["loss"] for t in terms]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.1, losses
    for t in terms:  # the reported terms are those of the model's contract
        assert t["bpd"] == pytest.approx(t["recon_bpd"] + t["kl_bpd"], rel=1e-4)
    after = _variables(trainer.model.trainable_variables)
    unchanged = [v.path for v, a, b in zip(trainer.model.trainable_variables, before, after) if np.array_equal(a, b)]
    assert not unchanged  # end to end: every variable moves
    assert int(trainer.stage_step.numpy()) == 30 and int(trainer.optimizers[1].iterations.numpy()) == 30
    # The Gumbel-softmax temperature followed the model's schedule.
    tau = float(trainer.model.latents[0].temperature.numpy())
    assert tau == pytest.approx(float(trainer.model.temperature_at(29, 30)), rel=1e-5)


def test_a_run_writes_weights_metrics_pngs_and_logs_the_eval_bpd_and_learning_rate(tmp_path):
    summary = loop.train(loop.TrainOptions(**OPTS, steps=4, eval_every=2, model_dir=str(tmp_path)))
    for key in ("weights", "reconstructions", "samples", "metrics"):
        assert os.path.getsize(summary[key]) > 0, key
    for key in ("reconstructions", "samples"):
        assert open(summary[key], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    png = tf.io.decode_png(tf.io.read_file(summary["samples"])).numpy()
    assert png.shape == (8 * 34 + 2, 8 * 34 + 2, 1)  # 64 samples, 8 per row, 2-pixel borders
    metrics = json.load(open(summary["metrics"]))
    for key in ("train_bpd", "test_bpd", "kl_bits_per_layer", "learning_rate"):
        assert key in metrics, key
    assert 0 < metrics["test_bpd"] < 20 and 0 < metrics["train_bpd"] < 20
    assert len(metrics["kl_bits_per_layer"]) == 2 and all(k >= 0 for k in metrics["kl_bits_per_layer"])
    assert metrics["test_examples"] == 16 and metrics["steps"] == {"train": 4}
    # The final metrics match the trainer's own evaluation of the test bits/dim up to sampling noise.
    assert metrics["test_bpd"] == pytest.approx(summary["report"]["metrics"]["test_bpd"])
    # The weights load back into the model.
    model = zoo.load(NAME, weights=summary["weights"])
    assert len(model.trainable_variables) > 0
    # TensorBoard holds the training terms, the eval bpd and the learning rate.
    tags = set()
    for root, _, files in os.walk(tmp_path / "logs"):
        for f in files:
            for event in tf.compat.v1.train.summary_iterator(os.path.join(root, f)):
                tags.update(v.tag for v in event.summary.value)
    for tag in ("train/loss", "train/bpd", "train/kl_bpd", "train/learning_rate", "eval/test_bpd",
                "eval/learning_rate", "samples", "reconstructions"):
        assert tag in tags, (tag, sorted(tags))
    # The learning rate and the plateau state are in the checkpoint.
    keys = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "checkpoints")))
    names = keys.get_variable_to_shape_map()
    assert "optimizers/1/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE" in names
    assert "plateaus/1/best/.ATTRIBUTES/VARIABLE_VALUE" in names
    assert "plateaus/1/wait/.ATTRIBUTES/VARIABLE_VALUE" in names
    assert np.isfinite(keys.get_tensor("plateaus/1/best/.ATTRIBUTES/VARIABLE_VALUE"))


def _train_py():
    """train.py as a module, loaded once per process (it defines its absl flags when loaded)."""
    if "tfvq_train_cli" not in sys.modules:
        spec = importlib.util.spec_from_file_location("tfvq_train_cli", os.path.join(ROOT, "train.py"))
        cli = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cli)
        sys.modules["tfvq_train_cli"] = cli
    return sys.modules["tfvq_train_cli"]


def test_train_py_fits_the_static_prior_of_the_final_weights_into_the_run_folder(tmp_path):
    options = loop.TrainOptions(**OPTS, steps=1, model_dir=str(tmp_path / "run"))
    summary = loop.train(options)
    assert summary["model_dir"] == str(tmp_path / "run") and "prior" not in summary  # the trainer fits no prior
    path = _train_py().write_static_prior(summary, options)
    assert path == str(tmp_path / "run" / "model.prior.json")
    model = zoo.load(summary["model_dir"])
    assert zoo.prior_paths(model)["static"] == path
    fitted = json.load(open(path))
    assert fitted["model"] == NAME and fitted["weights_hash"] == zoo.weights_hash(model).hex()
    assert fitted["source"].startswith("digits/train, ")
    # The run's model folder carries its prior wherever it is saved.
    zoo.save(model, str(tmp_path / "copy"))
    assert (tmp_path / "copy" / "model.prior.json").read_bytes() == (tmp_path / "run" / "model.prior.json").read_bytes()


def test_the_plateau_schedule_lowers_the_learning_rate_when_the_eval_never_improves(tmp_path, monkeypatch):
    trainer = loop.Trainer(loop.TrainOptions(**OPTS, steps=3, eval_every=1, model_dir=str(tmp_path)))
    monkeypatch.setattr(trainer, "evaluate", lambda n, images=None: 5.0)  # patience 1: every repeat is a plateau
    trainer.run()
    assert trainer.learning_rate() == pytest.approx(2e-3 * 0.8**2, rel=1e-6)
    saved = tf.train.load_checkpoint(trainer.manager.latest_checkpoint)
    assert float(saved.get_tensor("optimizers/1/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE")) == pytest.approx(
        2e-3 * 0.8**2, rel=1e-6)
    assert float(saved.get_tensor("plateaus/1/best/.ATTRIBUTES/VARIABLE_VALUE")) == 5.0


def test_a_resumed_run_continues_from_the_saved_step_with_the_same_optimizer_state(tmp_path):
    options = loop.TrainOptions(**OPTS, steps=6, eval_every=2, model_dir=str(tmp_path))
    first = loop.Trainer(options)
    step = first.make_step(1)
    iterator = first.make_dataset(1, 0)
    for _ in range(3):
        step(iterator)
    first.optimizers[1].learning_rate = 1.5e-3  # as if the plateau schedule had lowered it
    first.plateaus[1].best.assign(4.0)  # ... after some evaluations
    first.plateaus[1].wait.assign(1)
    first.save()
    second = loop.Trainer(options)
    assert second.resumed_from is not None
    assert int(second.stage_step.numpy()) == 3 and int(second.stage_index.numpy()) == 0
    for a, b in zip(_optimizer_state(first), _optimizer_state(second)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(_variables(first.model.weights), _variables(second.model.weights)):
        np.testing.assert_array_equal(a, b)
    assert second.learning_rate() == pytest.approx(1.5e-3)
    assert float(second.plateaus[1].best.numpy()) == 4.0 and int(second.plateaus[1].wait.numpy()) == 1
    second.run()
    assert int(second.optimizers[1].iterations.numpy()) == 6  # 3 before the restart + 3 after, not 6 after
    assert int(second.stage_index.numpy()) == 1
    third = loop.Trainer(options)  # a finished run: running again only rewrites the outputs
    assert int(third.stage_index.numpy()) == 1 and int(third.optimizers[1].iterations.numpy()) == 6


def test_a_non_finite_loss_stops_with_the_step_and_saves_nothing(tmp_path):
    trainer = loop.Trainer(loop.TrainOptions(**OPTS, steps=3, model_dir=str(tmp_path)))
    train_loss = trainer.model.train_loss

    def nan_loss(images, training=True, seed=None):
        terms = dict(train_loss(images, training=training, seed=seed))
        terms["loss"] = terms["loss"] * float("nan")
        return terms

    trainer.model.train_loss = nan_loss
    with pytest.raises(FloatingPointError, match=r"step 0\b"):
        trainer.run()
    assert trainer.manager.latest_checkpoint is None


def test_mirrored_on_two_cpus_gives_the_one_device_step_for_the_same_batch_and_seed(tmp_path, mirrored_strategy):
    # Free bits floor each layer's *batch-averaged* KL, which a replica computes over its own half of the batch:
    # without them the loss is linear in the examples and the two runs must agree.
    results = []
    for name, strategy in (("one", tf.distribute.OneDeviceStrategy("/cpu:0")), ("mirrored", mirrored_strategy)):
        trainer = loop.Trainer(loop.TrainOptions(**{**OPTS, "model": NAME_NO_FREE_BITS}, steps=3,
                                                 model_dir=str(tmp_path / name), seed=3), strategy)
        step = trainer.make_step(1)
        iterator = trainer.make_dataset(1, 0)
        losses = [float(step(iterator)["loss"]) for _ in range(2)]
        bpd = trainer.evaluate(1)
        trainer.optimizers[1].learning_rate = 1e-3  # assignable under either strategy
        results.append((losses, _variables(trainer.model.trainable_variables), bpd, trainer.learning_rate()))
    (loss_one, w_one, bpd_one, lr_one), (loss_mirrored, w_mirrored, bpd_mirrored, lr_mirrored) = results
    np.testing.assert_allclose(loss_mirrored, loss_one, rtol=1e-5)
    for a, b in zip(w_one, w_mirrored):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert bpd_mirrored == pytest.approx(bpd_one, rel=1e-4)
    assert lr_one == lr_mirrored == pytest.approx(1e-3)


def _zoo_rrvq_names():
    return [n for n in zoo.list_models() if not n.startswith("test_") and getattr(zoo.get(n), "family", "") in
            ("rrvq_vae", "spatial_vae")]


@pytest.mark.slow
@pytest.mark.skipif(not _zoo_rrvq_names(), reason="no rrvq_vae / spatial_vae zoo entry yet")
def test_train_py_trains_an_rrvq_zoo_model(tmp_path, repo_env):
    name = sorted(_zoo_rrvq_names(), key=lambda n: ("digits" not in n, n))[0]
    shape = tuple(zoo.get(name).config["image_shape"])
    dataset = {(32, 32, 1): "digits", (32, 32, 3): "swatches"}.get(shape, zoo.get(name).dataset)  # offline data
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), f"--model={name}", f"--dataset={dataset}", "--steps=2",
           "--batch_size=8", "--eval_examples=8", "--eval_every=1", f"--model_dir={tmp_path}"]
    out = subprocess.run(cmd, env=repo_env(TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "bits per dim (-ELBO): train" in out.stdout and "samples.png" in out.stdout
    assert json.load(open(tmp_path / "metrics.json"))["test_bpd"] > 0
    # The run folder carries the static prior of its final weights (where the zoo keeps a folder's priors):
    # every training image's codes, counted.
    from tfvq import data

    assert "prior:" in out.stdout
    model = zoo.load(str(tmp_path))
    assert zoo.prior_paths(model)["static"] == str(tmp_path / "model.prior.json")
    fitted = json.load(open(tmp_path / "model.prior.json"))
    assert fitted["model"] == name and fitted["source"].startswith(f"{dataset}/train")
    assert fitted["weights_hash"] == zoo.weights_hash(model).hex()
    train_count = len(data.load_numpy(dataset, "train", image_shape=shape))
    layout = model.code_layout()
    assert [sum(c) for c in fitted["counts"]] == [train_count * h * w for h, w in layout.grids]
