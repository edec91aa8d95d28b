"""TFLite encoders of the discrete models, built from TFLite builtin ops only.

The model gives its encoder (`CodeModel.tflite_encoder(layer)`): a function
of float images in [0, 1] to int32 codes of the layers `encode(x, layer)`
sends. One `.tflite` file per (layer, variant), with one signature `encode`:

  input  `images`: [1, H, W, C] -- float32 in [0, 1] for the `float32`,
         `float16` and `dynamic` variants; uint8 raw pixels (0..255) for
         `int8` (full-integer; the input's quantisation is scale 1/255,
         zero point 0: read `get_input_details()[0]["quantization"]`,
         `quantize_input` does).
  output `codes` (one layer sent: HQA, VQ-VAE) or `codes_layer_l` (several:
         an RRVQ-VAE's layers l..L): int32 [1, h, w], the most probable codes
         (the SavedModel's `encode`).

Variants (the TensorFlow Model Garden menu):
  float32  no quantisation.
  float16  float16 weights (dequantised at load on CPU).
  dynamic  int8 weights, float activations (dynamic-range quantisation).
  int8     full-integer: int8 convolutions (per-channel weights, int8
           activations calibrated on training images), uint8 pixels in.

How the quantised variants keep the float model's codes
-------------------------------------------------------
A code is an argmax over K close scores (HQA eq. 3 with the distances of
VQ-VAE eq. 1; RRVQ eq. 6-7), so a small error in z_e, or scores rounded to
int8, picks a neighbouring code. Three things, all generic over the model's
encoder graph (the exporter never asks for the model's class):

1. The code decision is taken in float. Every op between the last
   convolution and an ARG_MAX / ARG_MIN (the distance product and its
   terms, `_decision_ops`) keeps float32 weights and activations: the int8
   file dequantises z_e before the distance product, the float16 and
   dynamic files keep the codebook in float32.
2. int8 calibration images are drawn from the training split so that they
   cover every code the float encoder gives on it (`covering_subset`).
3. Mixed precision per op (`_search`): the file is checked against the float
   encoder's codes on held-out training images (never the test split), at
   least `MIN_CHECK_POSITIONS` code positions of them: an encoder with 1x1
   codes gets one position per image, and 300 positions measure a 99%
   agreement only to +-0.6%. While the agreement is below `min_agreement`
   (default `MIN_AGREEMENT`), weighted ops (a convolution with its
   activation ops) are kept in float, the most harmful first: each one's
   harm is measured by quantising it alone. The convolutions of a stacked
   encoder amplify each other's rounding errors, so which ones matter is
   measured, not guessed. Ops whose weights the converter left float (too
   small to quantise) are no candidates.

The result's `float_ops` lists the ops kept in float. Conversion goes through
a Keras `ExportArchive` SavedModel (frozen variables) and fails fast, with the
converter's error, if an op is not a TFLite builtin. Run the files with
`ai_edge_litert.interpreter.Interpreter` (`run_encoder`).
"""

import dataclasses
import os
import tempfile
import time
from typing import Tuple

import keras
import numpy as np
import tensorflow as tf

from tfvq.export import tf_private
from tfvq.images import as_float32, fixed_size_batch

VARIANTS = ("float32", "float16", "dynamic", "int8")
MIN_AGREEMENT = {"float32": None, "float16": 0.998, "dynamic": 0.998, "int8": 0.98}
"""Default agreement with the float encoder, on held-out training images, that the search keeps ops float for."""
MIN_CHECK_POSITIONS = 1000
"""Code positions the search checks at least (images permitting). The agreement measured on n positions
has a standard error of sqrt(p (1 - p) / n): 0.57% at p = 0.99 on the 300 positions of 300 images with
1x1 codes, more than the 0.2% slack of the float16 / dynamic targets; 0.31% on 1000."""

