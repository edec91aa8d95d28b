"""Large images in row bands (`tfvq.codec.bands`): the same codes, tables and images as the whole image, in the
memory of a band."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tfvq.codec import bands, coding, container, entropy


def _digit_mosaic(height, width, seed=0):
    """uint8 [height, width, 1]: real test digits side by side (what `hqa_mnist` learned), cut to the size."""
    from tfvq.data import load_numpy

    digits = np.round(load_numpy("digits", "test") * 255).astype(np.uint8)[..., 0]
    rows, cols = -(-height // 32), -(-width // 32)
    pick = np.random.default_rng(seed).integers(0, len(digits), rows * cols)
    mosaic = digits[pick].reshape(rows, cols, 32, 32).transpose(0, 2, 1, 3).reshape(rows * 32, cols * 32)
    return np.ascontiguousarray(mosaic[:height, :width, None])


@pytest.fixture
def small_bands(monkeypatch):
    """Bands at a small size: images above 4096 pixels are banded, windows and table pieces are small, so a
    160x130 image takes several bands of every kind."""
    def use():
        monkeypatch.setattr(bands, "BAND_PIXELS", 1 << 12)
        monkeypatch.setattr(bands, "NET_ENTRIES", 1 << 18)
        monkeypatch.setattr(bands, "TABLE_ENTRIES", 1 << 14)
        monkeypatch.setattr(bands, "TILE_BATCH", 10)
    return use


def test_row_bands_cover_the_rows_once_in_windows_of_one_height():
    for total, core, halo, align in ((320, 64, 16, 32), (96, 8, 3, 2), (4000, 192, 64, 32), (64, 1000, 8, 32)):
        got = bands.row_bands(total, core, halo, align)
        assert [b.start for b in got] == sorted(b.start for b in got) and got[0].start == 0
        assert all(a.stop == b.start for a, b in zip(got, got[1:])) and got[-1].stop == total
        assert len({b.hi - b.lo for b in got}) == 1  # one window height: one sized model
        for b in got:
            assert 0 <= b.lo <= b.start < b.stop <= b.hi <= total
            assert b.lo % align == 0 and b.start % align == 0
            # the halo: rows of context on both sides, unless the image ends there
            assert b.start - b.lo >= min(halo, b.start) and b.hi - b.stop >= min(halo, total - b.stop)
    assert bands.row_bands(64, 1000, 8, 32) == [bands.Band(0, 64, 0, 64)]
    # windows a multiple of the model's stride (32) around cores and halos of a finer layer's (4)
    got = bands.row_bands(3008, 64, 16, 4, 32)
    assert {b.hi - b.lo for b in got} == {96} and all(b.lo % 4 == 0 for b in got)
    assert all(b.start - b.lo >= 16 or b.lo == 0 for b in got)
    assert all(b.hi - b.stop >= 16 or b.hi == 3008 for b in got)


def test_pass_positions_of_a_band_are_its_rows_of_the_grids_pass_map():
    from tfvq.codec.context import PASSES, pass_map

    for h, w in ((7, 5), (12, 9), (1, 1), (2, 6)):
        for start in range(h):
            for stop in range(start, h + 1):
                for p in range(PASSES):
                    got = bands.pass_positions((h, w), bands.Band(0, h, start, stop), p)
                    np.testing.assert_array_equal(got, (pass_map(h, w) == p)[start:stop])


def test_lazy_tables_give_the_stream_and_bits_of_kept_tables():
    rng = np.random.default_rng(3)
    tables = entropy.frequencies(rng.integers(0, 1 << 30, size=(500, 12)))
    symbols = rng.integers(0, 12, size=500)
    kept = entropy.Encoder()
    kept.tables(symbols, tables)
    lazy = entropy.Encoder()
    lazy.lazy(symbols, entropy.information(symbols, tables), lambda: (tables[a: a + 77] for a in range(0, 500, 77)))
    assert lazy.is_lazy and not kept.is_lazy
    assert lazy.bits == pytest.approx(kept.bits) and lazy.bytes() == kept.bytes()
    decoded = entropy.Decoder(words=entropy.stream_words(lazy.shortest())).tables(tables.astype(np.float64))
    np.testing.assert_array_equal(decoded, symbols)


def _codes(f, compressor):
    parsed = container.parse(bytes(f))
    return coding.compact_codes(parsed, compressor.model, compressor.weights_hash, lambda: compressor.prior)[0]


@pytest.mark.slow
@pytest.mark.parametrize("coder", ["auto", "progressive", "context"])
def test_banded_hqa_files_hold_the_whole_images_codes_and_decode_to_its_images(small_bands, coder):
    """hqa_mnist layer 1 with its chain 1..5: every layer's codes from windows with their halo are the whole
    image's (the halo covers the encoders' receptive field), the model's and the context priors' tables per
    band decode them, and the images decoded band by band are the whole decode's. The files differ only in the
    stream's last bytes (a banded stream is not shortened: at most a few bytes)."""
    from tfvq.codec import files

    image = _digit_mosaic(160, 130)
    compressor = files.Compressor("hqa_mnist")
    whole = compressor.compress(image, 1, coder)
    whole_images = files.decompress(bytes(whole))
    small_bands()
    assert coding.Geometry(compressor.model, 160, 130).banding is not None
    assert len(bands.row_bands(160, 32, 32, 32)) > 1
    banded = compressor.compress(image, 1, coder)
    assert banded.coders == whole.coders
    assert 0 <= banded.file_bytes - whole.file_bytes <= 4
    banded_codes, whole_codes = _codes(banded, compressor), _codes(whole, compressor)
    assert sorted(banded_codes) == [1, 2, 3, 4, 5]
    for layer in banded_codes:
        np.testing.assert_array_equal(banded_codes[layer], whole_codes[layer])
    np.testing.assert_array_equal(files.decompress(bytes(banded)), whole_images)


