"""Learned context priors (`tfvq.codec.context`): the pass schedule, the networks, their files, and coding."""

import numpy as np
import pytest

from tfvq import codec
from tfvq.codec import container, context
from tfvq.codec.errors import CodecError


def _fit():
    from tfvq.codec import fit  # TensorFlow and Keras: imported by the tests that build networks

    return fit


@pytest.fixture(scope="module")
def tiny():
    """Untrained context priors of a two-layer layout: layer 1 (K=6, twice layer 2's grid), layer 2 (K=4)."""
    import keras

    keras.utils.set_random_seed(3)
    fit = _fit()
    nets = {1: fit.context_net(6, 4, 2, width=8, depth=2, embed=4), 2: fit.context_net(4, None, 1, width=8, depth=1,
                                                                                         embed=4)}
    return context.ContextPriors("tiny", "00" * 8, nets, "test")


def _codes(rng, n, h, w, k):
    return rng.integers(0, k, size=(n, h, w)).astype(np.int32)


def test_the_four_passes_take_one_position_of_every_2x2_block_each():
    for h, w in ((2, 2), (5, 7), (16, 16)):
        passes = context.pass_map(h, w)
        for i in range(0, h - 1, 2):
            for j in range(0, w - 1, 2):
                assert sorted(passes[i:i + 2, j:j + 2].ravel()) == [0, 1, 2, 3]
        assert passes[0, 0] == 0 and (h < 2 or w < 2 or passes[1, 1] == 1)


def test_a_pass_reads_only_the_codes_of_earlier_passes(tiny):
    rng = np.random.default_rng(0)
    codes, above = _codes(rng, 3, 6, 8, 6), _codes(rng, 3, 3, 4, 4)
    passes = context.pass_map(6, 8)
    log_probs = _fit().float_log_probs
    for p in range(context.PASSES):
        changed = np.where(passes[None] >= p, _codes(rng, 3, 6, 8, 6), codes)
        np.testing.assert_array_equal(log_probs(tiny, 1, changed, above, p), log_probs(tiny, 1, codes, above, p))
        # the integer tables that code the pass read the same codes, and only those
        np.testing.assert_array_equal(tiny.tables(1, changed, above, p), tiny.tables(1, codes, above, p))
    # ... and does read the layer above and, after pass 0, the earlier passes.
    assert not np.allclose(log_probs(tiny, 1, codes, (above + 1) % 4, 0), log_probs(tiny, 1, codes, above, 0))
    changed = np.where(passes[None] == 0, (codes + 1) % 6, codes)
    assert not np.allclose(log_probs(tiny, 1, changed, above, 1), log_probs(tiny, 1, codes, above, 1))


def test_tables_on_threads_are_those_of_one_thread(tiny, monkeypatch):
    rng = np.random.default_rng(5)
    codes, above = _codes(rng, 2, 12, 10, 6), _codes(rng, 2, 6, 5, 4)
    monkeypatch.setattr(context, "THREADS", 1)
    want = [tiny.tables(1, codes, above, p, rows) for p in range(context.PASSES) for rows in (None, (2, 9))]
    monkeypatch.setattr(context, "THREADS", 3)
    monkeypatch.setattr(context, "PART_POSITIONS", 4)  # every pass in three parts of its rows
    calls = []
    real = tiny.integer_net(1).logits
    monkeypatch.setattr(tiny.integer_net(1), "logits", lambda *a, **k: calls.append(a[2].sum()) or real(*a, **k))
    got = [tiny.tables(1, codes, above, p, rows) for p in range(context.PASSES) for rows in (None, (2, 9))]
    assert len(calls) == 3 * len(want) and min(calls) > 0
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.shape[-1] == 6
        np.testing.assert_array_equal(g, w)


def test_bits_are_the_cross_entropy_of_each_pass_softmax(tiny):
    rng = np.random.default_rng(1)
    codes, above = _codes(rng, 2, 4, 6, 6), _codes(rng, 2, 2, 3, 4)
    passes = context.pass_map(4, 6)
    net = _fit().float_net(tiny, 1)
    want = np.zeros(2)
    for p in range(context.PASSES):
        known = np.where(passes[None] < p, codes, 6)
        logits = np.asarray(net((known, above)), np.float64)
        prob = np.exp(logits - logits.max(-1, keepdims=True))
        prob /= prob.sum(-1, keepdims=True)
        picked = np.take_along_axis(prob, codes[..., None], -1)[..., 0]
        want -= (np.log2(picked) * (passes == p)).sum(axis=(1, 2))
    np.testing.assert_allclose(_fit().float_bits(tiny, 1, codes, above), want, rtol=1e-5)