_DECISION = ("ARG_MAX", "ARG_MIN")
_CONVOLUTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "CONV_3D")
_WEIGHTED = _CONVOLUTIONS + ("FULLY_CONNECTED", "BATCH_MATMUL")


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


def _float_images(images, image_shape, name):
    """Checked images (`tfvq.images.fixed_size_batch`) as float32 [N, H, W, C] in [0, 1]."""
    return as_float32(fixed_size_batch(images, image_shape, name))


def reference_codes(model, layer, images, batch_size=256):
    """The float encoder's codes `{output name: int32 [N, h, w]}` (`model.tflite_encoder(layer)`, run eagerly)."""
    fn = model.tflite_encoder(layer)
    out = {}
    for i in range(0, len(images), batch_size):
        for k, v in fn(tf.constant(images[i:i + batch_size])).items():
            out.setdefault(k, []).append(np.asarray(v))
    return {k: np.concatenate(v) for k, v in out.items()}


def covering_subset(codes, count):
    """Indices of at most `count` images whose codes cover every code seen in `codes`, then the next ones.

    Args:
      codes: {name: int [N, h, w]} (`reference_codes`).
      count: the number of indices wanted.

    Greedy: an image is taken when it brings a (name, code) pair not yet
    covered, in order; the remaining slots take the first images not taken.
    """
    n = len(next(iter(codes.values())))
    seen, chosen = set(), []
    for i in range(n):
        new = {(k, int(c)) for k, v in codes.items() for c in np.unique(v[i])} - seen
        if new and len(chosen) < count:
            chosen.append(i)
            seen |= new
    rest = [i for i in range(n) if i not in set(chosen)]
    return chosen + rest[:max(count - len(chosen), 0)]


# ------------------------------------------------------------------------------ graph of a .tflite file
def _flatbuffers():
    return tf_private.flatbuffer_utils()


def _ops(content):
    """[(op name, [input tensor ids], [output tensor ids], first output's name)] of subgraph 0, in order."""
    fu = _flatbuffers()
    m = fu.read_model_from_bytearray(bytearray(content))
    sg = m.subgraphs[0]
    out = []
    for op in sg.operators:
        code = m.operatorCodes[op.opcodeIndex]
        name = fu.opcode_to_name(m, op.opcodeIndex) if code is not None else "?"
        outputs = [int(i) for i in op.outputs]
        out.append((name, [int(i) for i in op.inputs if i >= 0], outputs, sg.tensors[outputs[0]].name.decode()))
    return out


def _decision_ops(ops):
    """Indices of the ops of the code decision: back from each ARG_MAX / ARG_MIN up to the last convolutions."""
    producer = {t: i for i, (_, _, outs, _) in enumerate(ops) for t in outs}
    todo = [i for i, op in enumerate(ops) if op[0] in _DECISION]
    found = set()
    while todo:
        i = todo.pop()
        if i in found or ops[i][0] in _CONVOLUTIONS:
            continue
        found.add(i)
        todo.extend(producer[t] for t in ops[i][1] if t in producer)
    return found


def _quantised_ops(content):
    """Indices of the ops of subgraph 0 with a quantised constant input: int8 (dynamic range) or a float16
    constant through a DEQUANTIZE."""
    fu = _flatbuffers()
    m = fu.read_model_from_bytearray(bytearray(content))
    sg = m.subgraphs[0]
    types = fu.schema_fb.TensorType

    def constant(t):
        return m.buffers[sg.tensors[t].buffer].data is not None

    float16 = {int(op.outputs[0]) for op in sg.operators
               if fu.opcode_to_name(m, op.opcodeIndex) == "DEQUANTIZE" and constant(int(op.inputs[0]))
               and sg.tensors[int(op.inputs[0])].type == types.FLOAT16}
    quantised = set()
    for index, op in enumerate(sg.operators):
        inputs = [int(i) for i in op.inputs if i >= 0]
        if any(t in float16 or (sg.tensors[t].type == types.INT8 and constant(t)) for t in inputs):
            quantised.add(index)
    return quantised


