"""TFLite encoders of HQA models and RRVQ-VAEs, built from TFLite builtin ops only.

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

RRVQ-VAEs (`tfvq.models.RRVQVAE`) get one file per variant,
`<model_name>_encode_<variant>.tflite`, whose `encode` signature takes
float32 images [1, H, W, C] in [0, 1] and gives `codes_layer_1` ..
`codes_layer_L` (int32 [1, h_l, w_l], layer 1 first): the SavedModel's
`encode` (`model.encode(images, stochastic=False)`). Only the float variants
(`RRVQ_VARIANTS`) are offered for them. Spatial-VAEs have no codes: they
have no TFLite encoder (`TypeError`).

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
RRVQ_VARIANTS = ("float32", "float16", "dynamic")
"""Variants offered for RRVQ-VAE encoders (full-integer int8 is not calibrated or tested for them)."""


def _is_rrvq(model):
    from tfvq.export import hierarchical

    return hierarchical.is_discrete(model)


def has_encoder(model):
    """True for models with a TFLite encoder: HQA and RRVQ-VAE (not Spatial-VAE)."""
    return hasattr(model, "hqa_layers") or _is_rrvq(model)


def check_model(model):
    """Raises `TypeError` unless `model` has a TFLite encoder (HQA or RRVQ-VAE)."""
    if not has_encoder(model):
        raise TypeError(f"TFLite export is for the encoders of HQA models and RRVQ-VAEs (models with discrete "
                        f"codes), got {type(model).__name__}; export it as a SavedModel instead.")


def rrvq_encoder_fn(model):
    """A function of float images [B, H, W, C] in [0, 1] -> {codes_layer_l: int32 [B, h_l, w_l]} of an RRVQ-VAE.

    `model.encode(images, stochastic=False)` without its graph-mode value
    assertions (not TFLite builtins); the codes are `tf.argmax` (ARG_MAX).
    """
    from tfvq.export.hierarchical import DEFAULT_SEED

    def encode(images):
        *_, codes = model._inference(tf.cast(images, tf.float32), False, tf.constant(DEFAULT_SEED, tf.int32),
                                     stochastic=False)
        return {f"codes_layer_{l + 1}": c for l, c in enumerate(codes)}

    return encode


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
      model: a `tfvq.models.HQA`, or an `RRVQVAE` (then `layer` must be None:
        one encoder gives every layer's codes).
      layer: 1..model.num_layers.
      variant: "float32", "float16", "dynamic" or "int8" ("int8" is HQA only).
      representative_images: float [N, H, W, C] in [0, 1], required for "int8"
        (e.g. `tfvq.data.load_numpy(dataset, "train", limit=200)`).
      num_calibration: at most this many images calibrate "int8".

    Raises:
      TypeError: a model without a TFLite encoder (e.g. a Spatial-VAE).
      ValueError: unknown variant, or "int8" without representative images.
      tf.lite / converter errors: an op that is not a TFLite builtin.
    """
    check_model(model)
    rrvq = _is_rrvq(model)
    variants = RRVQ_VARIANTS if rrvq else VARIANTS
    if variant not in variants:
        raise ValueError(f"variant must be one of {variants} for a {type(model).__name__}, got {variant!r}.")
    if variant == "int8" and representative_images is None:
        raise ValueError("the int8 variant needs representative_images (float images in [0, 1]) to calibrate.")
    if rrvq:
        if layer is not None:
            raise ValueError("An RRVQ-VAE has one TFLite encoder for all its latent layers: pass layer=None.")
        endpoint = rrvq_encoder_fn(model)
    else:
        encode = encoder_fn(model, layer)

        def endpoint(images):
            return {"codes": encode(images)}

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


def _file_name(model_name, layer, variant):
    return f"{model_name}_encode_{variant}.tflite" if layer is None else \
        f"{model_name}_encode_layer{layer}_{variant}.tflite"


def export_tflite(model, out_dir, model_name, layers=None, variants=VARIANTS, representative_images=None):
    """Writes `out_dir/<model_name>_encode_layer<L>_<variant>.tflite`; returns {(layer, variant): path}.

    For an RRVQ-VAE: `out_dir/<model_name>_encode_<variant>.tflite`, keys (None, variant); `layers` must be
    None and `variants` default to `RRVQ_VARIANTS`.
    """
    check_model(model)
    if _is_rrvq(model):
        if layers is not None:
            raise ValueError("An RRVQ-VAE has one TFLite encoder for all its latent layers: leave layers unset.")
        layers = [None]
        variants = RRVQ_VARIANTS if variants is VARIANTS else variants
    else:
        layers = list(range(1, model.num_layers + 1)) if layers is None else [model._check_layer(l) for l in layers]
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
    SavedModel's `encode_layer_L` on `test_images`. Returns a list of dict rows.

    For an RRVQ-VAE (`layers` None): one row per variant, layer "all", agreement over every layer's
    codes with the SavedModel's `encode`."""
    loaded = tf.saved_model.load(saved_model_path)
    if _is_rrvq(model):
        images = np.clip(np.asarray(test_images, np.float32), 0, 1)
        reference = loaded.signatures["encode"](images=tf.constant(images))
        paths = export_tflite(model, out_dir, model_name, layers, variants, representative_images)
        rows = []
        for (_, variant), path in paths.items():
            codes, ms = run_encoder(interpreter(path, num_threads), images)
            equal = sum(int(np.sum(codes[k] == reference[k].numpy())) for k in codes)
            total = sum(codes[k].size for k in codes)
            rows.append({"layer": "all", "variant": variant, "bytes": os.path.getsize(path), "ms_per_image": ms,
                         "agreement": equal / total, "path": path})
        return rows
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
        lines.append(f"{str(r['layer']):>5s} {r['variant']:>8s} {r['bytes'] / 1024:10.1f} {r['ms_per_image']:9.3f} "
                     f"{r['agreement']:11.4f}")
    return "\n".join(lines)