@pytest.mark.slow
def test_banded_lossless_tiled_file_gives_the_exact_pixels(small_bands):
    """rrvq_swatches codes 32x32 tiles: a big image takes batches of tiles and its pixels rows of tiles at a time;
    the lossless file decodes to the exact pixels and holds the codes of the whole-image file."""
    from tfvq.codec import files

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:70, :90]
    image = np.stack([(yy + xx) % 256, (3 * yy) % 256, (5 * xx) % 256], -1)
    image = np.clip(image + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8)
    compressor = files.Compressor("rrvq_swatches")
    whole = compressor.compress(image, None, "progressive", lossless=True)
    small_bands()
    assert coding.Geometry(compressor.model, 70, 90).big
    banded = compressor.compress(image, None, "progressive", lossless=True)
    np.testing.assert_array_equal(files.decompress(bytes(banded))[0], image)
    for layer, codes in _codes(banded, compressor).items():
        np.testing.assert_array_equal(codes, _codes(whole, compressor)[layer])


PEAK_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from tfvq.codec import files
    image = np.load(sys.argv[1])
    data = bytes(files.compress(image, "hqa_mnist", layer=1, coder=sys.argv[2]))
    out = files.decompress(data)
    assert out.shape == (1, *image.shape)
    with open("/proc/self/status") as f:
        print([int(line.split()[1]) for line in f if line.startswith("VmHWM")][0] // 1024, len(data))
""")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc")
def test_a_large_image_compresses_and_decompresses_in_bounded_memory(tmp_path):
    """A 1536x1536 digit mosaic (2.4 MP, banded by default) through hqa_mnist layer 1, its finest grid
    (768x768 codes of K = 256: a whole [positions, K] float64 table is 1.2 GB, and the unbanded codec peaked at
    about 6 GB at 1000x1000). The bound: a process that loads TensorFlow and the model peaks at about 0.75 GB
    for one digit, and a band adds at most NET_ENTRIES float32 distances (128 MB) and a few table pieces; 1.5 GB
    leaves room for the allocator and still fails the whole-grid path by a factor of four."""
    path = tmp_path / "mosaic.npy"
    np.save(path, _digit_mosaic(1536, 1536))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path), "static"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    peak_mb, size = (int(v) for v in out.stdout.split()[-2:])
    assert size > 1000
    assert peak_mb < 1536, f"peak resident memory {peak_mb} MB"
