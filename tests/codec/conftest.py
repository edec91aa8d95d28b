"""Shared fixtures of the codec tests (test modules are imported with --import-mode=importlib: share by fixture)."""

import functools

import numpy as np
import pytest


def mutate_file(data, rng):
    """Random corruptions of `data`: bit flips, byte changes, truncation, extension, insertion, deletion."""
    kind = rng.integers(6)
    out = bytearray(data)
    if kind == 0:
        for _ in range(rng.integers(1, 4)):
            at = rng.integers(len(out))
            out[at] ^= 1 << int(rng.integers(8))
    elif kind == 1:
        for _ in range(rng.integers(1, 6)):
            out[rng.integers(len(out))] = int(rng.integers(256))
    elif kind == 2:
        out = out[: rng.integers(len(out))]
    elif kind == 3:
        out += rng.bytes(int(rng.integers(1, 20)))
    elif kind == 4:
        at = rng.integers(len(out) + 1)
        out[at:at] = rng.bytes(int(rng.integers(1, 5)))
    else:
        at = rng.integers(len(out))
        del out[at: at + int(rng.integers(1, 5))]
    return bytes(out)


@pytest.fixture
def mutate():
    """`mutate(data, rng)`: one random corruption of a file's bytes (for the fuzz tests)."""
    return mutate_file


# ------------------------------------------------------------------------------------------- version 4 files
def _uniform_stream(codes, ks):
    """The stream a fixed-rate file of `codes` {layer: [count, h, w]} holds: each layer, the top first, under the
    uniform table of its K (`ks[layer]`), shortened as the container shortens it."""
    from tfvq.codec import entropy

    stream = entropy.Encoder()
    for l in sorted(codes, reverse=True):
        stream.static(np.asarray(codes[l]).ravel(), entropy.uniform_table(ks[l]))
    return stream.shortest()


@pytest.fixture(scope="session")
def uniform_stream():
    """`uniform_stream(codes, ks)`: the stream of a fixed-rate file of `codes` {layer: [count, h, w]}, K = ks[layer]."""
    return _uniform_stream


@pytest.fixture(scope="session")
def fixed_file():
    """`fixed_file(model, codes, first_layer, ks, digest, images=None)`: a version 4 file of `codes` {layer:
    [count, h, w]}, each layer under the uniform table of K = ks[layer], with the tag and CRC of the digest D."""
    from tfvq.codec import container

    def write(model, codes, first_layer, ks, digest, images=None):
        images = len(next(iter(codes.values()))) if images is None else images
        return bytes(container.write_file(model, digest, first_layer, dict.fromkeys(codes, container.UNIFORM),
                                          _uniform_stream(codes, ks), codes, images=images))

    return write


@pytest.fixture(scope="session")
def decoded_codes():
    """`decoded_codes(data, weights=None)`: {layer: codes} a version 4 file's stream decodes to, its CRC checked
    (what `decompress` makes images of), the priors loaded once per file when a coder asks for them."""
    from tfvq.codec import coding, container, files

    def decode(data, weights=None):
        f = container.parse(data)
        model, digest = files.load_model(f.model, weights)
        prior_for = functools.cache(lambda: files.load_prior(f.model, model, digest))
        return coding.compact_codes(f, model, digest, prior_for)[0]

    return decode


# ----------------------------------------------------------------------------------------- the bundled models
@pytest.fixture(scope="session")
def hqa():
    """The bundled hqa_digits model (the codec's: `load_model`)."""
    from tfvq import codec

    return codec.load_model("hqa_digits")[0]


@pytest.fixture(scope="session")
def rrvq():
    """The bundled rrvq_digits model (the codec's: `load_model`)."""
    from tfvq import codec

    return codec.load_model("rrvq_digits")[0]


@pytest.fixture(scope="session")
def three_digits(six_digits):
    """The first three test digits as uint8 [3, 32, 32, 1]."""
    return six_digits[:3]


@pytest.fixture(scope="session")
def mnist_digits():
    """The first six real test digits of mnist10k as stored, uint8 [6, 28, 28, 1]."""
    from tfvq.data.embedded import mnist10k_raw

    return mnist10k_raw("test")[0][:6][..., None]


@pytest.fixture(scope="session")
def rrvq_file(three_digits):
    """A fixed-rate rrvq_digits file of the first three test digits at its default layer 1 (every layer)."""
    from tfvq import codec

    return codec.compress(three_digits, "rrvq_digits", coder="fixed")


@pytest.fixture(scope="session")
def rrvq_fixed_file(fixed_file):
    """`rrvq_fixed_file(codes, first_layer, ks=(32,) * 5, model="rrvq_digits", weights_hash=None)`: a version 4
    file of `codes` {layer: [count, h, w]}, each layer under the uniform table of its K in `ks` (indexed by
    layer - 1), with a valid tag and CRC for `weights_hash` (default: the bundled rrvq_digits weights')."""
    from tfvq import codec
    from tfvq.codec import container

    def write(codes, first_layer, ks=(32,) * 5, model="rrvq_digits", weights_hash=None):
        if weights_hash is None:
            weights_hash = codec.weights_hash(codec.load_model("rrvq_digits")[0])
        return fixed_file(model, codes, first_layer, dict(enumerate(ks, 1)), container.file_digest(weights_hash))

    return write


def _retag(data, model=None, tag=None, first_layer=None, coders=None):
    """The file with header fields rewritten (model name, tag, first layer, coders), its stream and CRC kept."""
    from tfvq.codec import container

    f = container.parse(data)
    header = container.write_header(model or f.model, f.tag if tag is None else tag,
                                    f.first_layer if first_layer is None else first_layer,
                                    f.coders if coders is None else coders, f.image_size, f.images, f.lossless)
    return header + f.stream + data[-4:]


@pytest.fixture(scope="session")
def retag():
    """`retag(data, model=None, tag=None, first_layer=None, coders=None)`: a version 4 file with those header
    fields rewritten, its stream and CRC kept."""
    return _retag


# ------------------------------------------------------------------------------------- files of old versions
@pytest.fixture(scope="session")
def old_weights(old_files):
    """The hqa_digits weights the kept version 1 files were made with (the bundled ones of that time; a file
    names its weights by their hash, and decodes only with them)."""
    return old_files / "hqa_digits_2026_11.weights.h5"


@pytest.fixture(scope="session")
def old_file(old_files):
    """`old_file(stem)`: (the bytes of the kept file `stem`.tfvq, the uint8 images it decoded to then)."""

    def load(stem):
        return (old_files / f"{stem}.tfvq").read_bytes(), np.load(old_files / f"{stem}.npy")

    return load