def _units(ops, decision):
    """Groups of op indices: each weighted op outside the decision with the unweighted ops that follow it."""
    units, current = [], None
    for i, (name, _, _, _) in enumerate(ops):
        if i in decision or name in ("QUANTIZE", "DEQUANTIZE"):
            continue
        if name in _WEIGHTED:
            current = [i]
            units.append(current)
        elif current is not None:
            current.append(i)
    return units


def _restore_float(content, float_content, op_indices):
    """`content` (a float16 or dynamic file) with the weights of ops `op_indices` back in float32.

    The weights come from `float_content` (the float32 file of the same
    encoder), matched by tensor name: an int8 weight (dynamic range) becomes
    float32 again, and a float16 weight's DEQUANTIZE is replaced by the float32
    constant.
    """
    fu = _flatbuffers()
    f = fu.read_model_from_bytearray(bytearray(float_content))
    fsg = f.subgraphs[0]
    floats = {t.name: t for t in fsg.tensors if f.buffers[t.buffer].data is not None}
    m = fu.read_model_from_bytearray(bytearray(content))
    sg = m.subgraphs[0]
    producer = {int(o): op for op in sg.operators for o in op.outputs}

    def source_of(tensor_id, name):
        t = sg.tensors[tensor_id]
        src = floats.get(name)
        if src is not None and list(src.shape) == list(t.shape):
            return src
        if t.type == fu.schema_fb.TensorType.FLOAT16:  # constants renamed by the converter: match by value
            data = np.frombuffer(np.asarray(m.buffers[t.buffer].data, np.uint8).tobytes(), np.float16)
            for cand in fsg.tensors:
                if cand.type == fu.schema_fb.TensorType.FLOAT32 and list(cand.shape) == list(t.shape) \
                        and f.buffers[cand.buffer].data is not None:
                    values = np.frombuffer(np.asarray(f.buffers[cand.buffer].data, np.uint8).tobytes(), np.float32)
                    if values.shape == data.shape and np.array_equal(values.astype(np.float16), data):
                        return cand
        if t.type == fu.schema_fb.TensorType.INT8 and t.quantization is not None \
                and t.quantization.scale is not None:  # a dynamic-range weight renamed: match its quantisation
            data = np.frombuffer(np.asarray(m.buffers[t.buffer].data, np.uint8).tobytes(), np.int8)
            data = data.reshape(list(t.shape))
            scale = np.asarray(t.quantization.scale, np.float64)
            axis = int(t.quantization.quantizedDimension or 0)
            if scale.size > 1:
                scale = scale.reshape([-1 if d == axis else 1 for d in range(data.ndim)])
            for cand in fsg.tensors:
                if cand.type == fu.schema_fb.TensorType.FLOAT32 and list(cand.shape) == list(t.shape) \
                        and f.buffers[cand.buffer].data is not None:
                    values = np.frombuffer(np.asarray(f.buffers[cand.buffer].data, np.uint8).tobytes(),
                                           np.float32).reshape(data.shape)
                    if np.array_equal(np.clip(np.round(values / scale), -127, 127).astype(np.int8), data):
                        return cand
        raise ValueError(f"cannot restore the float32 weight {name.decode()!r}: it is not in the float32 file with "
                         "the same shape. Pass the float32 file of the same encoder.")

    def constant(tensor_id, source):
        t = sg.tensors[tensor_id]
        buffer = type(m.buffers[0])()
        buffer.data = np.array(f.buffers[source.buffer].data, dtype=np.uint8)
        m.buffers.append(buffer)
        t.buffer, t.type, t.quantization = len(m.buffers) - 1, fu.schema_fb.TensorType.FLOAT32, None

    removed = set()
    for index in op_indices:
        op = sg.operators[index]
        for tid in (int(i) for i in op.inputs if i >= 0):
            t = sg.tensors[tid]
            if t.type == fu.schema_fb.TensorType.INT8 and m.buffers[t.buffer].data is not None:
                constant(tid, source_of(tid, t.name))
            elif tid in producer and fu.opcode_to_name(m, producer[tid].opcodeIndex) == "DEQUANTIZE":
                source = sg.tensors[int(producer[tid].inputs[0])]
                if source.type == fu.schema_fb.TensorType.FLOAT16 and m.buffers[source.buffer].data is not None:
                    constant(tid, source_of(int(producer[tid].inputs[0]), source.name))
                    removed.add(id(producer[tid]))
    sg.operators = [op for op in sg.operators if id(op) not in removed]
    used = {int(i) for op in sg.operators for i in list(op.inputs) + list(op.outputs) if i >= 0}
    used |= {int(i) for i in list(sg.inputs) + list(sg.outputs)}
    live = {sg.tensors[i].buffer for i in used} | {md.buffer for md in (m.metadata or [])}
    for b in range(1, len(m.buffers)):  # weights replaced above: drop their int8 / float16 data
        if b not in live:
            m.buffers[b].data = None
    return bytes(fu.convert_object_to_bytearray(m))


