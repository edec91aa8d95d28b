"""Export an HQA model as a TF Serving SavedModel.

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
`round(255 * clip(x, 0, 1))` on the way out). Codes outside `[0, K)` fail
with an `InvalidArgumentError` naming the valid range.

The graphs hold only standard TensorFlow ops (no tfvq code is needed to load
or serve them); see `custom_ops`.
"""

import os

import keras
import numpy as np
import tensorflow as tf

SIGNATURE_METHODS = ("encode", "decode", "decode_seeded", "reconstruct")
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def signature_name(method, layer=None):
    """`encode_layer_3` for (encode, 3); the default-layer alias for layer None."""
    return method if layer is None else f"{method}_layer_{int(layer)}"


def to_float(images):
    return tf.cast(images, tf.float32) / 255.0


def to_uint8(images):
    return tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0), tf.uint8)


def _check_model(model):
    if not hasattr(model, "hqa_layers"):
        raise TypeError(f"Only HQA models can be exported for now, got {type(model).__name__}.")


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

    def check_codes(codes):
        return [
            tf.debugging.assert_non_negative(codes, message=f"layer {layer} codes must be in [0, {k - 1}]"),
            tf.debugging.assert_less(codes, tf.constant(k, tf.int32), message=f"layer {layer} codes must be in [0, {k - 1}]"),
        ]

    def decode_rows(codes, seed):
        def one(args):
            c, s = args
            x = model.decode(c[None], layer, stochastic=True, seed=tf.stack([s, tf.constant(0, tf.int32)]))
            return to_uint8(x)[0]

        return tf.map_fn(one, (codes, seed), fn_output_signature=tf.TensorSpec(model.image_shape, tf.uint8))

    def encode(images):
        return {"codes": model.encode(to_float(images), layer, stochastic=False)}

    def decode(codes):
        with tf.control_dependencies(check_codes(codes)):
            seed = tf.random.uniform(tf.shape(codes)[:1], maxval=np.iinfo(np.int32).max, dtype=tf.int32)
            return {"images": decode_rows(codes, seed)}

    def decode_seeded(codes, seed):
        with tf.control_dependencies(check_codes(codes)):
            tf.debugging.assert_equal(tf.shape(seed)[0], tf.shape(codes)[0],
                                      message="seed needs one entry per row of codes")
            return {"images": decode_rows(codes, seed)}

    def reconstruct(images):
        x = to_float(images)
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
      model: a `tfvq.models.HQA`.
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
    _check_model(model)
    if int(version) < 1:
        raise ValueError(f"version must be a positive integer, got {version}.")
    layers = _layers(model, layers)
    default_layer = layers[-1] if default_layer is None else model._check_layer(default_layer)
    if default_layer not in layers:
        layers = sorted(layers + [default_layer])
    path = os.path.join(out_dir, model_name, str(int(version)))
    archive = keras.export.ExportArchive()
    archive.track(model)
    for layer in layers:
        for method, (fn, spec) in make_endpoints(model, layer).items():
            archive.add_endpoint(signature_name(method, layer), tf.function(fn, autograph=False), spec)
            if layer == default_layer:
                archive.add_endpoint(method, tf.function(fn, autograph=False), spec)
    archive.add_endpoint("serving_default", tf.function(make_endpoints(model, default_layer)["reconstruct"][0],
                                                        autograph=False),
                         make_endpoints(model, default_layer)["reconstruct"][1])
    archive.write_out(path, verbose=verbose)
    write_warmup_requests(path, model, model_name, layers, default_layer, warmup_images)
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
    """`assets.extra/tf_serving_warmup_requests`: one PredictRequest per signature."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    names = [(signature_name(m, l), m, l) for l in layers for m in SIGNATURE_METHODS]
    names += [(m, m, default_layer) for m in SIGNATURE_METHODS] + [("serving_default", "reconstruct", default_layer)]
    os.makedirs(os.path.join(path, "assets.extra"), exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(path, WARMUP_FILE)) as writer:
        for name, method, layer in names:
            request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name, signature_name=name))
            for key, value in warmup_inputs(model, layer, method, images).items():
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
