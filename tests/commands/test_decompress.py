"""Tests of tfvq.commands.decompress: `tfvq decompress`, `.tfvq` files (or directories of them) to PNG images."""

import argparse

import numpy as np
import pytest
import tensorflow as tf

from tfvq import cli, codec
from tfvq.commands import decompress


def test_decompress_writes_the_images_of_each_file(tmp_path, digit, start_tfvq):
    # Files made by the Python API, so the commands can run at the same time.
    hqa = codec.compress(digit, "hqa_digits", 4, coder="fixed")
    rrvq = codec.compress(digit, "rrvq_digits", coder="fixed")
    (tmp_path / "hqa.tfvq").write_bytes(hqa)
    (tmp_path / "rrvq.tfvq").write_bytes(rrvq)
    procs = {"hqa": start_tfvq(["decompress", "hqa.tfvq", "-o", "hqa.png", "--seed=3"], tmp_path),
             "rrvq": start_tfvq(["decompress", "rrvq.tfvq", "-o", "rrvq.png"], tmp_path)}
    for name, p in procs.items():
        code, _, err = p.result()
        assert code == 0, f"tfvq decompress {name}.tfvq failed: {err}"
    image = tf.io.decode_png(tf.io.read_file(str(tmp_path / "hqa.png"))).numpy()
    assert image.shape == (32, 32, 1)
    np.testing.assert_array_equal(image, codec.decompress(hqa, seed=3)[0])
    model = codec.load_model("rrvq_digits")[0]
    image = tf.io.decode_png(tf.io.read_file(str(tmp_path / "rrvq.png"))).numpy()
    np.testing.assert_array_equal(image[None], model.decode(model.encode(digit[None]), dtype="uint8").numpy())


def test_missing_and_corrupt_files_give_one_line_errors_and_no_image(tmp_path, start_tfvq, one_line_error):
    code, _, err = start_tfvq(["decompress", "nothere.tfvq"], tmp_path).result()
    assert "No such file" in one_line_error(code, err)
    (tmp_path / "bad.tfvq").write_bytes(b"TFVQ\x02\x0ahqa_digits" + b"\0" * 10)
    code, _, err = start_tfvq(["decompress", "bad.tfvq"], tmp_path).result()
    assert "Truncated" in one_line_error(code, err)
    assert not (tmp_path / "bad.png").exists()
    (tmp_path / "bad4.tfvq").write_bytes(b"TQ\x40\x0ahqa_digits")  # a version 4 header cut inside its name
    code, _, err = start_tfvq(["decompress", "bad4.tfvq"], tmp_path).result()
    assert "Truncated" in one_line_error(code, err)
    assert not (tmp_path / "bad4.png").exists()


def test_a_stream_that_does_not_give_its_crc_is_a_one_line_error(tmp_path, digit, capsys, one_line_error):
    out = tmp_path / "d.tfvq"
    data = bytearray(codec.compress(digit, "hqa_digits", 3, coder="fixed"))
    data[20] ^= 0xFF  # a byte of the stream (after the 18 bytes of header)
    out.write_bytes(bytes(data))
    assert cli.main(["decompress", str(out)]) == 1
    assert "does not match its CRC-32" in one_line_error(1, capsys.readouterr().err)
    data = bytearray(codec.compress(digit, "rrvq_digits", coder="fixed"))
    data[len(codec.read_header(bytes(data)).header) + 3] ^= 0xFF  # a byte of the stream
    out.write_bytes(bytes(data))
    assert cli.main(["decompress", str(out)]) == 1
    assert "does not match its CRC-32" in one_line_error(1, capsys.readouterr().err)
    # Version 4 checks its CRC after decoding: a file cut inside its stream is refused by decompress.
    out.write_bytes(bytes(data[:100]))
    assert cli.main(["decompress", str(out)]) == 1
    assert "CRC-32" in one_line_error(1, capsys.readouterr().err)
    assert not (tmp_path / "d.png").exists()


def test_a_file_of_several_images_gives_a_png_of_each(tmp_path, two_digits, capsys):
    data = codec.compress(two_digits, "hqa_digits", 2)
    (tmp_path / "two.tfvq").write_bytes(data)
    assert cli.main(["decompress", str(tmp_path / "two.tfvq"), "-o", str(tmp_path / "out.png")]) == 0
    outs = [tmp_path / "out_0.png", tmp_path / "out_1.png"]
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'two.tfvq'} -> {outs[0]}, {outs[1]}"
    want = codec.decompress(data)
    for out, image in zip(outs, want):
        np.testing.assert_array_equal(tf.io.decode_png(tf.io.read_file(str(out))).numpy(), image)
    assert not (tmp_path / "out.png").exists()


def test_the_weights_are_the_options_else_the_bundled_ones_of_the_model_the_file_names(tmp_path, digit, capsys,
                                                                                        one_line_error):
    class Header:
        model = "hqa_digits"

    def weights(model=None, weights=None):
        return decompress._decoding_weights(argparse.Namespace(model=model, weights=weights), Header())

    assert weights() is None and weights("hqa_digits") is None  # the bundled weights
    assert weights(weights="w.weights.h5") == weights("hqa_digits", "w.weights.h5") == "w.weights.h5"
    assert weights(str(tmp_path)) == str(tmp_path)  # a folder: the one the file was made with
    with pytest.raises(ValueError, match="The file names the model 'hqa_digits', not 'rrvq_digits': pass the model "
                                         "folder it was made with, or no --model"):
        weights("rrvq_digits")
    (tmp_path / "d.tfvq").write_bytes(codec.compress(digit, "hqa_digits", 5, coder="fixed"))
    assert cli.main(["decompress", str(tmp_path / "d.tfvq"), "--model=rrvq_digits"]) == 1
    assert "names the model 'hqa_digits', not 'rrvq_digits'" in one_line_error(1, capsys.readouterr().err)
    assert cli.main(["decompress", str(tmp_path / "d.tfvq"), "--model=hqa_digits"]) == 0
    assert (tmp_path / "d.png").exists()


def test_a_seed_changes_nothing_in_a_file_of_every_layer(tmp_path, two_digits, capsys):
    data = codec.compress(two_digits[1], "rrvq_digits", coder="fixed")
    (tmp_path / "d.tfvq").write_bytes(data)
    assert cli.main(["decompress", str(tmp_path / "d.tfvq"), "-o", str(tmp_path / "o.png"), "--seed=3"]) == 0
    image = tf.io.decode_png(tf.io.read_file(str(tmp_path / "o.png"))).numpy()
    np.testing.assert_array_equal(image, codec.decompress(data)[0])
