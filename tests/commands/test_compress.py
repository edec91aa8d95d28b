"""Tests of tfvq.commands.compress: `tfvq compress`, images of any size (files or directories) to `.tfvq` files."""

import numpy as np
import pytest
import tensorflow as tf

from tfvq import cli, codec
from tfvq.codec import container, files, lite_model


def test_compress_writes_the_files_the_api_writes_and_says_what_they_hold(tmp_path, digit_png, digit, start_tfvq):
    procs = {  # the two at the same time
        "hqa_digits": start_tfvq(["compress", "--coder=fixed", digit_png, "--model=hqa_digits", "-o", "hqa.tfvq"],
                                 tmp_path),
        "rrvq_digits": start_tfvq(["compress", "--coder=fixed", digit_png, "--model=rrvq_digits", "-o", "rrvq.tfvq"],
                                  tmp_path),
    }
    results = {name: p.result() for name, p in procs.items()}
    for name, (code, out, err) in results.items():
        assert code == 0, f"tfvq compress --model={name} failed: {err}"
    data = (tmp_path / "hqa.tfvq").read_bytes()
    assert data == codec.compress(digit, "hqa_digits", 5, coder="fixed")
    stream = len(codec.read_header(data).stream)
    assert (f"{len(data)} bytes (layer 5, {8 * stream} bits of stream per image (coders: 5 uniform) of "
            "hqa_digits)") in results["hqa_digits"][1]
    assert len(data) == 21 + stream <= 22
    data = (tmp_path / "rrvq.tfvq").read_bytes()
    assert data == codec.compress(digit, "rrvq_digits", coder="fixed")
    stream = len(codec.read_header(data).stream)
    assert (f"{len(data)} bytes (layers 1..5, {8 * stream} bits of stream per image (coders: 5 uniform, 4 uniform, "
            "3 uniform, 2 uniform, 1 uniform) of rrvq_digits)") in results["rrvq_digits"][1]
    file_bytes = codec.rate_table("rrvq_digits")[0]["file_bytes"]
    assert file_bytes - 2 <= len(data) <= file_bytes


def test_a_missing_image_is_a_one_line_error(tmp_path, start_tfvq, one_line_error):
    code, _, err = start_tfvq(["compress", "--coder=fixed", "nothere.png", "--model=hqa_digits", "--layer=5"],
                              tmp_path).result()
    assert "No such file: nothere.png" in one_line_error(code, err)


def test_images_models_and_layers_it_cannot_take_are_one_line_errors(tmp_path, digit_png, capsys, one_line_error):
    rgb = tmp_path / "rgb.png"
    tf.io.write_file(str(rgb), tf.io.encode_png(np.zeros((32, 32, 3), np.uint8)))
    assert cli.main(["compress", "--coder=fixed", str(rgb), "--model=hqa_digits", "--layer=5"]) == 1
    assert "grayscale images (1 channel). Pass --grayscale" in one_line_error(1, capsys.readouterr().err)
    assert cli.main(["compress", "--coder=fixed", str(digit_png), "--model=hqa_nope", "--layer=5"]) == 1
    assert "not in this tfvq's zoo" in one_line_error(1, capsys.readouterr().err)
    assert cli.main(["compress", "--coder=fixed", str(digit_png), "--model=hqa_digits", "--layer=9"]) == 1
    assert "code layers 1..5" in one_line_error(1, capsys.readouterr().err)
    (tmp_path / "x.png").write_bytes(b"not a png")
    assert cli.main(["compress", "--coder=fixed", str(tmp_path / "x.png"), "--model=hqa_digits", "--layer=5"]) == 1
    assert "is not an image file this tool reads" in one_line_error(1, capsys.readouterr().err)
    missing_dir = tmp_path / "no" / "such" / "dir.tfvq"
    assert cli.main(["compress", "--coder=fixed", str(digit_png), "--model=hqa_digits", "--layer=5", "-o",
                     str(missing_dir)]) == 1
    one_line_error(1, capsys.readouterr().err)
    assert cli.main(["compress", "--coder=fixed", str(digit_png), "--model=rrvq_digits", "--layer=6"]) == 1
    assert "code layers 1..5" in one_line_error(1, capsys.readouterr().err)
    assert cli.main(["compress", "--coder=fixed", str(digit_png), "--model=spatial_vae_cifar10"]) == 1
    assert "no discrete codes" in one_line_error(1, capsys.readouterr().err)


def test_grayscale_and_rgb_exclude_each_other(digit_png, capsys):
    with pytest.raises(SystemExit):
        cli.main(["compress", str(digit_png), "--model=hqa_digits", "--grayscale", "--rgb"])
    assert "not allowed with argument --grayscale" in capsys.readouterr().err


