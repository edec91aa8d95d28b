"""TFLite encoders of HQA: builtins only, the four variants run in LiteRT and agree with the SavedModel."""

import os

import numpy as np
import pytest

from tfvq import data, zoo
from tfvq.export import saved_model as sm
from tfvq.export import tflite

MODEL = "hqa_digits"
LAYER = 3


@pytest.fixture(scope="module")
def model():
    return zoo.load(MODEL, weights="bundled")


@pytest.fixture(scope="module")
def test_images():
    return data.load_numpy("digits", "test", limit=64)


@pytest.fixture(scope="module")
def table(model, test_images, tmp_path_factory):
    root = tmp_path_factory.mktemp("tflite")
    path = sm.export_saved_model(model, str(root), MODEL, layers=[LAYER])
    rep = data.load_numpy("digits", "train", limit=200)
    rows = tflite.agreement_table(model, [LAYER], path, test_images, rep, str(root / "tflite"), MODEL)
    return {r["variant"]: r for r in rows}


def test_every_variant_is_written_runs_and_agrees_with_the_saved_model(table):
    assert sorted(table) == sorted(tflite.VARIANTS)
    for variant, row in table.items():
        assert os.path.getsize(row["path"]) == row["bytes"] > 0
        assert row["path"].endswith(f"{MODEL}_encode_layer{LAYER}_{variant}.tflite")
        assert row["ms_per_image"] > 0
    assert table["float32"]["agreement"] >= 0.999
    assert table["float16"]["agreement"] >= 0.95
    assert table["dynamic"]["agreement"] >= 0.8
    assert table["int8"]["agreement"] >= 0.2  # full-integer: reported, see the export report
    assert table["float16"]["bytes"] < table["float32"]["bytes"]
    assert table["dynamic"]["bytes"] < table["float16"]["bytes"]
    print("\n" + tflite.format_table(table.values()))


def test_signature_contract_in_litert(table, model):
    for variant, row in table.items():
        runner = tflite.interpreter(row["path"]).get_signature_runner("encode")
        inp = runner.get_input_details()["images"]
        out = runner.get_output_details()["codes"]
        assert list(inp["shape"]) == [1, 32, 32, 1]
        assert inp["dtype"] == (np.uint8 if variant == "int8" else np.float32)
        assert out["dtype"] == np.int32 and list(out["shape"]) == [1, *model.code_shape(LAYER)]
    scale, zero_point = tflite.interpreter(table["int8"]["path"]).get_input_details()[0]["quantization"]
    assert zero_point == 0 and scale == pytest.approx(1 / 255)


def test_only_builtin_ops(table):
    from ai_edge_litert.interpreter import Interpreter

    for row in table.values():
        interp = Interpreter(model_path=row["path"])
        ops = {d["op_name"] for d in interp._get_ops_details()}
        assert "ARG_MAX" in ops
        assert not any(op.startswith(("FlexDelegate", "Flex", "CUSTOM")) or op == "DELEGATE" for op in ops), ops


def test_bad_inputs_give_clear_errors(table, model):
    interp = tflite.interpreter(table["float32"]["path"])
    with pytest.raises(ValueError, match=r"images must be \[N, 32, 32, 1\]"):
        tflite.run_encoder(interp, np.zeros((1, 28, 28, 1), np.float32))
    with pytest.raises(ValueError, match="variant must be one of"):
        tflite.convert_encoder(model, LAYER, "int4")
    with pytest.raises(ValueError, match="representative_images"):
        tflite.convert_encoder(model, LAYER, "int8")
    with pytest.raises(ValueError, match="layer must be an integer"):
        tflite.convert_encoder(model, 9)
    with pytest.raises(ValueError, match="layer must be an integer"):
        model.tflite_encoder(0)
