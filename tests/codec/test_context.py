"""Learned context priors (`tfvq.codec.context`): the pass schedule, the networks, their files, and coding."""

import numpy as np
import pytest

from tfvq import codec
from tfvq.codec import coded, context
from tfvq.codec.format import CodecError


@pytest.fixture(scope="module")
def tiny():
    """Untrained context priors of a two-layer layout: layer 1 (K=6, twice layer 2's grid), layer 2 (K=4)."""
    import keras

    keras.utils.set_random_seed(3)
    nets = {1: context.context_net(6, 4, 2, width=8, depth=2, embed=4), 2: context.context_net(4, None, 1, width=8,
                                                                                                depth=1, embed=4)}
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
    for p in range(context.PASSES):
        changed = np.where(passes[None] >= p, _codes(rng, 3, 6, 8, 6), codes)
        np.testing.assert_array_equal(tiny.log_probs(1, changed, above, p), tiny.log_probs(1, codes, above, p))
    # ... and does read the layer above and, after pass 0, the earlier passes.
    assert not np.allclose(tiny.log_probs(1, codes, (above + 1) % 4, 0), tiny.log_probs(1, codes, above, 0))
    changed = np.where(passes[None] == 0, (codes + 1) % 6, codes)
    assert not np.allclose(tiny.log_probs(1, changed, above, 1), tiny.log_probs(1, codes, above, 1))


def test_bits_are_the_cross_entropy_of_each_pass_softmax(tiny):
    rng = np.random.default_rng(1)
    codes, above = _codes(rng, 2, 4, 6, 6), _codes(rng, 2, 2, 3, 4)
    passes = context.pass_map(4, 6)
    want = np.zeros(2)
    for p in range(context.PASSES):
        known = np.where(passes[None] < p, codes, 6)
        logits = np.asarray(tiny.nets[1]((known, above)), np.float64)
        prob = np.exp(logits - logits.max(-1, keepdims=True))
        prob /= prob.sum(-1, keepdims=True)
        picked = np.take_along_axis(prob, codes[..., None], -1)[..., 0]
        want -= (np.log2(picked) * (passes == p)).sum(axis=(1, 2))
    np.testing.assert_allclose(tiny.bits(1, codes, above), want, rtol=1e-5)


def test_priors_files_round_trip_and_damaged_files_are_codec_errors(tiny, tmp_path):
    path = tmp_path / "tiny.context.npz"
    tiny.save(path)
    back = context.ContextPriors.load(path)
    assert back.digest == tiny.digest and back.source == "test" and sorted(back.nets) == [1, 2]
    rng = np.random.default_rng(2)
    codes, above = _codes(rng, 2, 4, 4, 6), _codes(rng, 2, 2, 2, 4)
    np.testing.assert_array_equal(back.log_probs(1, codes, above, 2), tiny.log_probs(1, codes, above, 2))
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CodecError, match="Refit them with"):
        context.ContextPriors.load(tmp_path / "cut.npz")
    nets = dict(tiny.nets)
    nets[1] = context.context_net(6, 4, 2, width=8, depth=2, embed=4)
    assert context.ContextPriors("tiny", "00" * 8, nets).digest != tiny.digest


def test_layers_that_can_have_a_context_prior():
    hqa = codec.load_model("hqa_digits")[0].code_layout()
    assert context.layer_factors(hqa) == {1: 2, 2: 2, 3: 2, 4: 2}  # the 1x1 top has no context
    with pytest.raises(ValueError, match="sends its layers together"):
        context.fit_context("rrvq_digits", images=np.zeros((2, 32, 32, 1), np.uint8), steps=1, verbose=False)