# ------------------------------------------------------------------------------ conversion
@dataclasses.dataclass
class Conversion:
    """A converted encoder.

    Attributes:
      content: the `.tflite` bytes.
      variant: one of `VARIANTS`.
      float_ops: names (first output tensor) of the weighted ops kept in float
        by the mixed-precision search, the code decision's ops excluded.
      check_agreement: agreement with the float encoder's codes on the held-out
        training images (min over the outputs), or None when none were given.
      num_calibration: images that calibrated int8 (0 for the other variants).
    """

    content: bytes
    variant: str
    float_ops: Tuple[str, ...] = ()
    check_agreement: float = None
    num_calibration: int = 0


class _Encoder:
    """One encoder (model, layer) written once as a SavedModel; converts it to every variant."""

    def __init__(self, model, layer):
        self.model = model
        self.layer = check_model(model).check_layer(layer)
        self._tmp = tempfile.TemporaryDirectory()
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "encode",
            tf.function(model.tflite_encoder(self.layer), autograph=False),
            [tf.TensorSpec((1,) + tuple(model.image_shape), tf.float32, name="images")],
        )
        archive.write_out(self._tmp.name, verbose=False)
        self._float32 = None

    def close(self):
        self._tmp.cleanup()

    def converter(self):
        converter = tf.lite.TFLiteConverter.from_saved_model(self._tmp.name, signature_keys=["encode"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter

    def float32(self):
        if self._float32 is None:
            self._float32 = self.converter().convert()
        return self._float32

    def plain(self, variant):
        """The converter's own file for float16 / dynamic."""
        converter = self.converter()
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if variant == "float16":
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()

    def calibrated(self, images):
        """A float file carrying the calibration statistics of `images` (TFLite's calibrate-only step)."""
        converter = self.converter()
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ({"images": image[None]} for image in images)
        converter.experimental_new_quantizer = True
        tf_private.set_calibrate_only(converter)
        return converter.convert()


def _full_integer(calibrated, float_names):
    """Full-integer int8 (per-channel weights, uint8 input) of a calibrated file; ops `float_names` stay float."""
    content = tf_private.mlir_quantize(calibrated, disable_per_channel=False, fully_quantize=False,
                                       input_data_type=tf.uint8, output_data_type=tf.float32,
                                       denylisted_nodes=sorted(float_names) or None)
    # The quantiser leaves a float input and its QUANTIZE to int8 (scale 1/255, zero point -128); the file
    # takes uint8 pixels (zero point 0) instead, as the converter's `inference_input_type` does.
    return _uint8_input(tf_private.modify_model_io_type(content, inference_input_type=tf.uint8))


def _uint8_input(content):
    """`content` with uint8 pixels in (scale 1/255, zero point 0) where its input is still float32.

    When the ops that read the images stay float (`_search`), the quantiser
    leaves a float32 input; a DEQUANTIZE of the uint8 pixels gives the same
    floats exactly (p / 255), so the file keeps the int8 variant's interface.
    """
    fu = _flatbuffers()
    m = fu.read_model_from_bytearray(bytearray(content))
    sg = m.subgraphs[0]
    floats = [k for k, i in enumerate(sg.inputs) if sg.tensors[i].type == fu.schema_fb.TensorType.FLOAT32]
    if not floats:
        return content
    codes = [k for k in range(len(m.operatorCodes)) if fu.opcode_to_name(m, k) == "DEQUANTIZE"]
    if codes:
        opcode = codes[0]
    else:
        code = fu.schema_fb.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = fu.schema_fb.BuiltinOperator.DEQUANTIZE
        code.version = 1
        m.operatorCodes.append(code)
        opcode = len(m.operatorCodes) - 1
    for k in floats:
        old = sg.tensors[sg.inputs[k]]
        new = fu.schema_fb.TensorT()
        new.shape, new.shapeSignature, new.name = old.shape, old.shapeSignature, old.name
        new.type, new.buffer = fu.schema_fb.TensorType.UINT8, 0
        new.quantization = fu.schema_fb.QuantizationParametersT()
        new.quantization.scale = np.array([1.0 / 255.0], np.float32)
        new.quantization.zeroPoint = np.array([0], np.int64)
        sg.tensors.append(new)
        index, previous = len(sg.tensors) - 1, int(sg.inputs[k])
        op = fu.schema_fb.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = opcode, np.array([index], np.int32), np.array([previous], np.int32)
        sg.operators.insert(0, op)
        sg.inputs[k] = index
        for signature in m.signatureDefs or []:
            for io in signature.inputs:
                if io.tensorIndex == previous:
                    io.tensorIndex = index
    return bytes(fu.convert_object_to_bytearray(m))


def _agreement(content, images, reference):
    codes, _ = run_encoder(interpreter(content), images)
    codes = codes if isinstance(codes, dict) else {"codes": codes}
    if sorted(codes) != sorted(reference):
        raise ValueError(f"the TFLite encoder's outputs {sorted(codes)} are not the model's {sorted(reference)}.")
    return min(float(np.mean(codes[k] == reference[k])) for k in reference)


def _search(build, ops, decision, images, reference, min_agreement, quantised=None):
    """Mixed precision by measured sensitivity: the fewest units kept float, most harmful first, for `min_agreement`.

    `build(set of op indices kept float)` gives the file. `quantised(op
    index)` tells whether an op has quantised weights (default: all have):
    a unit whose weighted op is float already (a float16 / dynamic weight
    too small for the converter to quantise) is no candidate, since keeping
    it float changes nothing.

    1. Sensitivity: the agreement of the file with only unit u quantised
       (every other candidate float), for each u -- one file per unit. The
       one-at-a-time view, not the marginal gain over the fully quantised
       file: with every unit int8 the stacked errors leave the agreement near
       zero (about 3% at `hqa_digits` layer 5), where restoring any single
       unit barely shows.
    2. The units, most harmful first, are kept float by the shortest prefix
       that reaches `min_agreement`, found by bisection (a longer prefix
       quantises a subset of a shorter one's ops); the full prefix is the
       float graph.
    About U + log2(U) files instead of the U^2 / 2 of a greedy search.
    Returns (content, float unit indices, agreement).
    """
    units = _units(ops, decision)
    candidates = [u for u, unit in enumerate(units) if quantised is None or quantised(unit[0])]

    def trial(float_units):
        content = build(decision.union(*(units[u] for u in float_units)))
        return content, _agreement(content, images, reference)

    content, agreement = trial(())
    if agreement >= min_agreement or not candidates:
        return content, [], agreement
    sensitivity = {u: trial([v for v in candidates if v != u])[1] for u in candidates}
    order = sorted(candidates, key=lambda u: (sensitivity[u], u))
    results = {len(order): trial(order)}
    lo, hi = 0, len(order)  # the prefix of length lo misses the target, that of length hi reaches it (or is all)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        results[mid] = trial(order[:mid])
        if results[mid][1] >= min_agreement:
            hi = mid
        else:
            lo = mid
    content, agreement = results[hi]
    return content, sorted(order[:hi]), agreement


def convert(model, layer=None, variant="float32", representative_images=None, num_calibration=200,
            num_check=300, min_agreement=None, min_check_positions=MIN_CHECK_POSITIONS, _encoder=None):
    """The encoder of layer `layer` in `variant`, with its mixed-precision report (`Conversion`).

    Args:
      model: a discrete tfvq model.
      layer: a layer of `model.code_layout()` (default: its default layer).
      variant: "float32", "float16", "dynamic" or "int8".
      representative_images: training images, uint8 or float in [0, 1]
        [N, H, W, C] (e.g. `tfvq.data.load_numpy(dataset, "train")`); required
        for "int8". The first `num_calibration` of a covering subset calibrate
        int8, and up to `num_check` of the others check the quantised
        variants' codes. Never pass the test split: it is what agreement is
        reported on.
      num_calibration: images that calibrate int8.
      num_check: held-out images that check the codes (0: no search).
      min_check_positions: more held-out images check the codes, when there
        are, until they hold this many code positions (of the output with
        the fewest): an encoder with 1x1 codes gets one position per image.
      min_agreement: the search's target (default `MIN_AGREEMENT[variant]`);
        0 turns the search off (only the code decision stays float).

    Raises:
      TypeError: a model without discrete codes (e.g. a Spatial-VAE).
      ValueError: unknown variant or layer, "int8" without representative
        images, or images of the wrong shape.
      tf.lite / converter errors: an op that is not a TFLite builtin.
    """
    layout = check_model(model)
    layer = layout.check_layer(layer)
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}.")
    if variant == "int8" and representative_images is None:
        raise ValueError("the int8 variant needs representative_images (training images, uint8 or floats in "
                         "[0, 1]) to calibrate, e.g. tfvq.data.load_numpy(dataset, 'train').")
    images = None
    if representative_images is not None:
        images = _float_images(representative_images, model.image_shape, "representative_images")
    encoder = _encoder or _Encoder(model, layer)
    try:
        if variant == "float32":
            return Conversion(encoder.float32(), variant)
        target = MIN_AGREEMENT[variant] if min_agreement is None else float(min_agreement)
        calibration, check, reference = images, None, None
        if images is not None:
            codes = reference_codes(model, layer, images)
            order = covering_subset(codes, len(images))
            n_cal = min(num_calibration, len(images)) if variant == "int8" else 0
            per_image = min(int(np.prod(v.shape[1:])) for v in codes.values())
            n_check = max(num_check, -(-int(min_check_positions) // per_image)) if num_check else 0
            cal_idx, check_idx = order[:n_cal], order[n_cal:n_cal + n_check]
            calibration = images[cal_idx]
            if check_idx:
                check = images[check_idx]
                reference = {k: v[check_idx] for k, v in codes.items()}
        if variant == "int8":
            calibrated = encoder.calibrated(calibration)
            ops = _ops(calibrated)
            names = [op[3] for op in ops]

            def build(indices):
                return _full_integer(calibrated, {names[i] for i in indices})
        else:
            plain = encoder.plain(variant)
            float32 = encoder.float32()
            ops = _ops(plain)
            names = [op[3] for op in ops]

            def build(indices):
                return _restore_float(plain, float32, indices)

        decision = _decision_ops(ops)
        if check is None or target <= 0:
            return Conversion(build(decision), variant, num_calibration=len(calibration) if variant == "int8" else 0)
        quantised = _quantised_ops(plain).__contains__ if variant != "int8" else None
        content, kept, agreement = _search(build, ops, decision, check, reference, target, quantised)
        units = _units(ops, decision)
        return Conversion(content, variant, tuple(names[units[u][0]] for u in kept), agreement,
                          len(calibration) if variant == "int8" else 0)
    finally:
        if _encoder is None:
            encoder.close()


def convert_encoder(model, layer=None, variant="float32", representative_images=None, num_calibration=200, **kwargs):
    """The `.tflite` bytes of the encoder of layer `layer` in one of `VARIANTS` (`convert(...).content`)."""
    return convert(model, layer, variant, representative_images, num_calibration, **kwargs).content


def _file_name(model_name, layer, variant):
    return f"{model_name}_encode_layer{layer}_{variant}.tflite"


def export_conversions(model, out_dir, model_name, layers=None, variants=VARIANTS, representative_images=None,
                       **kwargs):
    """Writes `out_dir/<model_name>_encode_layer<L>_<variant>.tflite`; returns {(layer, variant): (path, Conversion)}.

    Each layer's encoder is written as a SavedModel once for all variants.
    Keyword arguments go to `convert`.
    """
    layers = encoder_layers(model, layers)
    for variant in variants:
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}.")
    os.makedirs(out_dir, exist_ok=True)
    out = {}
    for layer in layers:
        encoder = _Encoder(model, layer)
        try:
            for variant in variants:
                conversion = convert(model, layer, variant, representative_images, _encoder=encoder, **kwargs)
                path = os.path.join(out_dir, _file_name(model_name, layer, variant))
                with open(path, "wb") as f:
                    f.write(conversion.content)
                out[(layer, variant)] = (path, conversion)
        finally:
            encoder.close()
    return out


def export_tflite(model, out_dir, model_name, layers=None, variants=VARIANTS, representative_images=None, **kwargs):
    """Writes `out_dir/<model_name>_encode_layer<L>_<variant>.tflite`; returns {(layer, variant): path}."""
    written = export_conversions(model, out_dir, model_name, layers, variants, representative_images, **kwargs)
    return {key: path for key, (path, _) in written.items()}


# ------------------------------------------------------------------------------ running
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
    """Images -> the dtype the interpreter's input wants: uint8 pixels pass to a uint8 input unchanged;
    floats in [0, 1] are quantised with the input's scale and zero point (uint8 pixels for int8)."""
    images = np.asarray(images)
    dtype = detail["dtype"]
    if images.dtype == np.uint8:
        scale, zero_point = detail["quantization"]
        if dtype == np.uint8 and zero_point == 0 and np.isclose(scale, 1 / 255):
            return images
        images = images.astype(np.float32) / 255.0
    images = images.astype(np.float32)
    if dtype == np.float32:
        return images
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(dtype)


def run_encoder(interp, images):
    """Codes int32 [N, h, w] of images [N, H, W, C] (uint8 pixels or floats in [0, 1]), one image per invoke.

    Returns (codes, milliseconds per image); for an encoder with several
    outputs (RRVQ-VAE), codes is {output name: int32 [N, h_l, w_l]}.

    Raises:
      ValueError: images that are not [N, H, W, C] of the file's input size.
    """
    runner = interp.get_signature_runner("encode")
    detail = runner.get_input_details()["images"]
    want = tuple(int(d) for d in detail["shape"][1:])
    images = fixed_size_batch(images, want, "images",
                              context=f": this encoder was exported for {'x'.join(map(str, want))} images")
    codes = []
    start = time.perf_counter()
    for image in images:
        codes.append(runner(images=quantize_input(image[None], detail)))
    ms = 1000.0 * (time.perf_counter() - start) / max(len(images), 1)
    names = sorted(runner.get_output_details())
    stacked = {k: np.stack([c[k][0] for c in codes]).astype(np.int32) for k in names}
    return (stacked["codes"] if names == ["codes"] else stacked), ms


def _in_layer_order(codes, layout, layer):
    """A model's `encode` codes from a {name: codes} dict: one array, or a list for the layers sent."""
    if isinstance(codes, dict) and sorted(codes) != ["codes"]:
        return [codes[f"codes_layer_{l}"] for l in layout.layers_sent(layer)]
    return codes["codes"] if isinstance(codes, dict) else codes


def decoded_mse(model, layer, images, codes):
    """Mean squared error, in [0, 1] pixel units, of `model.decode(codes, layer)` against `images`."""
    x = _float_images(images, model.image_shape, "images")
    out = []
    codes = _in_layer_order(codes, check_model(model), layer)
    for i in range(0, len(x), 256):
        part = [c[i:i + 256] for c in codes] if isinstance(codes, list) else codes[i:i + 256]
        decoded = np.asarray(model.decode(part, layer), np.float32)
        out.append(np.sum((decoded - x[i:i + 256]) ** 2))
    return float(np.sum(out) / x.size)


def agreement_table(model, layers, saved_model_path, test_images, representative_images, out_dir,
                    model_name="model", variants=VARIANTS, num_threads=1, **kwargs):
    """Per (layer, variant): file size, ms per image, the fraction of codes equal to the SavedModel's
    `encode[_layer_L]` on `test_images` (overall and per output: `agreement_by_output`), and the rise of
    the MSE of the images decoded from the file's codes over that of the images decoded from the
    SavedModel's codes (`mse_rise`, 0.05 = 5% worse). Returns a list of dict rows."""
    loaded = tf.saved_model.load(saved_model_path)
    layers = encoder_layers(model, layers)
    layout = check_model(model)
    pixels = np.asarray(test_images)
    if pixels.dtype != np.uint8:
        pixels = np.round(np.clip(pixels.astype(np.float32), 0, 1) * 255).astype(np.uint8)
    written = export_conversions(model, out_dir, model_name, layers, variants, representative_images, **kwargs)
    rows = []
    for layer in layers:
        name = f"encode_layer_{layer}" if f"encode_layer_{layer}" in loaded.signatures else "encode"
        reference = {k: v.numpy() for k, v in loaded.signatures[name](images=tf.constant(pixels)).items()}
        reference_mse = decoded_mse(model, layer, pixels, _in_layer_order(reference, layout, layer))
        for variant in variants:
            path, conversion = written[(layer, variant)]
            codes, ms = run_encoder(interpreter(path, num_threads), pixels)
            codes = codes if isinstance(codes, dict) else {"codes": codes}
            by_output = {k: float(np.mean(codes[k] == reference[k])) for k in sorted(codes)}
            equal = sum(int(np.sum(codes[k] == reference[k])) for k in codes)
            total = sum(codes[k].size for k in codes)
            mse = decoded_mse(model, layer, pixels, _in_layer_order(codes, layout, layer))
            rows.append({"layer": layer, "variant": variant, "bytes": os.path.getsize(path), "ms_per_image": ms,
                         "agreement": equal / total, "agreement_by_output": by_output,
                         "min_agreement": min(by_output.values()), "mse": mse, "reference_mse": reference_mse,
                         "mse_rise": mse / reference_mse - 1.0 if reference_mse > 0 else 0.0,
                         "float_ops": conversion.float_ops, "path": path})
    return rows


def format_table(rows):
    lines = [f"{'layer':>5s} {'variant':>8s} {'size (KiB)':>10s} {'ms/image':>9s} {'codes equal':>11s} "
             f"{'worst layer':>11s} {'MSE rise':>8s} {'float ops':>9s}"]
    for r in rows:
        lines.append(f"{str(r['layer']):>5s} {r['variant']:>8s} {r['bytes'] / 1024:10.1f} {r['ms_per_image']:9.3f} "
                     f"{r['agreement']:11.4f} {r.get('min_agreement', r['agreement']):11.4f} "
                     f"{100 * r.get('mse_rise', 0.0):7.2f}% {len(r.get('float_ops', ())):9d}")
    return "\n".join(lines)
