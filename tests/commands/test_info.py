"""Tests of tfvq.commands.info: `tfvq info`, a `.tfvq` file's header, any version, read without the model."""

from tfvq import cli, codec
from tfvq.codec import container


def test_info_prints_the_header_and_each_layers_coder(tmp_path, six_digits, capsys):
    path = tmp_path / "d.tfvq"
    data = codec.compress(six_digits[:1], "rrvq_digits", lossless=True)
    path.write_bytes(data)
    assert cli.main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    f = codec.read_header(data)
    assert "version 4, model rrvq_digits" in out and "1 image(s) of the model's own size" in out
    assert f"{len(data)} bytes in all: header {len(f.header)}, stream {len(f.stream)}, CRC 4" in out
    assert "lossless" in out
    for l in range(1, 6):
        assert f"  layer {l}: {container.CODER_TEXT[f.coders[l]]}" in out


def test_info_describes_an_old_file(old_files, capsys):
    assert cli.main(["info", str(old_files / "rrvq_digits_all_layers_v0x81.tfvq")]) == 0
    out = capsys.readouterr().out
    assert ".tfvq version 1, model rrvq_digits" in out
    assert "layers 1..5, 2 image(s) of codes 16x16 K=32, 8x8 K=32, 4x4 K=32, 2x2 K=32, 1x1 K=32" in out
    assert "1705 bits per image, 427 bytes of codes, 503 bytes in all" in out


def test_info_prints_the_files_name_then_its_headers_description(old_files, capsys):
    for path in sorted(old_files.glob("*.tfvq")):
        assert cli.main(["info", str(path)]) == 0
        first, *rest = codec.read_header(path.read_bytes()).describe()
        assert capsys.readouterr().out == "\n".join([f"{path}: {first}", *rest]) + "\n"


def test_info_of_fixed_rate_files(tmp_path, digit_png, capsys, fixed_rate):
    out = tmp_path / "d.tfvq"
    assert cli.main(["compress", "--coder=fixed", str(digit_png), "--model=hqa_digits", "--layer=3", "-o",
                     str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    f = codec.read_header(out.read_bytes())
    assert "version 4, model hqa_digits" in info and "1 image(s) of the model's own size" in info
    assert f"{f.file_bytes} bytes in all: header 17, stream {len(f.stream)}, CRC 4" in info
    assert fixed_rate(len(f.stream), 128)
    assert "  layer 3: fixed rate (uniform)" in info
    assert cli.main(["compress", "--coder=fixed", str(digit_png), "--model=rrvq_digits", "-o", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    f = codec.read_header(out.read_bytes())
    assert "version 4, model rrvq_digits" in info and f"(tag {f.tag.hex()})" in info
    assert "1 image(s) of the model's own size, layers 1..5 (decoded at layer 1 by default)" in info
    assert f"{f.file_bytes} bytes in all: header 19, stream {len(f.stream)}, CRC 4" in info
    assert fixed_rate(len(f.stream), 1705) and info.count(": fixed rate (uniform)") == 5


def test_a_file_cut_inside_its_header_is_a_one_line_error(tmp_path, digit, capsys, one_line_error):
    out = tmp_path / "d.tfvq"
    out.write_bytes(codec.compress(digit, "rrvq_digits", coder="fixed")[:12])
    assert cli.main(["info", str(out)]) == 1
    assert "Truncated" in one_line_error(1, capsys.readouterr().err)
