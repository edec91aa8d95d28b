"""TFLite encoders of today's quantizers (fsq_digits, lfq_digits, vq_digits, rvq_digits): the float32 file gives
the model's own codes, and int8 (uint8 pixels in, the code decision kept in float) meets its agreement target
(`tflite.MIN_AGREEMENT`) on test digits it never saw, at every rate of residual VQ."""

import numpy as np
import pytest

from tfvq import data, zoo
from tfvq.export import tflite

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits():
    """(the first 100 test digits as uint8 pixels, 1000 training digits to calibrate int8)."""
    test = np.round(data.load_numpy("digits", "test", limit=100) * 255).astype(np.uint8)
    return test, data.load_numpy("digits", "train", limit=1000)


def _file_codes(content, pixels, layout, layer):
    codes, _ = tflite.run_encoder(tflite.interpreter(content), pixels)
    if not isinstance(codes, dict):
        return [codes]
    return [codes[f"codes_layer_{l}"] for l in layout.layers_sent(layer)]  # encode's order: layer `layer` first


@pytest.mark.parametrize("name,layer,variant", [
    ("fsq_digits", 1, "int8"), ("lfq_digits", 1, "int8"), ("vq_digits", 1, "int8"),
    ("rvq_digits", 1, "int8"), ("rvq_digits", 4, "int8"), ("rvq_digits", 1, "float32")])
def test_the_encoder_file_gives_the_models_codes(digits, name, layer, variant):
    pixels, train = digits
    model = zoo.load(name, weights="bundled")
    conversion = tflite.convert(model, layer, variant, representative_images=train)
    got = _file_codes(conversion.content, pixels, model.code_layout(), layer)
    want = model.encode(pixels, layer)
    want = [c.numpy() for c in (want if isinstance(want, list) else [want])]
    assert len(got) == len(want) == len(model.code_layout().layers_sent(layer))
    for g, w in zip(got, want):
        assert g.dtype == np.int32 and g.shape == w.shape
        if variant == "float32":
            np.testing.assert_array_equal(g, w)
        else:
            assert np.mean(g == w) >= tflite.MIN_AGREEMENT[variant]