def test_priors_files_round_trip_and_damaged_files_are_codec_errors(tiny, tmp_path):
    path = tmp_path / "tiny.context.npz"
    tiny.save(path)
    back = context.ContextPriors.load(path)
    assert back.digest == tiny.digest and back.source == "test" and sorted(back.configs) == [1, 2]
    rng = np.random.default_rng(2)
    codes, above = _codes(rng, 2, 4, 4, 6), _codes(rng, 2, 2, 2, 4)
    fit = _fit()
    np.testing.assert_array_equal(fit.float_log_probs(back, 1, codes, above, 2),
                                  fit.float_log_probs(tiny, 1, codes, above, 2))
    np.testing.assert_array_equal(back.tables(1, codes, above, 2), tiny.tables(1, codes, above, 2))
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CodecError, match="Refit them with"):
        context.ContextPriors.load(tmp_path / "cut.npz")
    nets = {l: (tiny.configs[l], tiny.weights[l]) for l in tiny.configs}
    nets[1] = fit.context_net(6, 4, 2, width=8, depth=2, embed=4)
    assert context.ContextPriors("tiny", "00" * 8, nets).digest != tiny.digest


def test_layers_that_can_have_a_context_prior():
    hqa = codec.load_model("hqa_digits")[0].code_layout()
    assert context.layer_factors(hqa) == {1: 2, 2: 2, 3: 2, 4: 2}  # the 1x1 top has no context
    with pytest.raises(ValueError, match="sends its layers together"):
        codec.fit_context("rrvq_digits", images=np.zeros((2, 32, 32, 1), np.uint8), steps=1, verbose=False)


def test_fitting_lowers_the_cross_entropy_of_the_training_codes():
    from tfvq.codec.coding import encode_layers
    from tfvq.data import load_numpy

    images = load_numpy("digits", "train", limit=48)
    fit = _fit()
    fitted = fit.fit_context("hqa_digits", images=images, layers=[2], steps=60, batch_size=16, shifts=0,
                                 width=16, depth=1, embed=8, verbose=False)
    assert sorted(fitted.configs) == [2] and "layer 2" in fitted.source
    model = codec.load_model("hqa_digits")[0]
    codes = encode_layers(model, images, {2, 3})
    fresh = context.ContextPriors("hqa_digits", fitted.weights_hash,
                                  {2: fit.context_net(256, 256, 2, width=16, depth=1, embed=8)})
    before = fit.float_bits(fresh, 2, codes[2], codes[3]).mean()
    after = fit.float_bits(fitted, 2, codes[2], codes[3]).mean()
    assert after < 0.6 * before, (before, after)


# ---------------------------------------------------------------------------------------------- coding
@pytest.fixture(scope="module")
def digits():
    from tfvq.data import embedded

    return np.asarray(embedded.digits("test")[:6])


@pytest.mark.parametrize("layer", [1, 3])
def test_context_coded_files_decode_to_the_models_decode_of_its_codes(digits, layer):
    hqa = codec.load_model("hqa_digits")[0]
    data = codec.compress(digits, "hqa_digits", layer, coder="context")
    header = codec.read_header(data)
    assert header.layers == tuple(range(layer, 6))
    # the 1x1 top has no context prior: the static one
    assert header.coders == {**{l: container.CONTEXT for l in range(layer, 5)}, 5: container.STATIC}
    for j in header.layers:  # one file, every rate; the Keras model's images exactly (backend="tensorflow")
        np.testing.assert_array_equal(codec.decompress(data, layer=j, backend="tensorflow"),
                                      hqa.decode(hqa.encode(digits, j), j, dtype="uint8").numpy())


def _payload(data):
    """The coded stream of a version 4 file, in bytes (every layer's codes; no header, no CRC)."""
    return len(codec.read_header(data).stream)


def test_bundled_context_priors_make_layer_1_files_smaller_than_static(digits):
    static = _payload(codec.compress(digits, "hqa_digits", 1, coder="static"))
    ctx = _payload(codec.compress(digits, "hqa_digits", 1, coder="context"))
    ctx_file = codec.compress(digits, "hqa_digits", 1, coder="context")
    auto = codec.compress(digits, "hqa_digits", 1)
    assert ctx < 0.6 * static, (ctx, static)
    # auto keeps the smallest whole file of its plans, the context one among them
    assert len(auto) <= len(ctx_file) and container.CONTEXT in codec.read_header(auto).coders.values()


