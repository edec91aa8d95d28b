"""TFLite encoders of the discrete models, built from TFLite builtin ops only.

The model gives its encoder (`CodeModel.tflite_encoder(layer)`): a function
of float images in [0, 1] to int32 codes of the layers `encode(x, layer)`
sends. One `.tflite` file per (layer, variant), with one signature `encode`:

  input  `images`: [1, H, W, C] -- float32 in [0, 1] for the `float32`,
         `float16` and `dynamic` variants; uint8 raw pixels (0..255) for
         `int8` (full-integer; the input's quantisation is scale 1/255,
         zero point 0 when the calibration images span [0, 1]: read
         `get_input_details()[0]["quantization"]`, `quantize_input` does).
  output `codes` (one layer sent: HQA, VQ-VAE) or `codes_layer_l` (several:
         an RRVQ-VAE's layers l..L): int32 [1, h, w], the most probable codes
         (the SavedModel's `encode`).

Variants (the TensorFlow Model Garden menu):
  float32  no quantisation.
  float16  float16 weights (dequantised at load on CPU).
  dynamic  int8 weights, float activations (dynamic-range quantisation).
  int8     full-integer: int8 weights and activations calibrated on the
           model's training images (`representative_images`), builtins of
           `TFLITE_BUILTINS_INT8` only.

Files are `<model_name>_encode_layer<L>_<variant>.tflite`. By default an HQA
model gets one per layer, a VQ-VAE one, an RRVQ-VAE one (layer 1: every
layer's codes). Models without codes (Spatial-VAE) have no TFLite encoder
(`TypeError`).

Conversion goes through a Keras `ExportArchive` SavedModel (frozen variables)
and fails fast, with the converter's error, if an op is not a TFLite builtin.
Run the files with `ai_edge_litert.interpreter.Interpreter` (`run_encoder`).
"""

import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

VARIANTS = ("float32", "float16", "dynamic", "int8")


def check_model(model):
    """The model's `CodeLayout`; `TypeError` for a model without discrete codes."""
    layout = model.code_layout()
    if layout is None:
        raise TypeError(f"TFLite export is for the encoders of models with discrete codes; a "
                        f"{type(model).__name__} has none. Export it as a SavedModel instead.")
    return layout


def encoder_layers(model, layers=None):
    """The layers to write encoders for: `layers`, else the model's default export layers."""
    layout = check_model(model)
    if layers is None:
        return list(model.default_export_layers())
    return [layout.check_layer(l) for l in layers]


def convert_encoder(model, layer=None, variant="float32", representative_images=None, num_calibration=200):
    """The `.tflite` bytes of the encoder of layer `layer` (default: the model's default layer) in one of `VARIANTS`.

    Args:
      model: a discrete tfvq model.
      layer: a layer of `model.code_layout()`.
      variant: "float32", "float16", "dynamic" or "int8".
      representative_images: float [N, H, W, C] in [0, 1] (or uint8), required
        for "int8" (e.g. `tfvq.data.load_numpy(dataset, "train", limit=200)`).
      num_calibration: at most this many images calibrate "int8".

    Raises:
      TypeError: a model without discrete codes (e.g. a Spatial-VAE).
      ValueError: unknown variant or layer, or "int8" without representative images.
      tf.lite / converter errors: an op that is not a TFLite builtin.
    """
    layout = check_model(model)
    layer = layout.check_layer(layer)
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}.")
    if variant == "int8" and representative_images is None:
        raise ValueError("the int8 variant needs representative_images (float images in [0, 1]) to calibrate.")
    endpoint = model.tflite_encoder(layer)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "encode",
        tf.function(endpoint, autograph=False),
        [tf.TensorSpec((1,) + model.image_shape, tf.float32, name="images")],
    )
    with tempfile.TemporaryDirectory() as tmp:
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["encode"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if variant == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif variant == "dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        elif variant == "int8":
            images = np.asarray(representative_images)[:num_calibration]
            images = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)
            if images.ndim != 4 or tuple(images.shape[1:]) != model.image_shape:
                raise ValueError(f"representative_images must be [N, {', '.join(map(str, model.image_shape))}], "
                                 f"got {list(images.shape)}.")

            def representative_dataset():
                for image in images:
                    yield {"images": image[None]}

            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative_dataset
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.uint8
        return converter.convert()


def _file_name(model_name, layer, variant):
    return f"{model_name}_encode_layer{layer}_{variant}.tflite"


