"""The greedy trainer: what it changes, distribution (multi-worker through train.py), failure, resume (a killed
train.py run). The `tfvq train` command itself: tests/commands/test_train.py."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tfvq import zoo
from tfvq.train import loop

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = dict(model="hqa_digits", batch_size=8, eval_examples=16, log_every=1, verbose=False)


def weights_by_layer(model):
    return [[np.array(v) for v in l.weights] for l in model.hqa_layers]


def test_greedy_training_changes_only_the_current_layer(tmp_path):
    trainer = loop.Trainer(loop.TrainOptions(**TINY, steps=2, layers=[2], model_dir=str(tmp_path)))
    before = weights_by_layer(trainer.model)
    trainer.run()
    after = weights_by_layer(trainer.model)
    for layer, (b, a) in enumerate(zip(before, after), start=1):
        changed = any(not np.array_equal(x, y) for x, y in zip(b, a))
        assert changed == (layer == 2), f"layer {layer} changed={changed}"


def test_a_stages_step_hook_runs_when_the_run_gets_there(tmp_path):
    # hqa_digits' layer 1 keeps its 20 most used codes when its resets end (step ceil(0.75 * 4) = 3).
    trainer = loop.Trainer(loop.TrainOptions(**TINY, steps=4, layers=[1], model_dir=str(tmp_path)))
    assert list(trainer.stages[1].at_steps) == [3]
    trainer.run()
    images = trainer._setup_images()
    z_e = trainer.model.encode_continuous(images, 1).numpy().reshape(-1, 64)
    codebook = trainer.model.quantizer(1).codebook.numpy()
    radius = np.sqrt(((z_e - z_e.mean(0)) ** 2).sum(1).max())
    far = np.sqrt(((codebook - z_e.mean(0)) ** 2).sum(1)) > 5 * radius
    assert far.sum() == 256 - 20
    assert set(np.unique(trainer.model.encode(images, 1).numpy())) <= set(np.flatnonzero(~far))


def test_a_run_writes_weights_pngs_metrics_and_summaries(tmp_path):
    summary = loop.train(loop.TrainOptions(**TINY, steps=2, layers=[1, 2], model_dir=str(tmp_path)))
    for key in ("weights", "reconstructions", "stochastic_decodes", "metrics"):
        assert os.path.getsize(summary[key]) > 0
    assert open(summary["reconstructions"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    metrics = json.load(open(summary["metrics"]))["layers"]
    assert metrics["1"]["bits_per_image"] == 2048 and metrics["2"]["bits_per_image"] == 512
    assert os.listdir(os.path.join(tmp_path, "logs"))


def test_mirrored_on_two_cpus_gives_the_one_device_loss_for_the_same_batch_and_seed(tmp_path, mirrored_strategy):
    results = []
    for name, strategy in (("one", tf.distribute.OneDeviceStrategy("/cpu:0")), ("mirrored", mirrored_strategy)):
        trainer = loop.Trainer(
            loop.TrainOptions(**TINY, steps=3, layers=[2], model_dir=str(tmp_path / name), seed=3), strategy
        )
        step = trainer.make_step(2)
        iterator = trainer.make_dataset(2, 0)
        losses = [float(step(iterator)["loss"]) for _ in range(3)]
        results.append((losses, [np.array(v) for v in trainer.model.layer_variables(2)]))
    (loss_one, w_one), (loss_mirrored, w_mirrored) = results
    np.testing.assert_allclose(loss_mirrored, loss_one, rtol=1e-5)
    for a, b in zip(w_one, w_mirrored):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_non_finite_loss_stops_with_the_step_and_saves_nothing(tmp_path):
    trainer = loop.Trainer(loop.TrainOptions(**TINY, steps=3, layers=[1], model_dir=str(tmp_path)))
    kernel = trainer.model.hqa_layers[0].encoder.layers[0].kernel
    kernel.assign(np.full(kernel.shape, np.nan, np.float32))
    with pytest.raises(FloatingPointError, match="stage layer_1, step 0"):
        trainer.run()
    assert trainer.manager.latest_checkpoint is None


def _cli(model_dir, *extra):
    return [sys.executable, os.path.join(ROOT, "train.py"), "--model=hqa_digits", "--batch_size=8",
            "--eval_examples=16", f"--model_dir={model_dir}", *extra]


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path, repo_env):
    cmd = _cli(tmp_path, "--layers=1,2", "--steps=30", "--checkpoint_every=4", "--log_every=1")
    env = repo_env(TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    index = tmp_path / "checkpoints" / "ckpt-2.index"
    while not index.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert index.exists(), "the run did not reach its second checkpoint"
    # The run may have written a later checkpoint before the kill landed: resume is from the latest.
    saved = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "checkpoints")))
    resumed_step = int(saved.get_tensor("stage_step/.ATTRIBUTES/VARIABLE_VALUE"))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"step {resumed_step})" in out.stdout and "Resuming from" in out.stdout
    final = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "checkpoints")))
    assert int(final.get_tensor("stage_index/.ATTRIBUTES/VARIABLE_VALUE")) == 2
    keys = final.get_variable_to_shape_map()
    iterations = [k for k in keys if k.startswith("optimizers/1/") and "iterations" in k]
    assert iterations, sorted(keys)[:20]
    # Resumed, not restarted: layer 1's optimiser took exactly --steps steps in all.
    assert int(final.get_tensor(iterations[0])) == 30
    assert os.path.exists(tmp_path / "metrics.json")


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_mirrored_trains_with_two_local_workers(tmp_path, repo_env):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = repo_env(TF_CPP_MIN_LOG_LEVEL="3",
                       TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        cmd = _cli(tmp_path, "--strategy=multi_worker_mirrored", "--layers=1", "--steps=3", "--log_every=1")
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert "2 replica(s) (multi_worker_mirrored)" in outs[0][0]
    assert json.load(open(tmp_path / "metrics.json"))["layers"]["1"]["bits_per_image"] == 2048


def test_the_vqvae_baseline_trains_end_to_end_with_the_same_trainer(tmp_path):
    trainer = loop.Trainer(loop.TrainOptions(**{**TINY, "model": "vqvae_mnist"}, dataset="digits", steps=2,
                                             model_dir=str(tmp_path)))
    before = [np.array(v) for v in trainer.model.trainable_variables]
    summary = trainer.run()
    after = [np.array(v) for v in trainer.model.trainable_variables]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))  # encoder, codebook, decoder
    assert summary["report"]["metrics"]["layers"]["1"]["bits_per_image"] == 8


def test_recipe_overrides_go_through_the_typed_recipe_and_an_unknown_key_names_the_known_ones(tmp_path):
    options = loop.TrainOptions(**TINY, steps=1, learning_rate=1e-3, model_dir=str(tmp_path),
                                recipe={"initial_temperature": 0.5, "keep_codes": None})
    trainer = loop.Trainer(options)
    assert trainer.recipe.learning_rate == 1e-3 and trainer.recipe.batch_size == 8 and trainer.batch_size == 8
    assert trainer.recipe.initial_temperature == 0.5 and trainer.stages[1].at_steps == {}
    assert trainer.learning_rate() == pytest.approx(1e-3)
    for bad in ({"initial_temprature": 0.5}, {"plateau_factor": 0.5}):  # misspelt; another family's key
        with pytest.raises(ValueError, match=rf"Unknown recipe override key '{next(iter(bad))}' for HQARecipe.*"
                                             r"Known keys: batch_size, steps, learning_rate"):
            loop.Trainer(loop.TrainOptions(**TINY, steps=1, model_dir=str(tmp_path / "bad"), recipe=bad))
    with pytest.raises(ValueError, match="learning_rate must be positive"):
        loop.Trainer(loop.TrainOptions(**TINY, steps=1, learning_rate=-1.0, model_dir=str(tmp_path / "neg")))


def test_bundled_recipe_trains_what_the_bundled_weights_were_trained_with_on_their_dataset(tmp_path):
    entry = zoo.get("vqvae_mnist")
    trainer = loop.Trainer(loop.TrainOptions(**{**TINY, "model": "vqvae_mnist", "batch_size": None},
                                             bundled_recipe=True, steps=1, model_dir=str(tmp_path / "a")))
    assert trainer.dataset == "mnist10k" == entry.weights_dataset
    assert trainer.recipe == entry.weights_recipe.replace(eval_examples=16) and trainer.batch_size == 128
    assert trainer.stages[1].steps == 1  # --steps still applies on top
    paper = loop.Trainer(loop.TrainOptions(**{**TINY, "model": "vqvae_mnist"}, steps=1, model_dir=str(tmp_path / "b")))
    assert paper.dataset == "mnist" and paper.recipe.learning_rate == entry.train.learning_rate
    plain = loop.Trainer(loop.TrainOptions(**TINY, bundled_recipe=True, steps=1, model_dir=str(tmp_path / "c")))
    assert plain.recipe == zoo.get("hqa_digits").train.replace(batch_size=8, eval_examples=16)  # its own recipe