def test_cli_compress_loads_the_model_once_and_reads_back_nothing_it_wrote(tmp_path, digit, monkeypatch, capsys):
    from PIL import Image

    (tmp_path / "in").mkdir()
    for i in range(3):
        Image.fromarray(np.roll(digit, i, axis=1)[..., 0]).save(tmp_path / "in" / f"{i}.png")
    loads, lite_loads = [], []
    real_load, real_lite = files.load_model, lite_model.LiteModel
    monkeypatch.setattr(files, "load_model", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    monkeypatch.setattr(lite_model, "LiteModel", lambda *a, **k: lite_loads.append(a) or real_lite(*a, **k))
    monkeypatch.setattr(lite_model, "_LOADED", {})
    monkeypatch.setattr(container, "parse", lambda data: pytest.fail("compress read back a file it wrote"))
    for backend in ("tensorflow", "tflite"):
        assert cli.main(["compress", str(tmp_path / "in"), "--model=hqa_digits", "--layer=4", "-o",
                         str(tmp_path / backend), f"--backend={backend}"]) == 0
    assert len(loads) == 1 and len(lite_loads) == 1  # the Keras model for the first, the TFLite one for the other
    monkeypatch.undo()
    lines = capsys.readouterr().out.splitlines()
    for backend, out in zip(("tensorflow", "tflite"), (lines[:3], lines[3:])):
        for line, i in zip(out, range(3)):
            data = (tmp_path / backend / f"{i}.tfvq").read_bytes()
            assert data == codec.compress(np.roll(digit, i, axis=1), "hqa_digits", 4, backend=backend)
            assert line.endswith(f": {len(data)} bytes ({codec.read_header(data).summary()} of hqa_digits)")


def test_cli_layer_3_and_a_seed_in_process(tmp_path, digit, capsys):
    png = tmp_path / "digit.png"
    tf.io.write_file(str(png), tf.io.encode_png(digit))
    d3 = tmp_path / "d3.tfvq"
    assert cli.main(["compress", "--coder=fixed", str(png), "--model=rrvq_digits", "--layer=3", "-o", str(d3)]) == 0
    out = capsys.readouterr().out
    assert "(layers 3..5, " in out and "(coders: 5 uniform, 4 uniform, 3 uniform) of rrvq_digits)" in out
    assert d3.read_bytes() == codec.compress(digit, "rrvq_digits", 3, coder="fixed")
    assert cli.main(["decompress", str(d3), "-o", str(tmp_path / "out3.png"), "--seed=2"]) == 0
    image3 = tf.io.decode_png(tf.io.read_file(str(tmp_path / "out3.png"))).numpy()
    np.testing.assert_array_equal(image3, codec.decompress(d3.read_bytes(), seed=2)[0])


def test_cli_compresses_a_directory_of_any_images_and_back(tmp_path, capsys):
    from PIL import Image

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (20, 30), dtype=np.uint8)).save(src / "a.png")
    Image.fromarray(rng.integers(0, 256, (33, 17, 3), dtype=np.uint8)).save(src / "sub" / "b.jpg")
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(src / "c.webp", lossless=True)
    Image.fromarray(rng.integers(0, 256, (9, 9), dtype=np.uint8)).save(src / "d.bmp")
    Image.fromarray(rng.integers(0, 256, (9, 9), dtype=np.uint8)).save(src / "e.gif")
    assert cli.main(["compress", str(src), "--model=hqa_digits", "--layer=2", "-o", str(tmp_path / "z")]) == 1
    assert "Pass --grayscale" in capsys.readouterr().err
    assert cli.main(["compress", str(src), "--model=rrvq_digits", "--grayscale", "--lossless",
                     "-o", str(tmp_path / "z")]) == 0
    assert sorted(p.name for p in (tmp_path / "z").rglob("*.tfvq")) == ["a.tfvq", "b.tfvq", "c.tfvq", "d.tfvq",
                                                                         "e.tfvq"]
    assert cli.main(["decompress", str(tmp_path / "z"), "-o", str(tmp_path / "png")]) == 0
    back = np.asarray(Image.open(tmp_path / "png" / "sub" / "b.png"))
    np.testing.assert_array_equal(back, np.asarray(Image.open(src / "sub" / "b.jpg").convert("L")))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "png" / "a.png")),
                                  np.asarray(Image.open(src / "a.png")))


def test_cli_resizes_by_default_and_not_with_resize_off(tmp_path, digits28, resized_file, capsys):
    from PIL import Image

    Image.fromarray(digits28[0, ..., 0]).save(tmp_path / "d.png")
    assert cli.main(["compress", str(tmp_path / "d.png"), "--model=hqa_mnist", "--layer=2"]) == 0
    assert "28x28 coded resized to the model's size" in capsys.readouterr().out
    assert (tmp_path / "d.tfvq").read_bytes() == resized_file
    assert cli.main(["info", str(tmp_path / "d.tfvq")]) == 0
    assert "1 image(s) of 28x28 pixels (coded resized to the model's size" in capsys.readouterr().out
    assert cli.main(["decompress", str(tmp_path / "d.tfvq"), "-o", str(tmp_path / "out.png")]) == 0
    out = np.asarray(Image.open(tmp_path / "out.png"))
    np.testing.assert_array_equal(out, codec.decompress(resized_file)[0, ..., 0])
    assert cli.main(["compress", str(tmp_path / "d.png"), "--model=hqa_mnist", "--layer=2", "--resize=off", "-o",
                     str(tmp_path / "off.tfvq")]) == 0
    off = (tmp_path / "off.tfvq").read_bytes()
    assert off == codec.compress(digits28[:1], "hqa_mnist", layer=2, resize="off")
    assert not codec.read_header(off).resized
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli.main(["compress", "--help"])
    assert "--resize {auto,off}" in capsys.readouterr().out
