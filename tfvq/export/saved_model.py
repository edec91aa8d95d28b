"""Export any tfvq model as a TF Serving SavedModel.

The model lists what it serves (`model.serving_endpoints()`, see
`tfvq.models.Endpoint`); this module writes whatever it lists, in TF
Serving's layout, `out_dir/<model_name>/<version>/` holding `saved_model.pb`,
`variables/` and `assets.extra/tf_serving_warmup_requests` (a TFRecord of
`tensorflow_serving.apis.PredictionLog`, one Predict request of batch 1 per
signature, which TF Serving replays before it serves).

Images are uint8 pixels in every signature, in and out. The signatures of
the families (`H, W, C` = `model.image_shape`):

* Discrete models (`CodeModel.code_endpoints`), per exported layer L (suffix
  `_layer_L`; the unsuffixed names are the default layer's):
    encode         {images: uint8 [B,H,W,C]} -> {codes: int32 [B,h,w]} (or codes_layer_l, one per layer sent)
    decode         codes -> {images: uint8}: `model.decode(codes, L)`, deterministic
    decode_seeded  codes, {seed: int32 [B]} -> {images}: row i is
                   `model.decode(codes[i:i+1], L, stochastic=True, seed=(seed[i], 0))`
    reconstruct    {images} -> codes and {images}: `model.reconstruct(x, L)`
  HQA exports every layer (`serving_default` = `reconstruct` of the top
  layer), the VQ-VAE its one layer, an RRVQ-VAE layer 1 (every layer's codes).
* Hierarchical VAEs (`HierarchicalVAE.density_endpoints`): `bits_per_dim`
  (= `serving_default`), `bits_per_dim_seeded`, `elbo`, `elbo_seeded`,
  `reconstruct`, `sample`.

Bad inputs fail with an `InvalidArgumentError`: a wrong dtype ("expected to be
a uint8 tensor"), a wrong shape (EnsureShape: "Shape of tensor ... is not
compatible with expected shape [?,32,32,1]"), codes outside `[0, K)` ("layer
L codes must be in [0, K-1]"). `check_inputs`, `predict` and `rest_predict`
check requests before they run and raise / answer with a `ValueError` message
naming the signature, the input and what it expects.

The graphs hold only standard TensorFlow ops (no tfvq code is needed to load
or serve them); see `custom_ops`.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from tfvq.export import tf_private

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def signature_name(method, layer=None):
    """`encode_layer_3` for (encode, 3); the default-layer alias for layer None."""
    return method if layer is None else f"{method}_layer_{int(layer)}"


def warmup_image(model, images=None):
    """A uint8 [1, H, W, C] example: the first of `images` (uint8, or float in [0, 1]), or a grey image."""
    if images is None:
        return np.full((1,) + tuple(model.image_shape), 128, np.uint8)
    images = np.asarray(images[:1])
    if images.dtype != np.uint8:
        images = np.round(np.clip(images.astype(np.float32), 0, 1) * 255).astype(np.uint8)
    return images


def export_saved_model(model, out_dir, model_name, version=1, layers=None, default_layer=None,
                       warmup_images=None, verbose=False):
    """Writes `out_dir/model_name/version/` for TF Serving and returns its path.

    Args:
      model: any tfvq model (it lists its endpoints).
      out_dir: the model base path's parent (TF Serving's `--model_base_path`
        is `out_dir/model_name`).
      model_name: the served model's name.
      version: a positive integer version directory.
      layers, default_layer: for discrete models, the layers to export code
        signatures for and the layer of the unsuffixed names (defaults: the
        model's); a model without per-layer signatures refuses them.
      warmup_images: images (uint8, or float in [0, 1]) for the warmup
        requests (the first one is used; default: a grey image).
    """
    if isinstance(version, bool) or int(version) < 1:
        raise ValueError(f"version must be a positive integer, got {version}.")
    endpoints = model.serving_endpoints(layers=layers, default_layer=default_layer)
    path = os.path.join(out_dir, model_name, str(int(version)))
    archive = keras.export.ExportArchive()
    archive.track(model)
    for endpoint in endpoints:
        # One traced function per endpoint; its aliases share it.
        function = tf.function(endpoint.fn, input_signature=list(endpoint.input_signature), autograph=False)
        for name in (endpoint.name, *endpoint.aliases):
            archive.add_endpoint(name, function)
    archive.write_out(path, verbose=verbose)
    image = warmup_image(model, warmup_images)
    _write_requests(path, model_name, [(name, endpoint.warmup(image))
                                       for endpoint in endpoints for name in (endpoint.name, *endpoint.aliases)])
    return path


def _write_requests(path, model_name, requests):
    """Writes [(signature name, {input: array})] as TF Serving warmup `PredictionLog`s."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    os.makedirs(os.path.join(path, "assets.extra"), exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(path, WARMUP_FILE)) as writer:
        for name, inputs in requests:
            request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name, signature_name=name))
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def graph_ops(path):
    """The set of op names in a SavedModel's graph and function library (function calls excluded)."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    ops = set()
    for meta in proto.meta_graphs:
        functions = {fn.signature.name for fn in meta.graph_def.library.function}
        nodes = list(meta.graph_def.node)
        for fn in meta.graph_def.library.function:
            nodes.extend(fn.node_def)
        ops.update(n.op for n in nodes if n.op not in functions)
    return ops


def custom_ops(path):
    """Ops of the SavedModel that are not registered TensorFlow ops (should be empty)."""
    return sorted(op for op in graph_ops(path) if not tf_private.is_registered_op(op))


# ----------------------------------------------------------- serving contract
def check_inputs(signature, inputs, name="signature"):
    """Validates a dict of NumPy inputs against a loaded signature; returns them as tensors.

    Raises `ValueError` naming the signature, the input, and what it expects
    (missing or unexpected keys, wrong dtype, wrong shape).
    """
    specs = signature.structured_input_signature[1]
    missing = sorted(set(specs) - set(inputs))
    extra = sorted(set(inputs) - set(specs))
    if missing or extra:
        raise ValueError(f"{name}: expected inputs {sorted(specs)}, got {sorted(inputs)}"
                         + (f" (missing {missing})" if missing else "") + (f" (unexpected {extra})" if extra else ""))
    out = {}
    for key, spec in specs.items():
        value = np.asarray(inputs[key])
        want = f"{spec.dtype.name} of shape {[d if d is not None else 'batch' for d in spec.shape.as_list()]}"
        if value.dtype != spec.dtype.as_numpy_dtype:
            raise ValueError(f"{name}: input '{key}' must be {want}, got dtype {value.dtype}.")
        if not spec.shape.is_compatible_with(value.shape):
            raise ValueError(f"{name}: input '{key}' must be {want}, got shape {list(value.shape)}.")
        out[key] = tf.constant(value)
    return out


def _coerce(value, spec):
    """JSON lists to the dtype a signature input wants (REST gives numbers without types)."""
    array = np.asarray(value)
    if array.dtype == object:
        raise ValueError("ragged input: every row must have the same shape.")
    if spec.dtype.is_integer:
        if array.size and (array.dtype.kind == "f" and not np.all(np.equal(np.mod(array, 1), 0))):
            raise ValueError(f"expects integers ({spec.dtype.name}), got non-integer values.")
        info = np.iinfo(spec.dtype.as_numpy_dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise ValueError(f"expects {spec.dtype.name} values in [{info.min}, {info.max}], "
                             f"got values in [{array.min()}, {array.max()}].")
        return array.astype(spec.dtype.as_numpy_dtype)
    return array.astype(spec.dtype.as_numpy_dtype)


def predict(signatures, request):
    """Answers a `tensorflow_serving.apis.predict_pb2.PredictRequest` from loaded signatures.

    What TF Serving's Predict does, without a server: picks
    `request.model_spec.signature_name` (default `serving_default`), checks
    the inputs, runs the signature and returns a `PredictResponse`. Bad
    requests raise `ValueError`.
    """
    from tensorflow_serving.apis import predict_pb2

    name = request.model_spec.signature_name or "serving_default"
    if name not in signatures:
        raise ValueError(f"unknown signature '{name}'; the model has {sorted(signatures)}.")
    fn = signatures[name]
    inputs = check_inputs(fn, {k: tf.make_ndarray(v) for k, v in request.inputs.items()}, name)
    outputs = fn(**inputs)
    wanted = list(request.output_filter) or sorted(outputs)
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    response.model_spec.signature_name = name
    for key in wanted:
        if key not in outputs:
            raise ValueError(f"{name}: unknown output '{key}' in output_filter; outputs are {sorted(outputs)}.")
        response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key].numpy()))
    return response


def rest_predict(signatures, body):
    """Answers a TF Serving REST `:predict` JSON body (a str or dict) with a JSON-able dict.

    Row format `{"signature_name": ..., "instances": [...]}`: one element per
    example, the value itself when the signature has one input, else an
    object of named values; answered with `{"predictions": [...]}` (one value
    per example, or an object per example when there are several outputs).
    Columnar format `{"inputs": value or {name: value}}`: answered with
    `{"outputs": value or {name: value}}`. Errors give `{"error": message}`,
    as the server does (with HTTP status 400).
    """
    import json

    try:
        if isinstance(body, (str, bytes)):
            body = json.loads(body)
        if not isinstance(body, dict):
            raise ValueError("the request body must be a JSON object.")
        name = body.get("signature_name", "serving_default")
        if name not in signatures:
            raise ValueError(f"unknown signature '{name}'; the model has {sorted(signatures)}.")
        fn = signatures[name]
        specs = fn.structured_input_signature[1]
        if ("instances" in body) == ("inputs" in body):
            raise ValueError("the body must have exactly one of 'instances' (row format) or 'inputs' (columnar).")
        if "instances" in body:
            rows = body["instances"]
            if not isinstance(rows, list) or not rows:
                raise ValueError("'instances' must be a non-empty list with one element per example.")
            if len(specs) == 1 and not all(isinstance(r, dict) for r in rows):
                columns = {next(iter(specs)): rows}
            else:
                if not all(isinstance(r, dict) for r in rows):
                    raise ValueError(f"with several inputs {sorted(specs)} each instance must be an object.")
                keys = set(rows[0])
                if any(set(r) != keys for r in rows):
                    raise ValueError("every instance must have the same named inputs.")
                columns = {k: [r[k] for r in rows] for k in keys}
        else:
            cols = body["inputs"]
            columns = cols if isinstance(cols, dict) else ({next(iter(specs)): cols} if len(specs) == 1 else None)
            if columns is None:
                raise ValueError(f"with several inputs {sorted(specs)}, 'inputs' must be an object.")
        arrays = {}
        for key, value in columns.items():
            try:
                arrays[key] = _coerce(value, specs[key]) if key in specs else np.asarray(value)
            except ValueError as err:
                raise ValueError(f"{name}: input '{key}' {err}") from None
        outputs = {k: v.numpy().tolist() for k, v in fn(**check_inputs(fn, arrays, name)).items()}
    except (ValueError, tf.errors.InvalidArgumentError) as err:
        message = err.message if isinstance(err, tf.errors.OpError) else str(err)
        return {"error": message}
    if "instances" in body:
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values()))}
        keys = sorted(outputs)
        n = len(outputs[keys[0]])
        return {"predictions": [{k: outputs[k][i] for k in keys} for i in range(n)]}
    if len(outputs) == 1:
        return {"outputs": next(iter(outputs.values()))}
    return {"outputs": outputs}
