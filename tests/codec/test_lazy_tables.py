"""A large image's layers coded with tables made when the stream is written (`tfvq.codec.lazy_tables`)."""

import threading

import numpy as np
import pytest

from tfvq.codec import bands, coding, container, entropy, lazy_tables


def test_one_ahead_gives_every_result_in_order_one_call_at_a_time_on_another_thread():
    running, threads, seen = [], set(), []
    lock = threading.Lock()

    def square(x):
        with lock:
            running.append(x)
            assert len(running) == 1  # never two calls at once
        threads.add(threading.get_ident())
        with lock:
            running.remove(x)
        return x * x

    for x, y in zip(range(7), lazy_tables.one_ahead(square, range(7))):
        seen.append(y)
        assert y == x * x
    assert seen == [x * x for x in range(7)] and threading.get_ident() not in threads
    assert list(lazy_tables.one_ahead(square, [5])) == [25] and list(lazy_tables.one_ahead(square, [])) == []


def test_the_model_spans_whole_groups_within_the_table_entries():
    # rrvq_swatches' layer 1: 16x16 codes of K = 16, 65536 entries a group of 16 tiles: 32 groups per call
    assert lazy_tables.model_span(256, 16) == 32 * lazy_tables.GROUP
    assert lazy_tables.model_span(1 << 20, 256) == lazy_tables.GROUP  # a group larger than the limit: one


def test_the_codes_above_are_the_next_layers_grids_or_none_at_the_top():
    codes = {1: np.zeros((4, 8, 8), np.int32), 2: np.arange(64).reshape(4, 4, 4)}
    np.testing.assert_array_equal(lazy_tables.above(codes, 1, 1, 3), codes[2][1:3])
    assert lazy_tables.above(codes, 2, 0, 4) is None


def _codes(f, compressor):
    parsed = container.parse(bytes(f))
    return coding.compact_codes(parsed, compressor.model, compressor.weights_hash, lambda: compressor.prior)[0]


@pytest.mark.slow
def test_a_big_tiled_images_model_tables_are_made_once_per_group_when_written(monkeypatch):
    """rrvq_swatches' progressive file of 36 tiles coded as a big image: its model-coded layers' tables are made
    once, when the stream is written (`Encoder.lazy_pieces`), two groups of 16 tiles per call of the model; the
    file holds the whole image's codes and decodes to its images (only the stream's last bytes may differ)."""
    from tfvq.codec import files

    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:96, :384]
    image = np.stack([(yy + 2 * xx) % 256, (3 * yy) % 256, (xx // 3) % 256], -1)
    image = np.clip(image + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8)
    compressor = files.Compressor("rrvq_swatches")
    whole = compressor.compress(image, None, "progressive")
    monkeypatch.setattr(bands, "BAND_PIXELS", 1 << 12)
    monkeypatch.setattr(bands, "TABLE_ENTRIES", 2 * lazy_tables.GROUP * 16 * 16 * 16)
    written = []
    lazy_pieces = entropy.Encoder.lazy_pieces
    monkeypatch.setattr(entropy.Encoder, "lazy_pieces", lambda self, pieces: (written.append(pieces),
                                                                              lazy_pieces(self, pieces))[1])
    assert coding.Geometry(compressor.model, 96, 384).big
    banded = compressor.compress(image, None, "progressive")
    assert len(written) == 5  # every layer, the top one under the top prior
    assert banded.coders == whole.coders and 0 <= banded.file_bytes - whole.file_bytes <= 4
    for layer, codes in _codes(banded, compressor).items():
        np.testing.assert_array_equal(codes, _codes(whole, compressor)[layer])
    np.testing.assert_array_equal(files.decompress(bytes(banded)), files.decompress(bytes(whole)))