def test_fitting_lowers_the_cross_entropy_of_the_training_codes():
    from tfvq.codec.coding import encode_layers
    from tfvq.data import load_numpy

    images = load_numpy("digits", "train", limit=48)
    fitted = context.fit_context("hqa_digits", images=images, layers=[2], steps=60, batch_size=16, shifts=0,
                                 width=16, depth=1, embed=8, verbose=False)
    assert sorted(fitted.nets) == [2] and "layer 2" in fitted.source
    model = codec.load_model("hqa_digits")[0]
    codes = encode_layers(model, images, {2, 3})
    fresh = context.ContextPriors("hqa_digits", fitted.weights_hash,
                                  {2: context.context_net(256, 256, 2, width=16, depth=1, embed=8)})
    before = fresh.bits(2, codes[2], codes[3]).mean()
    after = fitted.bits(2, codes[2], codes[3]).mean()
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
    assert [c.coder for c in header.chunks] == [coded.STATIC] + [coded.CONTEXT] * (5 - layer)
    for j in header.layers:  # one file, every rate
        np.testing.assert_array_equal(codec.decompress(data, layer=j),
                                      hqa.decode(hqa.encode(digits, j), j, dtype="uint8").numpy())


def _payload(data):
    return sum(len(c.data) for c in coded.parse(data).chunks)


def test_bundled_context_priors_make_layer_1_files_smaller_than_static(digits):
    static = _payload(codec.compress(digits, "hqa_digits", 1, coder="static"))
    ctx = _payload(codec.compress(digits, "hqa_digits", 1, coder="context"))
    auto = codec.compress(digits, "hqa_digits", 1)
    assert ctx < 0.6 * static, (ctx, static)
    assert _payload(auto) <= ctx and coded.CONTEXT in [c.coder for c in codec.read_header(auto).chunks]


def test_a_context_coded_file_needs_the_same_context_priors(digits, monkeypatch, tmp_path):
    data = codec.compress(digits[:2], "hqa_digits", 2, coder="context")
    other = context.load_context("hqa_digits", *codec.load_model("hqa_digits"))
    monkeypatch.setattr(context, "context_path_for", lambda name, weights=None: str(tmp_path / "none.npz"))
    with pytest.raises(CodecError, match="with context priors, which these weights"):
        codec.decompress(data)
    nets = {l: (other.configs[l], other.weights[l]) for l in other.configs}
    nets[2] = context.context_net(**other.configs[2])  # fresh weights for layer 2
    context.ContextPriors(other.model, other.weights_hash, nets).save(tmp_path / "other.npz")
    monkeypatch.setattr(context, "context_path_for", lambda name, weights=None: str(tmp_path / "other.npz"))
    with pytest.raises(CodecError, match="coded with other static and context priors"):
        codec.decompress(data)


def test_fit_priors_command_writes_both_priors_beside_the_weights_and_files_use_them(tmp_path, digits, capsys):
    import shutil

    from tfvq import data
    from tfvq.codec import cli
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
    assert coded.CONTEXT in [c.coder for c in codec.read_header(data_).chunks]
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
    net = context.context_net(**config)
    assert [tuple(w.shape) for w in net.get_weights()] == context.weight_shapes(config)
    priors = context.ContextPriors("tiny", "00" * 8, {1: net})
    priors.save(tmp_path / "ok.npz")
    back = context.ContextPriors.load(tmp_path / "ok.npz")  # no Keras network is built to read it
    assert back.digest == priors.digest and not back._nets
    bad = {1: (config, [w[..., :1] if w.ndim == 4 else w for w in net.get_weights()])}
    context.ContextPriors("tiny", "00" * 8, bad).save(tmp_path / "bad.npz")
    with pytest.raises(CodecError, match="expected float32"):
        context.ContextPriors.load(tmp_path / "bad.npz")


def test_bundled_hqa_digits_layer_1_files_take_at_most_a_quarter_of_the_fixed_bits():
    from tfvq.data import embedded

    images = np.asarray(embedded.digits("test"))  # the whole test split, as the README's figure
    data = codec.compress(images, "hqa_digits", 1)
    bits = 8 * _payload(data) / len(images)
    assert bits <= 0.25 * 2048, bits  # the target; the README reports 423.1
