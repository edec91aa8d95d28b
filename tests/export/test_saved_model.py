"""TF Serving SavedModel export of HQA: layout, standard ops, loading without tfvq,
agreement with the Python model, the Predict / REST contract, saved_model_cli, bad inputs."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tfvq import data, zoo
from tfvq.export import saved_model as sm

MODEL = "hqa_digits"
LAYERS = (2, 5)  # a subset keeps the export fast; 5 is the default layer
METHODS = ("encode", "decode", "decode_seeded", "reconstruct")


@pytest.fixture(scope="module")
def model():
    return zoo.load(MODEL, weights="bundled")


@pytest.fixture(scope="module")
def images():
    return data.load_numpy("digits", "test", limit=4)


@pytest.fixture(scope="module")
def pixels(images):
    return np.round(images * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def export_path(model, images, tmp_path_factory):
    return sm.export_saved_model(model, str(tmp_path_factory.mktemp("serving")), MODEL, version=3, layers=LAYERS,
                                 warmup_images=images)


@pytest.fixture(scope="module")
def signatures(export_path):
    return tf.saved_model.load(export_path).signatures


def all_signature_names():
    names = [sm.signature_name(m, l) for l in LAYERS for m in METHODS]
    return names + list(METHODS) + ["serving_default"]


def layer_of(name):
    return int(name.rsplit("_", 1)[1]) if "_layer_" in name else LAYERS[-1]


def method_of(name):
    return "reconstruct" if name == "serving_default" else name.split("_layer_")[0]


def inputs_for(model, name, pixels, seed0=7):
    layer, method = layer_of(name), method_of(name)
    if method in ("encode", "reconstruct"):
        return {"images": pixels}
    codes = model.encode(pixels.astype(np.float32) / 255, layer).numpy()
    if method == "decode":
        return {"codes": codes}
    return {"codes": codes, "seed": np.arange(seed0, seed0 + len(codes), dtype=np.int32)}


def to_uint8(x):
    return np.round(np.clip(np.asarray(x), 0, 1) * 255).astype(np.uint8)


def expected_outputs(model, name, inputs):
    """What the Python model gives for one signature's inputs (None where it is random)."""
    layer, method = layer_of(name), method_of(name)
    if method == "encode":
        return {"codes": model.encode(inputs["images"].astype(np.float32) / 255, layer).numpy()}
    if method == "reconstruct":
        x = inputs["images"].astype(np.float32) / 255
        return {"codes": model.encode(x, layer).numpy(),
                "images": to_uint8(model.reconstruct(x, layer, stochastic=False))}
    if method == "decode_seeded":
        rows = [to_uint8(model.decode(inputs["codes"][i:i + 1], layer, stochastic=True, seed=(int(s), 0)))[0]
                for i, s in enumerate(inputs["seed"])]
        return {"images": np.stack(rows)}
    if method == "decode":
        return {"images": to_uint8(model.decode(inputs["codes"], layer))}
    return None


def assert_images_close(got, want):
    """Same maths in the SavedModel's graph and the eager Python model; the graph's fused kernels
    (convolution + bias + activation) round differently in the last float bit, which moves a pixel that
    sits on a rounding boundary by one level. Codes are compared exactly elsewhere."""
    assert got.dtype == want.dtype == np.uint8
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert diff.max() <= 1 and np.mean(diff > 0) <= 0.005, (diff.max(), np.mean(diff > 0))


def test_layout_signatures_and_batch_dimension(export_path, signatures, model):
    assert export_path.endswith(os.path.join(MODEL, "3"))
    assert os.path.isfile(os.path.join(export_path, "saved_model.pb"))
    assert sorted(signatures.keys()) == sorted(all_signature_names())
    for name, fn in signatures.items():
        for key, spec in fn.structured_input_signature[1].items():
            assert spec.shape[0] is None, (name, key)
        for key, spec in fn.structured_outputs.items():
            assert spec.shape[0] is None, (name, key)
    enc = signatures["encode_layer_2"]
    assert enc.structured_input_signature[1]["images"].dtype == tf.uint8
    assert enc.structured_outputs["codes"].dtype == tf.int32
    assert enc.structured_outputs["codes"].shape.as_list() == [None, *model.code_shape(2)]
    assert signatures["decode_seeded"].structured_input_signature[1]["seed"].dtype == tf.int32
    assert signatures["decode_layer_5"].structured_outputs["images"].dtype == tf.uint8


def test_graph_holds_only_standard_tensorflow_ops(export_path):
    ops = sm.graph_ops(export_path)
    assert "ArgMax" in ops and "Conv2D" in ops
    assert sm.custom_ops(export_path) == []
    assert [op for op in ops if not hasattr(tf.raw_ops, op)] == []


def test_warmup_requests_cover_every_signature_and_replay(export_path, signatures):
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(export_path, "assets.extra", "tf_serving_warmup_requests")
    names = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        assert request.model_spec.name == MODEL
        names.append(request.model_spec.signature_name)
        response = sm.predict(signatures, request)
        assert set(response.outputs) == set(signatures[names[-1]].structured_outputs)
    assert sorted(names) == sorted(all_signature_names())