def test_a_context_coded_file_needs_the_same_context_priors(digits, monkeypatch, tmp_path):
    import keras

    from tfvq.codec import files

    data = codec.compress(digits[:2], "hqa_digits", 2, coder="context")
    assert container.CONTEXT in codec.read_header(data).coders.values()
    model, digest = codec.load_model("hqa_digits")
    bundled = files.zoo.prior_paths(model)
    other = context.ContextPriors.load(bundled["context"])

    def priors_at(context_path):  # the bundled static prior, the context priors at `context_path`
        monkeypatch.setattr(files.zoo, "prior_paths", lambda m: {**bundled, "context": str(context_path)})

    priors_at(tmp_path / "none.context.npz")  # no context priors at all (where the zoo says: TensorFlow's path)
    with pytest.raises(CodecError, match="with context priors, which these weights"):
        codec.decompress(data, backend="tensorflow")
    keras.utils.set_random_seed(7)
    nets = {l: (other.configs[l], other.weights[l]) for l in other.configs}
    nets[2] = _fit().context_net(**other.configs[2])  # fresh weights for layer 2, the same weights hash
    context.ContextPriors(other.model, other.weights_hash, nets).save(tmp_path / "other.context.npz")
    priors_at(tmp_path / "other.context.npz")
    with pytest.raises(CodecError, match="made with other weights or priors of 'hqa_digits'"):
        codec.decompress(data, backend="tensorflow")
    priors_at(bundled["context"])  # the priors it was made with decode it
    np.testing.assert_array_equal(codec.decompress(data, backend="tensorflow"), codec.decompress(
        codec.compress(digits[:2], "hqa_digits", 2, coder="context")))


def test_fit_priors_command_writes_both_priors_beside_the_weights_and_files_use_them(tmp_path, digits, capsys):
    import shutil

    from tfvq import data
    from tfvq import cli
    from tfvq.zoo import registry

    weights = tmp_path / "mine.weights.h5"
    shutil.copy(registry.bundled_weights_path("hqa_digits"), weights)
    np.save(tmp_path / "train.npy", np.round(data.load_numpy("digits", "train", limit=24) * 255).astype(np.uint8))
    assert cli.main(["fit-priors", "--model=hqa_digits", f"--weights={weights}",
                     f"--images={tmp_path / 'train.npy'}", "--context_steps=3"]) == 0
    out = capsys.readouterr().out
    assert "given images" in out and "layer 1" in out  # the training split of the 24 (a .npy has one)
    assert (tmp_path / "mine.prior.json").exists() and (tmp_path / "mine.context.npz").exists()
    data_ = codec.compress(digits[:2], "hqa_digits", 2, coder="context", weights=weights)
    assert container.CONTEXT in codec.read_header(data_).coders.values()
    hqa = codec.load_model("hqa_digits")[0]
    np.testing.assert_array_equal(codec.decompress(data_, weights=weights),
                                  hqa.decode(hqa.encode(digits[:2], 2), 2, dtype="uint8").numpy())


@pytest.mark.parametrize("count", [1, 6])
def test_auto_writes_the_smaller_whole_file_of_the_layer_alone_and_the_chain(digits, count):
    for layer in (1, 2):
        sizes = [len(codec.compress(digits[:count], "hqa_digits", layer, coder=c)) for c in ("static", "context")]
        assert len(codec.compress(digits[:count], "hqa_digits", layer)) <= min(sizes)


@pytest.mark.parametrize("config", [dict(num_codes=6, above_codes=4, factor=2, width=8, depth=0, embed=4, mix=5),
                                    dict(num_codes=6, above_codes=None, factor=1, width=8, depth=2, embed=4, mix=5)])
def test_a_priors_file_is_checked_against_the_shapes_its_configs_imply(config, tmp_path):
    import subprocess
    import sys

    net = _fit().context_net(**config)
    assert [tuple(w.shape) for w in net.get_weights()] == context.weight_shapes(config)
    priors = context.ContextPriors("tiny", "00" * 8, {1: net})
    priors.save(tmp_path / "ok.npz")
    back = context.ContextPriors.load(tmp_path / "ok.npz")
    assert back.digest == priors.digest
    # no Keras network is built to read it (nor to code with it): a fresh process loads it without Keras
    probe = ("import sys; from tfvq.codec import context; "
             f"p = context.ContextPriors.load({str(tmp_path / 'ok.npz')!r}); p.integer_net(1); "
             "print(p.digest.hex(), 'keras' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == [priors.digest.hex(), "False", "False"]
    bad = {1: (config, [w[..., :1] if w.ndim == 4 else w for w in net.get_weights()])}
    context.ContextPriors("tiny", "00" * 8, bad).save(tmp_path / "bad.npz")
    with pytest.raises(CodecError, match="expected float32"):
        context.ContextPriors.load(tmp_path / "bad.npz")


def test_bundled_hqa_digits_layer_1_files_take_at_most_a_quarter_of_the_fixed_bits():
    from tfvq.data import embedded

    images = np.asarray(embedded.digits("test"))  # the whole test split, as the README's figure
    data = codec.compress(images, "hqa_digits", 1)
    assert codec.read_header(data).images == len(images)
    bits = 8 * _payload(data) / len(images)  # the coded stream; the header and CRC add 25 bytes to the file
    assert bits <= 0.25 * 2048, bits  # a quarter of the fixed 2048 bits (measured: about 423)
    # ... and so does the coded stream of one-image files (their mean; the container adds ~24 bytes to each)
    one = [8 * _payload(codec.compress(images[i:i + 1], "hqa_digits", 1)) for i in range(20)]
    assert np.mean(one) <= 0.25 * 2048, one
