"""The one place where tfvq reaches into TensorFlow's and TFLite's private modules, and why.

Everything else in tfvq uses public TensorFlow / Keras API and calls this
adapter for the few things the public API lacks. Each internal is looked up
when it is used (never at import of tfvq), by `internal(name)`; when a
TensorFlow upgrade removes or renames one, the call raises
`MissingInternalError` naming it, what tfvq uses it for and this file, and
`tests/export/test_tf_private.py` fails the same way for every one of them
(`missing_internals()`).

The internals (`INTERNALS`):

* `flatbuffer_utils` -- `tensorflow.lite.tools.flatbuffer_utils`: reads a
  `.tflite` file into the schema's object API and writes it back. The
  public `tf.lite.Interpreter` only runs a file; nothing public lists a
  file's ops with their tensors, nor edits one. The TFLite export reads the
  graph (which ops take the code decision, which weights were quantised)
  and rewrites it: float32 weights put back for ops kept float, a uint8
  input with a DEQUANTIZE where the quantiser left a float input.
* `mlir_quantize` -- `tensorflow.lite.python.convert.mlir_quantize`: the
  full-integer quantiser run on a calibrated file, with a deny-list of ops
  kept float. `tf.lite.TFLiteConverter` quantises only while converting and
  has no public deny-list by op name; the mixed-precision search converts
  once and quantises many times with different deny-lists.
* `modify_model_io_type` -- `tensorflow.lite.python.util.modify_model_io_type`:
  makes a quantised file take uint8 pixels. The public converter does it
  only as part of `convert()` (`inference_input_type`), not on a file.
* `calibrate_only` -- the converter attribute `_experimental_calibrate_only`:
  makes `TFLiteConverter.convert()` stop after calibration and return a
  float file carrying the calibration statistics, which `mlir_quantize`
  then quantises (see above). There is no public switch for it.
* `op_def_registry` -- `tensorflow.python.framework.op_def_registry.get`:
  whether an op name is a registered TensorFlow op, to prove that an
  exported SavedModel needs no custom op (and so runs in TF Serving).
  Public TensorFlow has no registry lookup.
"""

import importlib

INTERNALS = {
    "flatbuffer_utils": ("tensorflow.lite.tools.flatbuffer_utils", None,
                         "reading and rewriting .tflite files (no public API lists or edits a file's ops)"),
    "mlir_quantize": ("tensorflow.lite.python.convert", "mlir_quantize",
                      "int8 quantisation of a calibrated file with ops kept float (no public deny-list)"),
    "modify_model_io_type": ("tensorflow.lite.python.util", "modify_model_io_type",
                             "giving a quantised file a uint8 input (public only inside convert())"),
    "calibrate_only": ("tensorflow.lite.python.lite", "TFLiteConverterBase._experimental_calibrate_only",
                       "a calibrated float file from the converter (no public switch)"),
    "op_def_registry": ("tensorflow.python.framework.op_def_registry", "get",
                        "checking that a SavedModel's ops are registered TensorFlow ops (no public lookup)"),
}
"""name -> (module, attribute or None for the module itself, what tfvq uses it for)."""

_FLATBUFFER_NAMES = ("read_model_from_bytearray", "convert_object_to_bytearray", "opcode_to_name", "schema_fb")
"""The names of `flatbuffer_utils` the export uses."""


class MissingInternalError(ImportError):
    """A private TensorFlow / TFLite internal that tfvq needs is gone (a TensorFlow upgrade)."""


def _missing(name, detail):
    module, attribute, why = INTERNALS[name]
    where = module + (f".{attribute}" if attribute else "")
    import tensorflow as tf

    return MissingInternalError(
        f"TensorFlow {tf.__version__} has no {where} ({detail}), a private internal tfvq uses for {why}. "
        "tfvq/export/tf_private.py is the one place that uses it: adapt it to this TensorFlow, or install "
        "the TensorFlow version in setup.cfg.")


def _module(name):
    module = INTERNALS[name][0]
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise _missing(name, f"import failed: {err}") from None


def internal(name):
    """The internal `name` of `INTERNALS` (a module or a callable); `MissingInternalError` if it is gone.

    `calibrate_only` is checked on a converter instance (`set_calibrate_only`)
    since it is an instance attribute: here its class is returned.
    """
    module = _module(name)
    attribute = INTERNALS[name][1]
    if name == "flatbuffer_utils":
        absent = [n for n in _FLATBUFFER_NAMES if not hasattr(module, n)]
        if absent:
            raise _missing(name, f"it lacks {', '.join(absent)}")
        return module
    if name == "calibrate_only":
        cls = getattr(module, attribute.split(".")[0], None)
        if cls is None:
            raise _missing(name, "no converter base class")
        return cls
    value = getattr(module, attribute, None)
    if not callable(value):
        raise _missing(name, "not found" if value is None else "not callable")
    return value


def missing_internals():
    """The messages of every internal that is gone, [] when all are there (the test asserts [])."""
    out = []
    for name in INTERNALS:
        try:
            internal(name)
            if name == "calibrate_only":
                _check_calibrate_attribute(_probe_converter())
        except MissingInternalError as err:
            out.append(str(err))
    return out


def _probe_converter():
    import tensorflow as tf

    fn = tf.function(lambda x: x + 1.0, input_signature=[tf.TensorSpec([1], tf.float32)])
    return tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], None)


def _check_calibrate_attribute(converter):
    if not hasattr(converter, "_experimental_calibrate_only"):
        raise _missing("calibrate_only", f"{type(converter).__name__} has no such attribute")


# ------------------------------------------------------------------------------------ what the rest calls
def flatbuffer_utils():
    """`tensorflow.lite.tools.flatbuffer_utils` (read / write a .tflite file's object tree)."""
    return internal("flatbuffer_utils")


def mlir_quantize(content, **kwargs):
    """`tensorflow.lite.python.convert.mlir_quantize(content, **kwargs)`: bytes of the quantised file."""
    return internal("mlir_quantize")(content, **kwargs)


def modify_model_io_type(content, **kwargs):
    """`tensorflow.lite.python.util.modify_model_io_type(content, **kwargs)`: bytes of the file."""
    return internal("modify_model_io_type")(content, **kwargs)


def set_calibrate_only(converter):
    """Makes `converter.convert()` return a calibrated float file (the attribute checked to exist first:
    setting a removed attribute would silently give an uncalibrated file)."""
    internal("calibrate_only")
    _check_calibrate_attribute(converter)
    converter._experimental_calibrate_only = True  # pylint: disable=protected-access
    return converter


def is_registered_op(op_name):
    """True when `op_name` is a registered TensorFlow op (`op_def_registry.get`)."""
    return internal("op_def_registry")(op_name) is not None
