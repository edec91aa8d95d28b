"""TF Serving SavedModel (and TFLite encoder) export of the hierarchical VAEs: RRVQ-VAE and Spatial-VAE,
and of the VQ-VAE baseline.

Small fresh models keep the exports fast: the RRVQ-VAE has the zoo's L = 5-style halving grids at 16x16.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfvq  # noqa: F401  (first)
from tfvq import zoo
from tfvq.export import saved_model as sm
from tfvq.export import tflite
from tfvq.models.rrvq import RRVQVAE, SpatialVAE
from tfvq.models.rrvq.hierarchical_vae import DEFAULT_SEED



def _no_tfvq_script():
    """The HQA test's loader script that blocks `import tfvq` (shared, so both exports meet one contract)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_hqa_saved_model_test", os.path.join(os.path.dirname(__file__), "test_saved_model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._NO_TFVQ_SCRIPT


SHAPE = (16, 16, 3)
GRIDS = (4, 2, 1)


@pytest.fixture(scope="module")
def rrvq():
    return RRVQVAE(SHAPE, GRIDS, num_codes=8, code_dim=4, channels=8, seed=3)


@pytest.fixture(scope="module")
def spatial():
    return SpatialVAE(SHAPE, GRIDS[:2], latent_dim=4, channels=8, seed=4)


@pytest.fixture(scope="module")
def images():
    """uint8 pixels: the signatures' image dtype (the Python model takes them too)."""
    return np.random.RandomState(0).randint(0, 256, size=(3, *SHAPE)).astype(np.uint8)


@pytest.fixture(scope="module")
def rrvq_path(rrvq, images, tmp_path_factory):
    return sm.export_saved_model(rrvq, str(tmp_path_factory.mktemp("serving")), "rrvq_tiny", version=2,
                                 warmup_images=images)


@pytest.fixture(scope="module")
def rrvq_sigs(rrvq_path):
    return tf.saved_model.load(rrvq_path).signatures


@pytest.fixture(scope="module")
def spatial_sigs(spatial, tmp_path_factory):
    return tf.saved_model.load(sm.export_saved_model(spatial, str(tmp_path_factory.mktemp("spatial")),
                                                     "spatial_tiny")).signatures


def test_layout_signature_names_dtypes_and_shapes(rrvq_path, rrvq_sigs, spatial_sigs):
    assert rrvq_path.endswith(os.path.join("rrvq_tiny", "2"))
    assert os.path.isfile(os.path.join(rrvq_path, sm.WARMUP_FILE))
    common = ["bits_per_dim", "bits_per_dim_seeded", "elbo", "elbo_seeded", "reconstruct", "sample",
              "serving_default"]
    assert sorted(rrvq_sigs.keys()) == sorted(common + ["encode", "decode"])
    assert sorted(spatial_sigs.keys()) == sorted(common)
    image = rrvq_sigs["bits_per_dim"].structured_input_signature[1]["images"]
    assert image.dtype == tf.uint8 and image.shape.as_list() == [None, *SHAPE]
    out = rrvq_sigs["serving_default"].structured_outputs
    assert list(out) == ["bits_per_dim"] and out["bits_per_dim"].shape.as_list() == [None]
    seeded = rrvq_sigs["bits_per_dim_seeded"].structured_input_signature[1]["seed"]
    assert seeded.dtype == tf.int32 and seeded.shape.as_list() == [2]
    elbo = rrvq_sigs["elbo"].structured_outputs
    assert elbo["kl"].shape.as_list() == [None, 3] and elbo["log_likelihood"].dtype == tf.float32
    sample_in = rrvq_sigs["sample"].structured_input_signature[1]
    assert sample_in["num_images"].dtype == tf.int32 and sample_in["num_images"].shape.rank == 0
    assert sample_in["seed"].shape.as_list() == [2]
    sample_out = rrvq_sigs["sample"].structured_outputs["images"]
    assert sample_out.dtype == tf.uint8 and sample_out.shape.as_list() == [None, *SHAPE]
    codes = rrvq_sigs["encode"].structured_outputs
    assert sorted(codes) == ["codes_layer_1", "codes_layer_2", "codes_layer_3"]
    assert codes["codes_layer_1"].dtype == tf.int32 and codes["codes_layer_1"].shape.as_list() == [None, 4, 4]
    assert rrvq_sigs["reconstruct"].structured_outputs["images"].dtype == tf.uint8
    assert spatial_sigs["reconstruct"].structured_outputs["images"].dtype == tf.uint8
    assert sorted(rrvq_sigs["decode"].structured_input_signature[1]) == sorted(codes)


