"""Tests of tfvq.codec.rates: the fixed rates of a zoo model's files, one row per layer, and their table."""

import pytest

from tfvq import codec
from tfvq.codec import container

GRIDS = ((16, 16), (8, 8), (4, 4), (2, 2), (1, 1))
"""rrvq_digits' code grids, layer 1 first."""
KS = (32,) * 5
"""... and their K."""


def test_rate_tables_give_one_row_per_layer():
    digits = codec.rate_table("hqa_digits")
    assert [r["layer"] for r in digits] == [1, 2, 3, 4, 5]
    assert [r["layers"] for r in digits] == [(l,) for l in range(1, 6)]
    assert [r["bits"] for r in digits] == [2048, 512, 128, 32, 8]
    assert [r["default"] for r in digits] == [False] * 4 + [True]
    assert digits[0]["code_grid"] == ((16, 16),) and digits[0]["num_codes"] == (256,)
    assert digits[-1]["payload_bytes"] == 1 and digits[-1]["ratio"] == 1024
    assert all(r["file_bytes"] == r["payload_bytes"] + 21 for r in digits)  # the version 4 header and CRC
    celeba = codec.rate_table("hqa_celeba64")
    layer4 = celeba[3]
    assert (layer4["code_grid"], layer4["bits"], layer4["payload_bytes"]) == (((8, 8),), 576, 72)  # HQA Table 1
    table = codec.format_rate_table("hqa_digits")
    assert "| 5 (default) | 1x1 | 256 | 8 | 1 | 22 | 1024.0:1 | 46.5:1 |" in table
    assert "| 1 | 16x16 | 256 | 2048 | 256 | 277 | 4.0:1 | 3.7:1 |" in table


def test_rate_table_gives_the_bits_of_the_layers_sent_at_every_layer():
    rows = codec.rate_table("rrvq_digits")
    assert [r["layers"] for r in rows] == [(1, 2, 3, 4, 5), (2, 3, 4, 5), (3, 4, 5), (4, 5), (5,)]
    assert [r["default"] for r in rows] == [True, False, False, False, False]
    first = rows[0]
    assert first["code_grid"] == GRIDS and first["num_codes"] == KS
    assert first["layer_bits"] == (1280, 320, 80, 20, 5) and first["bits"] == 1705
    # A one-image fixed-rate file: the version 4 header (20 bytes for 11 characters and 5 layers), the codes, the CRC.
    assert (first["payload_bytes"], first["file_bytes"]) == (214, 237)
    for r in rows:
        header = container.write_header("rrvq_digits", bytes(2), r["layer"],
                                        {l: container.UNIFORM for l in r["layers"]})
        assert r["file_bytes"] == len(header) + r["payload_bytes"] + 4
    assert first["ratio"] == pytest.approx(32 * 32 * 8 / 1705) and first["file_ratio"] == pytest.approx(1024 / 237)
    assert [r["bits"] for r in rows] == [1705, 425, 105, 25, 5]
    table = codec.format_rate_table("rrvq_digits")
    assert "| 1..5 (default) | 16x16 + 8x8 + 4x4 + 2x2 + 1x1 | 32, 32, 32, 32, 32 | 1705 | 214 | 237 |" in table
    assert "| 3..5 | 4x4 + 2x2 + 1x1 | 32, 32, 32 | 105 | 14 | 37 |" in table
    celeba = codec.rate_table("rrvq_celeba64_l5")[0]
    assert (celeba["bits"], celeba["payload_bytes"]) == (2275, 285)  # RRVQ App. F: 2275 bits per image
