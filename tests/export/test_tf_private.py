"""The private TensorFlow / TFLite internals tfvq uses live in one adapter, and each one still exists.

When a TensorFlow upgrade removes or renames one, `test_every_internal_is_there` fails with a message
naming it (module and attribute), what tfvq uses it for, and the adapter file to change.
"""

import pathlib
import re

import pytest

import tfvq
from tfvq.export import tf_private

PACKAGE = pathlib.Path(tfvq.__file__).resolve().parent


@pytest.mark.parametrize("name", sorted(tf_private.INTERNALS))
def test_every_internal_is_there(name):
    try:
        found = tf_private.internal(name)
        if name == "calibrate_only":
            tf_private.set_calibrate_only(tf_private._probe_converter())  # pylint: disable=protected-access
    except tf_private.MissingInternalError as err:
        pytest.fail(str(err))
    assert found is not None and (callable(found) or name == "flatbuffer_utils")


def test_a_missing_internal_is_named_plainly(monkeypatch):
    monkeypatch.setitem(tf_private.INTERNALS, "mlir_quantize",
                        ("tensorflow.lite.python.convert", "no_such_quantizer", "a test"))
    with pytest.raises(tf_private.MissingInternalError,
                       match=r"has no tensorflow\.lite\.python\.convert\.no_such_quantizer .*tf_private\.py"):
        tf_private.mlir_quantize(b"")
    assert any("no_such_quantizer" in m for m in tf_private.missing_internals())


def test_setting_a_removed_converter_attribute_fails_instead_of_doing_nothing():
    class Converter:  # a converter of a TensorFlow without the calibrate-only switch
        pass

    with pytest.raises(tf_private.MissingInternalError, match="_experimental_calibrate_only"):
        tf_private.set_calibrate_only(Converter())


def test_no_other_module_reaches_into_private_tensorflow_or_keras():
    private = re.compile(r"tensorflow\.python|tensorflow\.lite\.python|tensorflow\.lite\.tools|keras\.src"
                         r"|\bconverter\._|from tensorflow\.lite import (python|tools)")
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "tf_private.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if private.search(line):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not offenders, "private TensorFlow internals outside tfvq/export/tf_private.py:\n" + "\n".join(offenders)