def test_saved_model_matches_the_keras_model(rrvq, rrvq_sigs, images):
    x = tf.constant(images)
    got = rrvq_sigs["bits_per_dim_seeded"](images=x, seed=tf.constant([5, 6]))["bits_per_dim"].numpy()
    np.testing.assert_allclose(got, rrvq.bits_per_dim(images, seed=(5, 6)).numpy(), rtol=1e-6)
    got = rrvq_sigs["serving_default"](images=x)["bits_per_dim"].numpy()
    np.testing.assert_allclose(got, rrvq.bits_per_dim(images, seed=DEFAULT_SEED).numpy(), rtol=1e-6)
    elbo = rrvq_sigs["elbo_seeded"](images=x, seed=tf.constant([1, 2]))
    want = rrvq.elbo(images, seed=(1, 2))
    for key in ("elbo", "log_likelihood", "kl"):
        np.testing.assert_allclose(elbo[key].numpy(), want[key].numpy(), rtol=1e-5, atol=1e-5)
    samples = rrvq_sigs["sample"](num_images=tf.constant(4), seed=tf.constant([7, 8]))["images"].numpy()
    assert samples.dtype == np.uint8 and samples.shape == (4, *SHAPE)
    np.testing.assert_array_equal(samples, rrvq.sample(4, seed=(7, 8)).numpy())
    other = rrvq_sigs["sample"](num_images=tf.constant(4), seed=tf.constant([7, 9]))["images"].numpy()
    assert not np.array_equal(samples, other)
    codes = rrvq_sigs["encode"](images=x)
    for l, want_codes in enumerate(rrvq.encode(images)):
        np.testing.assert_array_equal(codes[f"codes_layer_{l + 1}"].numpy(), want_codes.numpy())
    np.testing.assert_array_equal(rrvq_sigs["reconstruct"](images=x)["images"].numpy(),
                                  rrvq.reconstruct(images).numpy())
    decoded = rrvq_sigs["decode"](**{k: v for k, v in codes.items()})["images"].numpy()
    np.testing.assert_array_equal(decoded, rrvq.decode(rrvq.encode(images), dtype="uint8").numpy())
    np.testing.assert_array_equal(decoded, rrvq.reconstruct(images).numpy())


def test_spatial_vae_saved_model_matches(spatial, spatial_sigs, images):
    got = spatial_sigs["bits_per_dim_seeded"](images=tf.constant(images), seed=tf.constant([3, 4]))
    np.testing.assert_allclose(got["bits_per_dim"].numpy(), spatial.bits_per_dim(images, seed=(3, 4)).numpy(),
                               rtol=1e-6)
    samples = spatial_sigs["sample"](num_images=tf.constant(2), seed=tf.constant([1, 1]))["images"].numpy()
    assert samples.dtype == np.uint8 and samples.shape == (2, *SHAPE)
    np.testing.assert_array_equal(samples, spatial.sample(2, seed=(1, 1)).numpy())


