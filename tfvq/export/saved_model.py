"""Export an HQA model (or a hierarchical VAE) as a TF Serving SavedModel.

Layout (TF Serving's): `out_dir/<model_name>/<version>/` holding
`saved_model.pb`, `variables/` and `assets.extra/tf_serving_warmup_requests`
(a TFRecord of `tensorflow_serving.apis.PredictionLog`, one Predict request of
batch 1 per signature, which TF Serving replays before it serves).

Signatures (batch dimension `None` everywhere; `H, W, C` = `model.image_shape`,
`h_L, w_L` = `model.code_shape(L)`). The layer is chosen by the signature name,
one set per exported layer L, so every input has a batch dimension and every
signature works in REST's row (`instances`) format:

  encode_layer_L          {images: uint8 [B,H,W,C]}         -> {codes: int32 [B,h_L,w_L]}
                          most probable code (deterministic).
  decode_layer_L          {codes: int32 [B,h_L,w_L]}         -> {images: uint8 [B,H,W,C]}
                          stochastic decode (HQA Algorithm 3) with fresh randomness.
  decode_seeded_layer_L   {codes: int32 [B,h_L,w_L],
                           seed: int32 [B]}                  -> {images: uint8 [B,H,W,C]}
                          stochastic decode; row i equals
                          `model.decode(codes[i:i+1], L, seed=(seed[i], 0))`.
  reconstruct_layer_L     {images: uint8 [B,H,W,C]}         -> {codes, images}
                          deterministic: `model.reconstruct(x, L, stochastic=False)`.

and `encode`, `decode`, `decode_seeded`, `reconstruct` for the default layer
(the top exported layer unless `default_layer` is given); `serving_default`
is `reconstruct`. Images are uint8 in 0..255 (divided by 255 on the way in,
`round(255 * clip(x, 0, 1))` on the way out). Bad inputs fail with an
`InvalidArgumentError`: a wrong dtype ("expected to be a uint8 tensor"), a
wrong shape (EnsureShape: "Shape of tensor ... is not compatible with expected
shape [?,32,32,1]"), codes outside `[0, K)` ("layer L codes must be in
[0, K-1]"). `check_inputs`, `predict` and `rest_predict` check requests
before they run and raise / answer with a `ValueError` message naming the
signature, the input and what it expects.

The graphs hold only standard TensorFlow ops (no tfvq code is needed to load
or serve them); see `custom_ops`.

RRVQ-VAEs and Spatial-VAEs (zoo families "rrvq_vae", "spatial_vae") export
in the same layout with their own signatures (`bits_per_dim`, `elbo`,
`reconstruct`, `sample`, RRVQ's `encode`; `serving_default` is
`bits_per_dim`): see `tfvq.export.hierarchical`. Other models raise
`TypeError`.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from tfvq.export import hierarchical

SIGNATURE_METHODS = ("encode", "decode", "decode_seeded", "reconstruct")
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def signature_name(method, layer=None):
    """`encode_layer_3` for (encode, 3); the default-layer alias for layer None."""
    return method if layer is None else f"{method}_layer_{int(layer)}"


def to_float(images):
    return tf.cast(images, tf.float32) / 255.0


def to_uint8(images):
    return tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0), tf.uint8)


EXPORTABLE = "HQA, RRVQVAE and SpatialVAE (zoo families hqa, rrvq_vae, spatial_vae)"


def _check_model(model):
    if not hasattr(model, "hqa_layers"):
        raise TypeError(f"Only HQA models have per-layer encode/decode signatures, got {type(model).__name__}; "
                        f"SavedModel export supports {EXPORTABLE}.")


def _check_exportable(model):
    if not (hasattr(model, "hqa_layers") or hierarchical.is_hierarchical(model)):
        raise TypeError(f"Cannot export a {type(model).__name__} as a SavedModel: export supports {EXPORTABLE}.")


def _layers(model, layers):
    if layers is None:
        return list(range(1, model.num_layers + 1))
    layers = sorted({int(l) for l in layers})
    for l in layers:
        model._check_layer(l)
    if not layers:
        raise ValueError("layers must name at least one layer.")
    return layers


def make_endpoints(model, layer):
    """The four signature functions of layer `layer`: {method: (fn, input_signature)}."""
    _check_model(model)
    layer = model._check_layer(layer)
    h, w = model.code_shape(layer)
    k = model.hqa_layers[layer - 1].num_codes
    image_spec = tf.TensorSpec((None,) + model.image_shape, tf.uint8, name="images")
    codes_spec = tf.TensorSpec((None, h, w), tf.int32, name="codes")
    seed_spec = tf.TensorSpec((None,), tf.int32, name="seed")

    def checked_images(images):
        # EnsureShape: a run-time check (signatures do not check shapes), an error naming both shapes.
        return to_float(tf.ensure_shape(images, (None,) + model.image_shape, name="images_shape_check"))

    def checked_codes(codes):
        codes = tf.ensure_shape(codes, (None, h, w), name="codes_shape_check")
        message = f"layer {layer} codes must be in [0, {k - 1}]"
        checks = [
            tf.debugging.assert_non_negative(codes, message=message),
            tf.debugging.assert_less(codes, tf.constant(k, tf.int32), message=message),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(codes)

    def decode_rows(codes, seed):
        def one(args):
            c, s = args
            x = model.decode(c[None], layer, stochastic=True, seed=tf.stack([s, tf.constant(0, tf.int32)]))
            return to_uint8(x)[0]

        return tf.map_fn(one, (codes, seed), fn_output_signature=tf.TensorSpec(model.image_shape, tf.uint8))

    def encode(images):
        return {"codes": model.encode(checked_images(images), layer, stochastic=False)}

    def decode(codes):
        codes = checked_codes(codes)
        seed = tf.random.uniform(tf.shape(codes)[:1], maxval=np.iinfo(np.int32).max, dtype=tf.int32)
        return {"images": decode_rows(codes, seed)}

    def decode_seeded(codes, seed):
        codes = checked_codes(codes)
        check = tf.debugging.assert_equal(tf.size(seed), tf.shape(codes)[0],
                                          message="seed must be int32 of shape [batch]: one seed per row of codes")
        with tf.control_dependencies([check]):
            seed = tf.identity(tf.reshape(seed, [-1]))
        return {"images": decode_rows(codes, seed)}

    def reconstruct(images):
        x = checked_images(images)
        codes = model.encode(x, layer, stochastic=False)
        return {"codes": codes, "images": to_uint8(model.decode(codes, layer, stochastic=False))}

    return {
        "encode": (encode, [image_spec]),
        "decode": (decode, [codes_spec]),
        "decode_seeded": (decode_seeded, [codes_spec, seed_spec]),
        "reconstruct": (reconstruct, [image_spec]),
    }


def export_saved_model(model, out_dir, model_name, version=1, layers=None, default_layer=None,
                       warmup_images=None, verbose=False):
    """Writes `out_dir/model_name/version/` for TF Serving and returns its path.

    Args:
      model: a `tfvq.models.HQA`, or an `RRVQVAE` / `SpatialVAE` (signatures
        of `tfvq.export.hierarchical`; `layers` and `default_layer` must then
        be None).
      out_dir: the model base path's parent (TF Serving's `--model_base_path`
        is `out_dir/model_name`).
      model_name: the served model's name.
      version: a positive integer version directory.
      layers: the layers to export signatures for (default: all).
      default_layer: the layer of the unsuffixed signatures (default: the top
        exported layer).
      warmup_images: float [N, H, W, C] images in [0, 1] for the warmup
        requests (the first one is used; default: a grey image).
    """
    _check_exportable(model)
    if int(version) < 1:
        raise ValueError(f"version must be a positive integer, got {version}.")
    if hierarchical.is_hierarchical(model):
        return _export_hierarchical(model, out_dir, model_name, version, layers, default_layer, warmup_images,
                                    verbose)
    layers = _layers(model, layers)
    default_layer = layers[-1] if default_layer is None else model._check_layer(default_layer)
    if default_layer not in layers:
        layers = sorted(layers + [default_layer])
    path = os.path.join(out_dir, model_name, str(int(version)))
    archive = keras.export.ExportArchive()
    archive.track(model)
    for layer in layers:
        for method, (fn, spec) in make_endpoints(model, layer).items():
            # One traced function per (method, layer); the default layer's aliases share it.
            function = tf.function(fn, input_signature=spec, autograph=False)
            archive.add_endpoint(signature_name(method, layer), function)
            if layer == default_layer:
                archive.add_endpoint(method, function)
                if method == "reconstruct":
                    archive.add_endpoint("serving_default", function)
    archive.write_out(path, verbose=verbose)
    write_warmup_requests(path, model, model_name, layers, default_layer, warmup_images)
    return path


def _export_hierarchical(model, out_dir, model_name, version, layers, default_layer, warmup_images, verbose):
    if layers is not None or default_layer is not None:
        raise ValueError(f"layers and default_layer choose HQA layers; a {type(model).__name__} export has "
                         "signatures over all its latent layers (leave them unset).")
    path = os.path.join(out_dir, model_name, str(int(version)))
    archive = keras.export.ExportArchive()
    archive.track(model)
    hierarchical.add_endpoints(archive, model)
    archive.write_out(path, verbose=verbose)
    requests = [(name, hierarchical.warmup_inputs(model, method, warmup_images))
                for name, method in hierarchical.warmup_names(model)]
    _write_requests(path, model_name, requests)
    return path


def warmup_inputs(model, layer, method, images=None):
    """Batch-1 NumPy inputs of one signature (for warmup requests and smoke tests)."""
    if images is None:
        image = np.full((1,) + model.image_shape, 128, np.uint8)
    else:
        image = np.round(np.clip(np.asarray(images[:1], np.float32), 0, 1) * 255).astype(np.uint8)
    if method in ("encode", "reconstruct", "serving_default"):
        return {"images": image}
    codes = np.zeros((1,) + tuple(model.code_shape(layer)), np.int32)
    if method == "decode":
        return {"codes": codes}
    return {"codes": codes, "seed": np.zeros((1,), np.int32)}


def write_warmup_requests(path, model, model_name, layers, default_layer, images=None):
    """`assets.extra/tf_serving_warmup_requests`: one PredictRequest per signature (HQA)."""
    names = [(signature_name(m, l), m, l) for l in layers for m in SIGNATURE_METHODS]
    names += [(m, m, default_layer) for m in SIGNATURE_METHODS] + [("serving_default", "reconstruct", default_layer)]
    _write_requests(path, model_name, [(name, warmup_inputs(model, layer, method, images))
                                       for name, method, layer in names])


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
    from tensorflow.python.framework import op_def_registry

    return sorted(op for op in graph_ops(path) if op_def_registry.get(op) is None)


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