_NO_TFVQ_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, sys

    class BlockTfvq(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "tfvq" or name.startswith("tfvq."):
                raise ImportError("tfvq is blocked in this process")

    sys.meta_path.insert(0, BlockTfvq())
    try:
        import tfvq  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("tfvq was importable")
    import numpy as np
    import tensorflow as tf

    export_path, inputs_path, outputs_path = sys.argv[1:]
    loaded = tf.saved_model.load(export_path)
    inputs = np.load(inputs_path)
    results = {}
    for name, fn in loaded.signatures.items():
        keys = list(fn.structured_input_signature[1])
        out = fn(**{k: tf.constant(inputs[name + "/" + k]) for k in keys})
        for k, v in out.items():
            results[name + "/" + k] = v.numpy()
    assert not any(m == "tfvq" or m.startswith("tfvq.") for m in sys.modules)
    np.savez(outputs_path, **results)
    print("ok", len(loaded.signatures))
    """
)


def test_every_signature_runs_without_tfvq_and_matches_the_python_model(export_path, model, pixels, tmp_path):
    feeds = {}
    for name in all_signature_names():
        for key, value in inputs_for(model, name, pixels).items():
            feeds[f"{name}/{key}"] = value
    np.savez(tmp_path / "inputs.npz", **feeds)
    (tmp_path / "run.py").write_text(_NO_TFVQ_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run(
        [sys.executable, "-I", str(tmp_path / "run.py"), export_path, str(tmp_path / "inputs.npz"),
         str(tmp_path / "outputs.npz")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs = np.load(tmp_path / "outputs.npz")
    for name in all_signature_names():
        inputs = {k: feeds[f"{name}/{k}"] for k in inputs_for(model, name, pixels)}
        want = expected_outputs(model, name, inputs)
        if want is None:  # unseeded stochastic decode: valid images of the right shape
            got = outputs[f"{name}/images"]
            assert got.dtype == np.uint8 and got.shape == pixels.shape
            continue
        for key, value in want.items():
            got = outputs[f"{name}/{key}"]
            assert got.dtype == value.dtype and got.shape == value.shape, (name, key)
            if key == "codes":
                np.testing.assert_array_equal(got, value, err_msg=name)
            else:
                assert_images_close(got, value)


def test_seeded_decode_repeats_and_seeds_matter(signatures, model, pixels):
    inputs = inputs_for(model, "decode_seeded_layer_5", pixels)
    fn = signatures["decode_seeded_layer_5"]
    a = fn(codes=tf.constant(inputs["codes"]), seed=tf.constant(inputs["seed"]))["images"].numpy()
    b = fn(codes=tf.constant(inputs["codes"]), seed=tf.constant(inputs["seed"]))["images"].numpy()
    c = fn(codes=tf.constant(inputs["codes"]), seed=tf.constant(inputs["seed"] + 100))["images"].numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_predict_request_is_answered_like_tf_serving(signatures, model, pixels):
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "encode_layer_5"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(pixels))
    response = sm.predict(signatures, request)
    assert isinstance(response, predict_pb2.PredictResponse)
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["codes"]),
                                  model.encode(pixels.astype(np.float32) / 255, 5).numpy())

    request = predict_pb2.PredictRequest()  # no signature name: serving_default
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(pixels[:2]))
    request.output_filter.append("images")
    response = sm.predict(signatures, request)
    assert response.model_spec.signature_name == "serving_default" and list(response.outputs) == ["images"]
    assert tf.make_ndarray(response.outputs["images"]).shape == (2, 32, 32, 1)

    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = "decode_seeded_layer_2"
    for key, value in inputs_for(model, "decode_seeded_layer_2", pixels).items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    got = tf.make_ndarray(sm.predict(signatures, request).outputs["images"])
    want = expected_outputs(model, "decode_seeded_layer_2", inputs_for(model, "decode_seeded_layer_2", pixels))
    assert_images_close(got, want["images"])


def test_rest_row_and_columnar_formats(signatures, model, pixels):
    codes = model.encode(pixels.astype(np.float32) / 255, 5).numpy()
    # row format, one input, one output
    body = json.dumps({"signature_name": "encode", "instances": pixels.tolist()})
    assert json.loads(json.dumps(sm.rest_predict(signatures, body))) == {"predictions": codes.tolist()}
    # columnar format, one input given bare and by name
    for inputs in (pixels.tolist(), {"images": pixels.tolist()}):
        answer = sm.rest_predict(signatures, {"signature_name": "encode_layer_5", "inputs": inputs})
        assert answer == {"outputs": codes.tolist()}
    # row format, two inputs -> objects per instance; columnar with two inputs
    seeds = [3, 4, 5, 6]
    rows = [{"codes": c.tolist(), "seed": s} for c, s in zip(codes, seeds)]
    by_rows = sm.rest_predict(signatures, {"signature_name": "decode_seeded", "instances": rows})
    by_cols = sm.rest_predict(signatures, {"signature_name": "decode_seeded",
                                           "inputs": {"codes": codes.tolist(), "seed": seeds}})
    assert np.array_equal(by_rows["predictions"], by_cols["outputs"])
    assert np.asarray(by_rows["predictions"]).shape == (4, 32, 32, 1)
    # several outputs: an object per instance (rows), an object of columns (columnar)
    rec_rows = sm.rest_predict(signatures, {"instances": pixels.tolist()})["predictions"]
    rec_cols = sm.rest_predict(signatures, {"inputs": {"images": pixels.tolist()}})["outputs"]
    assert [r["codes"] for r in rec_rows] == codes.tolist() == rec_cols["codes"]
    assert [r["images"] for r in rec_rows] == rec_cols["images"]
    # the README's curl body
    answer = sm.rest_predict(signatures, README_CURL_BODY)
    assert np.asarray(answer["predictions"], np.uint8).shape == (1, 32, 32, 1)
    want = expected_outputs(model, "decode_seeded_layer_5", {"codes": np.array([[[17]]], np.int32),
                                                             "seed": np.array([0], np.int32)})
    np.testing.assert_array_equal(np.asarray(answer["predictions"], np.uint8), want["images"])


README_CURL_BODY = '{"signature_name": "decode_seeded", "instances": [{"codes": [[17]], "seed": 0}]}'


def test_saved_model_cli_show_and_run(export_path, pixels, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    np.save(tmp_path / "images.npy", pixels[:2])
    commands = {
        "show": ["saved_model_cli", "show", "--dir", export_path, "--all"],
        "run": ["saved_model_cli", "run", "--dir", export_path, "--tag_set", "serve", "--signature_def",
                "encode_layer_5", "--inputs", f"images={tmp_path / 'images.npy'}", "--outdir", str(tmp_path / "out")],
    }
    procs = {k: subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for k, c in commands.items()}  # side by side: each spends most of its time importing TensorFlow
    results = {k: p.communicate(timeout=120) + (p.returncode,) for k, p in procs.items()}
    stdout, stderr, code = results["show"]
    assert code == 0, stderr[-2000:]
    for name in all_signature_names():
        assert f"signature_def['{name}']" in stdout
    assert "dtype: DT_UINT8" in stdout and "shape: (-1, 32, 32, 1)" in stdout
    _, stderr, code = results["run"]
    assert code == 0, stderr[-2000:]
    got = np.load(tmp_path / "out" / "codes.npy")
    assert got.shape == (2, 1, 1) and got.dtype == np.int32


@pytest.mark.parametrize("name", all_signature_names())
def test_bad_inputs_give_clear_errors(signatures, model, pixels, name):
    from tensorflow_serving.apis import predict_pb2

    good = inputs_for(model, name, pixels)
    key = "images" if "images" in good else "codes"
    wrong_dtype = dict(good, **{key: good[key].astype(np.float32 if key == "images" else np.int64)})
    wrong_shape = dict(good, **{key: good[key][:, :1] if key == "images" or good[key].shape[1] > 1
                                else good[key][:, None]})
    for bad, what in ((wrong_dtype, "must be"), (wrong_shape, "got shape")):
        with pytest.raises(ValueError, match=f"{name}: input '{key}' .*{what}"):
            sm.check_inputs(signatures[name], bad, name)
        request = predict_pb2.PredictRequest()
        request.model_spec.signature_name = name
        for k, v in bad.items():
            request.inputs[k].CopyFrom(tf.make_tensor_proto(v))
        with pytest.raises(ValueError, match=f"input '{key}'"):
            sm.predict(signatures, request)
        # the raw signature refuses them as well, naming what it expects
        expect = "expected to be a (uint8|int32) tensor" if bad is wrong_dtype else "not compatible with expected shape"
        with pytest.raises(tf.errors.InvalidArgumentError, match=expect):
            signatures[name](**{k: tf.constant(v) for k, v in bad.items()})
    with pytest.raises(ValueError, match="missing"):
        sm.check_inputs(signatures[name], {}, name)
    answer = sm.rest_predict(signatures, {"signature_name": name, "inputs": {k: v.tolist() for k, v in
                                                                             wrong_shape.items()}})
    assert "got shape" in answer["error"]


def test_out_of_range_codes_and_bad_requests_are_refused(signatures, model, pixels):
    codes = inputs_for(model, "decode_layer_2", pixels)["codes"].copy()
    codes[0, 0, 0] = 256
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"codes must be in \[0, 255\]"):
        signatures["decode_layer_2"](codes=tf.constant(codes))
    answer = sm.rest_predict(signatures, {"signature_name": "decode_layer_2", "inputs": codes.tolist()})
    assert "codes must be in [0, 255]" in answer["error"]
    assert "non-integer" in sm.rest_predict(signatures, {"signature_name": "encode",
                                                         "inputs": (pixels / 255).tolist()})["error"]
    assert "[0, 255]" in sm.rest_predict(signatures, {"signature_name": "encode",
                                                      "inputs": (pixels.astype(int) + 300).tolist()})["error"]
    assert "unknown signature" in sm.rest_predict(signatures, {"signature_name": "nope", "inputs": []})["error"]
    assert "exactly one" in sm.rest_predict(signatures, {"signature_name": "encode"})["error"]
    assert "error" in sm.rest_predict(signatures, "{not json")