def test_runs_without_tfvq_and_warmup_replays(rrvq_path, rrvq_sigs, rrvq, images, tmp_path):
    from tensorflow_serving.apis import prediction_log_pb2

    names = []
    for record in tf.data.TFRecordDataset(os.path.join(rrvq_path, sm.WARMUP_FILE)):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        names.append(request.model_spec.signature_name)
        assert set(sm.predict(rrvq_sigs, request).outputs) == set(rrvq_sigs[names[-1]].structured_outputs)
    assert sorted(names) == sorted(rrvq_sigs.keys())
    assert sm.custom_ops(rrvq_path) == []

    feeds = {}
    for endpoint in rrvq.serving_endpoints():
        for name in (endpoint.name, *endpoint.aliases):
            for key, value in endpoint.warmup(images[:1]).items():
                feeds[f"{name}/{key}"] = value
    np.savez(tmp_path / "inputs.npz", **feeds)
    (tmp_path / "run.py").write_text(_no_tfvq_script())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run([sys.executable, "-I", str(tmp_path / "run.py"), rrvq_path, str(tmp_path / "inputs.npz"),
                           str(tmp_path / "outputs.npz")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs = np.load(tmp_path / "outputs.npz")
    np.testing.assert_allclose(outputs["serving_default/bits_per_dim"],
                               rrvq.bits_per_dim(images[:1], seed=DEFAULT_SEED).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(outputs["sample/images"], rrvq.sample(1, seed=(0, 0)).numpy())


def test_bad_requests_give_clear_errors(rrvq_sigs, images):
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_images must be a positive"):
        rrvq_sigs["sample"](num_images=tf.constant(0), seed=tf.constant([0, 0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="not compatible with expected shape"):
        rrvq_sigs["bits_per_dim"](images=tf.constant(images[:, :8]))
    with pytest.raises(ValueError, match="input 'images' must be uint8"):
        sm.check_inputs(rrvq_sigs["bits_per_dim"], {"images": images.astype(np.float32) / 255}, "bits_per_dim")
    with pytest.raises(ValueError, match="sample: input 'seed' must be int32 of shape \\[2\\]"):
        sm.check_inputs(rrvq_sigs["sample"], {"num_images": np.array(1, np.int32),
                                              "seed": np.zeros(3, np.int32)}, "sample")
    answer = sm.rest_predict(rrvq_sigs, {"signature_name": "sample", "inputs": {"num_images": 2, "seed": [1, 2]}})
    assert np.asarray(answer["outputs"]).shape == (2, *SHAPE)


def test_the_vqvae_baseline_exports_its_code_signatures(tmp_path, images):
    vqvae = zoo.build("vqvae_mnist")
    x = np.repeat(images[:2, :, :, :1], 2, axis=1)[:, :32, :32]
    x = np.pad(x, ((0, 0), (0, 32 - x.shape[1]), (0, 32 - x.shape[2]), (0, 0)))
    sigs = tf.saved_model.load(sm.export_saved_model(vqvae, str(tmp_path), "vq")).signatures
    assert sorted(sigs.keys()) == ["decode", "encode", "reconstruct", "serving_default"]  # nothing to sample
    codes = sigs["encode"](images=tf.constant(x))["codes"]
    np.testing.assert_array_equal(codes.numpy(), vqvae.encode(x).numpy())
    np.testing.assert_array_equal(sigs["decode"](codes=codes)["images"].numpy(), vqvae.reconstruct(x).numpy())


def test_bad_export_arguments_raise_clear_errors(rrvq, spatial, tmp_path):
    with pytest.raises(ValueError, match=r"layer must be an integer in 1\.\.3"):
        sm.export_saved_model(rrvq, str(tmp_path), "x", layers=[4])
    with pytest.raises(ValueError, match="no per-layer signatures"):
        sm.export_saved_model(spatial, str(tmp_path), "x", layers=[1])
    with pytest.raises(TypeError, match="TFLite export is for the encoders of models with discrete codes"):
        tflite.convert_encoder(spatial, None)
    with pytest.raises(ValueError, match="variant must be one of"):
        tflite.convert_encoder(rrvq, None, "int9")


def test_rrvq_tflite_encoder_agrees_with_the_saved_model(rrvq, rrvq_path, images, tmp_path):
    rows = tflite.agreement_table(rrvq, None, rrvq_path, images, None, str(tmp_path), "rrvq_tiny",
                                  variants=("float32",))
    assert len(rows) == 1 and rows[0]["path"].endswith("rrvq_tiny_encode_layer1_float32.tflite")
    assert rows[0]["agreement"] == 1.0
    runner = tflite.interpreter(rows[0]["path"]).get_signature_runner("encode")
    assert list(runner.get_input_details()["images"]["shape"]) == [1, *SHAPE]
    out = runner.get_output_details()
    assert sorted(out) == ["codes_layer_1", "codes_layer_2", "codes_layer_3"]
    assert out["codes_layer_2"]["dtype"] == np.int32 and list(out["codes_layer_2"]["shape"]) == [1, 2, 2]
