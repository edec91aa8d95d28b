"""A `.keras` file saved by an older tfvq still loads and gives the outputs it gave then.

`data/quantizers_2026.keras` was written when every VQ-family layer lived in `tfvq/layers/quantizers.py`
(its config names that module); the layers load by their registered Keras names (`tfvq>VectorQuantizer`,
...), wherever their code lives today. See `data/README.md` for how the files were made.
"""

import pathlib

import keras
import numpy as np
import pytest

import tfvq.layers

DATA = pathlib.Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def saved():
    model = keras.saving.load_model(DATA / "quantizers_2026.keras")
    with np.load(DATA / "quantizers_2026.npz") as arrays:
        arrays = dict(arrays)
    inputs = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("input/")}
    outputs = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("output/")}
    return model, inputs, outputs


def test_layers_saved_from_the_old_module_load_as_todays_classes(saved):
    model, _, _ = saved
    kinds = {layer.name: type(layer) for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)}
    assert kinds == {
        "vq": tfvq.layers.VectorQuantizer,
        "vq_options": tfvq.layers.VectorQuantizer,
        "svq": tfvq.layers.StochasticVectorQuantizer,
        "rrvq": tfvq.layers.RelaxedResponsibilityQuantizer,
        "rvq": tfvq.layers.ResidualVectorQuantizer,
        "fsq": tfvq.layers.FiniteScalarQuantizer,
        "lfq": tfvq.layers.LookupFreeQuantizer,
    }


def test_old_keras_file_gives_the_outputs_it_gave_when_saved(saved):
    model, inputs, want = saved
    got = {k: np.asarray(v) for k, v in model(inputs).items()}
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        if value.dtype.kind == "i":
            np.testing.assert_array_equal(got[key], value, err_msg=key)
        else:
            np.testing.assert_allclose(got[key], value, rtol=1e-6, atol=1e-6, err_msg=key)
