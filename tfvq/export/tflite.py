"""TFLite encoders of HQA models, built from TFLite builtin ops only.

One `.tflite` file per (layer, variant), with one signature `encode`:

  input  `images`: [1, H, W, C] -- float32 in [0, 1] for the `float32`,
         `float16` and `dynamic` variants; uint8 raw pixels (0..255) for
         `int8` (full-integer; the input's quantisation is scale 1/255,
         zero point 0 when the calibration images span [0, 1]: read
         `get_input_details()[0]["quantization"]`, `quantize_input` does).
  output `codes`: int32 [1, h, w], the most probable code of every position
         (the SavedModel's `encode_layer_L`).

Variants (the TensorFlow Model Garden menu):
  float32  no quantisation.
  float16  float16 weights (dequantised at load on CPU).
  dynamic  int8 weights, float activations (dynamic-range quantisation).
  int8     full-integer: int8 weights and activations calibrated on the
           model's training images (`representative_images`), builtins of
           `TFLITE_BUILTINS_INT8` only.

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


def encoder_fn(model, layer):
    """A function of float images [B, H, W, C] in [0, 1] -> int32 codes [B, h, w] of layer `layer`.

    Calls the layers directly (no graph-mode value assertions, which are not
    TFLite builtins) and takes `tf.argmax(..., output_type=tf.int32)` of the
    quantizer's logits (an ARG_MAX builtin), as `model.encode` does.
    """
    layer = model._check_layer(layer)
    hqa_layer = model.hqa_layers[layer - 1]
    quantizer = hqa_layer.quantizer
    h, w = model.code_shape(layer)

    def encode(images):
        x = tf.cast(images, tf.float32)
        for l in model.hqa_layers[:layer]:
            x = l.encode_continuous(x, training=False)
        flat = tf.reshape(x, [-1, quantizer.code_dim])
        logits, _ = quantizer.shifted_logits(flat)
        codes = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return tf.reshape(codes, [-1, h, w])

    return encode


def convert_encoder(model, layer, variant="float32", representative_images=None, num_calibration=200):
    """The `.tflite` bytes of layer `layer`'s encoder in one of `VARIANTS`.

    Args:
      model: a `tfvq.models.HQA`.
      layer: 1..model.num_layers.
      variant: "float32", "float16", "dynamic" or "int8".
      representative_images: float [N, H, W, C] in [0, 1], required for "int8"
        (e.g. `tfvq.data.load_numpy(dataset, "train", limit=200)`).
      num_calibration: at most this many images calibrate "int8".

    Raises:
      ValueError: unknown variant, or "int8" without representative images.
      tf.lite / converter errors: an op that is not a TFLite builtin.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}.")
    if variant == "int8" and representative_images is None:
        raise ValueError("the int8 variant needs representative_images (float images in [0, 1]) to calibrate.")
    encode = encoder_fn(model, layer)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "encode",
        tf.function(lambda images: {"codes": encode(images)}, autograph=False),
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
            images = np.asarray(representative_images, np.float32)[:num_calibration]
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


def export_tflite(model, out_dir, model_name, layers=None, variants=VARIANTS, representative_images=None):
    """Writes `out_dir/<model_name>_encode_layer<L>_<variant>.tflite`; returns {(layer, variant): path}."""
    layers = list(range(1, model.num_layers + 1)) if layers is None else [model._check_layer(l) for l in layers]
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for layer in layers:
        for variant in variants:
            data = convert_encoder(model, layer, variant, representative_images)
            path = os.path.join(out_dir, f"{model_name}_encode_layer{layer}_{variant}.tflite")
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

    Returns (codes, milliseconds per image).
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
        codes.append(runner(images=quantize_input(image[None], detail))["codes"][0])
    ms = 1000.0 * (time.perf_counter() - start) / max(len(images), 1)
    return np.stack(codes).astype(np.int32), ms


def agreement_table(model, layers, saved_model_path, test_images, representative_images, out_dir,
                    model_name="model", variants=VARIANTS, num_threads=1):
    """Per (layer, variant): file size, ms per image, and the fraction of codes equal to the
    SavedModel's `encode_layer_L` on `test_images`. Returns a list of dict rows."""
    loaded = tf.saved_model.load(saved_model_path)
    pixels = np.round(np.clip(np.asarray(test_images, np.float32), 0, 1) * 255).astype(np.uint8)
    paths = export_tflite(model, out_dir, model_name, layers, variants, representative_images)
    rows = []
    for layer in layers:
        reference = loaded.signatures[f"encode_layer_{layer}"](images=tf.constant(pixels))["codes"].numpy()
        for variant in variants:
            path = paths[(layer, variant)]
            codes, ms = run_encoder(interpreter(path, num_threads), np.asarray(pixels, np.float32) / 255.0)
            rows.append({"layer": layer, "variant": variant, "bytes": os.path.getsize(path), "ms_per_image": ms,
                         "agreement": float(np.mean(codes == reference)), "path": path})
    return rows


def format_table(rows):
    lines = [f"{'layer':>5s} {'variant':>8s} {'size (KiB)':>10s} {'ms/image':>9s} {'codes equal':>11s}"]
    for r in rows:
        lines.append(f"{r['layer']:5d} {r['variant']:>8s} {r['bytes'] / 1024:10.1f} {r['ms_per_image']:9.3f} "
                     f"{r['agreement']:11.4f}")
    return "\n".join(lines)