def export_tflite(model, out_dir, model_name, layers=None, variants=VARIANTS, representative_images=None):
    """Writes `out_dir/<model_name>_encode_layer<L>_<variant>.tflite`; returns {(layer, variant): path}."""
    layers = encoder_layers(model, layers)
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for layer in layers:
        for variant in variants:
            data = convert_encoder(model, layer, variant, representative_images)
            path = os.path.join(out_dir, _file_name(model_name, layer, variant))
            with open(path, "wb") as f:
                f.write(data)
            paths[(layer, variant)] = path
    return paths


def interpreter(path_or_bytes, num_threads=1):
    """An allocated `ai_edge_litert` interpreter for a file path or model bytes."""
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(path_or_bytes, (bytes, bytearray)):
        interp = Interpreter(model_content=bytes(path_or_bytes), num_threads=num_threads)
    else:
        interp = Interpreter(model_path=str(path_or_bytes), num_threads=num_threads)
    interp.allocate_tensors()
    return interp


def quantize_input(images, detail):
    """Float images in [0, 1] -> the dtype the interpreter's input wants (uint8 pixels for int8)."""
    images = np.asarray(images, np.float32)
    dtype = detail["dtype"]
    if dtype == np.float32:
        return images
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(dtype)


def run_encoder(interp, images):
    """Codes int32 [N, h, w] of float images [N, H, W, C] in [0, 1], one image per invoke.

    Returns (codes, milliseconds per image); for an encoder with several
    outputs (RRVQ-VAE), codes is {output name: int32 [N, h_l, w_l]}.
    """
    runner = interp.get_signature_runner("encode")
    detail = runner.get_input_details()["images"]
    images = np.asarray(images, np.float32)
    want = tuple(detail["shape"][1:])
    if images.ndim != 4 or tuple(images.shape[1:]) != want:
        raise ValueError(f"images must be [N, {', '.join(map(str, want))}] floats in [0, 1], got {list(images.shape)}.")
    codes = []
    start = time.perf_counter()
    for image in images:
        codes.append(runner(images=quantize_input(image[None], detail)))
    ms = 1000.0 * (time.perf_counter() - start) / max(len(images), 1)
    names = sorted(runner.get_output_details())
    stacked = {k: np.stack([c[k][0] for c in codes]).astype(np.int32) for k in names}
    return (stacked["codes"] if names == ["codes"] else stacked), ms


def agreement_table(model, layers, saved_model_path, test_images, representative_images, out_dir,
                    model_name="model", variants=VARIANTS, num_threads=1):
    """Per (layer, variant): file size, ms per image, and the fraction of codes equal to the
    SavedModel's `encode[_layer_L]` on `test_images`. Returns a list of dict rows."""
    loaded = tf.saved_model.load(saved_model_path)
    layers = encoder_layers(model, layers)
    pixels = np.asarray(test_images)
    if pixels.dtype != np.uint8:
        pixels = np.round(np.clip(pixels.astype(np.float32), 0, 1) * 255).astype(np.uint8)
    paths = export_tflite(model, out_dir, model_name, layers, variants, representative_images)
    rows = []
    for layer in layers:
        name = f"encode_layer_{layer}" if f"encode_layer_{layer}" in loaded.signatures else "encode"
        reference = {k: v.numpy() for k, v in loaded.signatures[name](images=tf.constant(pixels)).items()}
        for variant in variants:
            path = paths[(layer, variant)]
            codes, ms = run_encoder(interpreter(path, num_threads), pixels.astype(np.float32) / 255.0)
            codes = codes if isinstance(codes, dict) else {"codes": codes}
            equal = sum(int(np.sum(codes[k] == reference[k])) for k in codes)
            total = sum(codes[k].size for k in codes)
            rows.append({"layer": layer, "variant": variant, "bytes": os.path.getsize(path), "ms_per_image": ms,
                         "agreement": equal / total, "path": path})
    return rows


def format_table(rows):
    lines = [f"{'layer':>5s} {'variant':>8s} {'size (KiB)':>10s} {'ms/image':>9s} {'codes equal':>11s}"]
    for r in rows:
        lines.append(f"{str(r['layer']):>5s} {r['variant']:>8s} {r['bytes'] / 1024:10.1f} {r['ms_per_image']:9.3f} "
                     f"{r['agreement']:11.4f}")
    return "\n".join(lines)
