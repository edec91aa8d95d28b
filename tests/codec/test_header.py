"""Tests of tfvq.codec.header: what a parsed `.tfvq` file answers, whatever its version (`FileHeader`)."""

import pytest

from tfvq import codec
from tfvq.codec import container, header
from tfvq.codec.header import FileHeader, layers_text, span
from tfvq.codec.legacy import v1_v2, v3


def test_a_span_of_layers_is_one_layer_or_the_first_to_the_last():
    assert span((3,)) == "layer 3" and span((1, 2, 3, 4, 5)) == "layers 1..5" and span((4, 5)) == "layers 4..5"
    assert layers_text((3,)) == "3" and layers_text((2, 3, 4, 5)) == "2..5"


def test_the_header_of_every_version_is_a_file_header_with_the_documented_attributes(old_files):
    kinds = {1: v1_v2.PackedFile, 2: v1_v2.PackedFile, 3: v3.ChunkedFile, 4: container.CompactFile}
    seen = set()
    for path in sorted(old_files.glob("*.tfvq")):
        data = path.read_bytes()
        f = codec.read_header(data)
        assert isinstance(f, FileHeader) and type(f) is kinds[f.version], path.name
        seen.add(f.version)
        assert f.version_byte in (f.version, 0x81) and (f.version_byte == 0x81) == ("all_layers" in path.stem)
        assert f.model == path.stem.split("_all_layers")[0].split("_layer")[0]
        assert f.first_layer == f.layers[0] and list(f.layers) == sorted(f.layers) and f.num_layers == len(f.layers)
        assert f.images == 2 and f.file_bytes == len(data)
        assert f.image_size is None or (len(f.image_size) == 2 and all(d > 0 for d in f.image_size))
        assert isinstance(f.lossless, bool) and f.lossless == ("lossless" in path.stem)
        assert isinstance(f.resized, bool) and not f.resized  # no kept file was resized
        lines = f.describe()
        assert lines[0].startswith(f".tfvq version {f.version}") and f"model {f.model}" in lines[0]
    assert seen == {1, 2, 3, 4}


def test_a_file_header_of_no_version_describes_nothing():
    class Bare(FileHeader):
        layers = (2, 3, 4)

    assert Bare().num_layers == 3
    with pytest.raises(NotImplementedError):
        Bare().describe()
    assert header.FileHeader.describe is not container.CompactFile.describe
