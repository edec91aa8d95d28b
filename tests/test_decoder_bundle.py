"""A TFLite decoder bundle on disk (`tfvq.decoder_bundle`): signature and input names, the folder a bundle lives
in beside its weights, and the manifest written, read back and refused."""

import hashlib
import json
import os

import pytest

from tfvq import decoder_bundle as bundle

ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
"""SHA-256 of b"abc" (FIPS 180-2, appendix B.1)."""


def test_signatures_and_inputs_are_named_per_layer():
    assert [bundle.signature(kind, 2) for kind in bundle.KINDS] == [
        "decode_layer_2", "code_logits_layer_2", "pixel_likelihood_layer_2"]
    assert bundle.signature("decode", "3") == "decode_layer_3" and bundle.code_input(1) == "codes_layer_1"
    assert [bundle.signature(kind, 4) for kind in bundle.ENCODER_KINDS] == ["encode_layer_4", "encode_biased_layer_4"]
    with pytest.raises(ValueError, match=r"^kind must be one of \('decode', 'code_logits', 'pixel_likelihood'.*\), "
                                         r"got 'reconstruct'\.$"):
        bundle.signature("reconstruct", 1)


def test_a_files_sha256_is_that_of_its_bytes(tmp_path):
    path = tmp_path / "abc.bin"
    path.write_bytes(b"abc")
    assert bundle.file_sha256(path) == ABC_SHA256
    big = bytes(range(256)) * 5000  # more than one block of the reader
    path.write_bytes(big)
    assert bundle.file_sha256(path) == hashlib.sha256(big).hexdigest()


@pytest.mark.parametrize("name,stem", [("hqa.weights.h5", "hqa"), ("model.keras", "model"),
                                       ("a.b.weights.h5", "a.b"), ("weights.bin", "weights.bin")])
def test_the_weights_stem_drops_the_weights_suffix(name, stem):
    assert bundle.weights_stem(os.path.join("some", "folder", name)) == stem


def test_a_bundle_lives_beside_its_weights_named_by_their_digest(tmp_path):
    weights = tmp_path / "model.weights.h5"
    weights.write_bytes(b"abc")
    assert bundle.bundle_dir(weights) == str(tmp_path / f"model.decoders-{ABC_SHA256[:16]}")
    assert bundle.bundle_dir(str(weights), sha256="0123456789abcdef0123") == str(
        tmp_path / "model.decoders-0123456789abcdef")
    weights.write_bytes(b"abd")  # other weights in the same place: another folder
    assert bundle.bundle_dir(weights) != str(tmp_path / f"model.decoders-{ABC_SHA256[:16]}")


def test_a_manifest_round_trips_and_names_its_files_relative_to_its_folder(tmp_path):
    facts = {"model": "hqa_digits", "image_shape": [32, 32, 1], "files": {"float32": "decoders_float32.tflite"},
             "top_code_logits": None}
    path = bundle.write_manifest(str(tmp_path), facts)
    assert path == str(tmp_path / bundle.MANIFEST)
    assert json.loads((tmp_path / bundle.MANIFEST).read_text()) == {"format": bundle.FORMAT, **facts}
    for where in (path, str(tmp_path)):  # the file, or the folder holding it
        manifest = bundle.read_manifest(where)
        assert manifest == {"format": bundle.FORMAT, **facts, "path": path}
    assert bundle.resolve(manifest, "decoders_float32.tflite") == str(tmp_path / "decoders_float32.tflite")
    assert bundle.resolve(manifest, os.path.join("..", "prior.json")) == str(tmp_path.parent / "prior.json")
    assert bundle.resolve(manifest, None) is None
    other = bundle.write_manifest(str(tmp_path), {"model": "x"}, name="x_decoder.json")
    assert bundle.read_manifest(other)["model"] == "x"


@pytest.mark.parametrize("text,message", [(None, "is not a TFLite decoder manifest: "),
                                          ("{not json", "is not a TFLite decoder manifest: "),
                                          ("[1, 2]", "is not a TFLite decoder manifest of format 1"),
                                          ('{"format": 2}', "is not a TFLite decoder manifest of format 1"),
                                          ('{"model": "hqa_digits"}', "is not a TFLite decoder manifest of format 1")])
def test_what_is_not_a_manifest_of_this_format_is_refused(tmp_path, text, message):
    path = tmp_path / bundle.MANIFEST
    if text is not None:
        path.write_text(text)
    with pytest.raises(ValueError, match="^" + str(path) + " " + message):
        bundle.read_manifest(path)
