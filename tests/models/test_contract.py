"""One harness over every zoo entry, and over a family of one's own: the model contract of `tfvq.models.contract`.

Each entry is built at a tiny configuration derived from its own (narrower
networks, fewer codes, one latent layer per grid size), registered as
`tiny(<name>)` (`tfvq.zoo.tiny`), and checked (entries with the same tiny model, the same
architecture for two datasets, are one case) by every check of `CHECKS`:
forward and backward with finite values, a `.keras` round trip with equal
outputs, uint8 and float images giving the same codes,
`decode(encode(x)) == reconstruct(x, stochastic=False)`, a SavedModel whose
signatures equal the Python model, a `.tfvq` round trip, and clear errors for
bad input. Adding a zoo entry adds its tests with no new test code; a family
from a folder outside the package (tests/models/data/tiny_family), registered
with `tfvq.zoo.register_presets`, passes the same checks.
"""

import importlib
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq import codec, zoo
from tfvq.export import saved_model as sm
from tfvq.models import CodeModel, ImageModel
from tfvq.zoo.tiny import register_tiny, tiny_config

NAMES = zoo.list_models()


def _unique_cases(names):
    """Entries grouped by their tiny model: entries whose tiny (family, config) coincide (the same
    architecture for two datasets, e.g. rrvq_cifar10 and rrvq_svhn) are one case, named after all of them."""
    groups = {}
    for name in names:
        entry = zoo.get(name)
        key = repr((entry.family, sorted(tiny_config(dict(entry.config)).items())))
        groups.setdefault(key, []).append(name)
    return [pytest.param(group[0], id="+".join(group)) for group in groups.values()]


def contract_case(name, tmp_path_factory):
    """(name, model with perturbed weights, a weights file of it, uint8 images, float images) of a zoo entry."""
    keras.utils.set_random_seed(0)
    model = zoo.build(name)
    rng = np.random.default_rng(1)
    for v in model.trainable_variables:  # away from the seeded init: a reload must read the weights
        v.assign(v + 0.02 * rng.standard_normal(v.shape).astype(np.float32))
    path = str(tmp_path_factory.mktemp("weights") / "model.weights.h5")
    model.save_weights(path)
    pixels = rng.integers(0, 256, size=(2,) + model.image_shape).astype(np.uint8)
    return name, model, path, pixels, pixels.astype(np.float32) / 255.0


@pytest.fixture(scope="module", params=_unique_cases(NAMES))
def case(request, tmp_path_factory):
    """The contract case of a zoo entry at its tiny configuration."""
    return contract_case(register_tiny(request.param), tmp_path_factory)


FAMILY_FOLDER = pathlib.Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def family_case(tmp_path_factory):
    """The contract case of the one entry of the family in tests/models/data/tiny_family, registered from its folder
    with `tfvq.zoo.register_presets` for this module's tests and unregistered after them."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(FAMILY_FOLDER))
        presets = importlib.import_module("tiny_family.presets")
    (entry,) = zoo.register_presets(presets)
    try:
        yield contract_case(entry.name, tmp_path_factory)
    finally:
        zoo.unregister_presets(presets)


def check_the_contract_kinds(case, tmp_path):
    _, model, _, _, _ = case
    assert isinstance(model, ImageModel)
    layout = model.code_layout()
    assert (layout is None) == (not isinstance(model, CodeModel))
    if layout is not None:
        assert len(layout.grids) == len(layout.num_codes) == layout.num_layers
        assert layout.layers_sent(None) == layout.layers_sent(layout.default_layer)
        assert model.bits() == layout.bits(layout.default_layer) > 0


def check_forward_and_every_stage_backward_are_finite(case, tmp_path):
    _, model, _, _, x = case
    out = model(x)
    assert out.shape == x.shape and np.all(np.isfinite(out.numpy()))
    recipe = zoo.get(case[0]).train  # the entry's typed recipe (tfvq.models.recipes)
    for stage in model.training_stages(recipe, steps=2):
        if stage.setup is not None:
            stage.setup(x)
        stage.before_step(tf.constant(0, tf.int64))
        variables = stage.variables()
        with tf.GradientTape() as tape:
            terms = stage.loss(tf.constant(x), tf.constant([0, 1], tf.int32))
        grads = tape.gradient(terms["loss"], variables)
        assert np.isfinite(float(terms["loss"])), stage.name
        present = [g for g in grads if g is not None]
        assert present and all(np.all(np.isfinite(tf.convert_to_tensor(g).numpy())) for g in present), stage.name


def check_keras_file_round_trip_gives_equal_outputs(case, tmp_path):
    _, model, _, pixels, x = case
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.reconstruct(pixels).numpy(), model.reconstruct(pixels).numpy())
    if model.code_layout() is not None:
        for a, b in zip(tf.nest.flatten(loaded.encode(x)), tf.nest.flatten(model.encode(x))):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def check_uint8_and_float_images_give_the_same_codes_and_images_come_back_as_given(case, tmp_path):
    _, model, _, pixels, x = case
    assert model.reconstruct(pixels).dtype == tf.uint8 and model.reconstruct(x).dtype == tf.float32
    np.testing.assert_array_equal(model.reconstruct(pixels).numpy(),
                                  np.round(np.clip(model.reconstruct(x).numpy(), 0, 1) * 255).astype(np.uint8))
    layout = model.code_layout()
    if layout is None:
        return
    for layer in range(1, layout.num_layers + 1):
        for a, b in zip(tf.nest.flatten(model.encode(pixels, layer)), tf.nest.flatten(model.encode(x, layer))):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def check_decode_of_encode_is_the_deterministic_reconstruction_at_every_layer(case, tmp_path):
    _, model, _, _, x = case
    layout = model.code_layout()
    if layout is None:
        pytest.skip("no discrete codes")
    np.testing.assert_allclose(model.decode(model.encode(x)).numpy(),
                               model.reconstruct(x, stochastic=False).numpy(), atol=1e-5)
    for layer in range(1, layout.num_layers + 1):
        codes = model.encode(x, layer)
        sent = layout.layers_sent(layer)
        flat = tf.nest.flatten(codes)
        assert len(flat) == len(sent)
        for l, c in zip(sent, flat):
            assert c.dtype == tf.int32 and tuple(c.shape) == (2,) + tuple(layout.grids[l - 1])
        np.testing.assert_allclose(model.decode(codes, layer).numpy(), model.reconstruct(x, layer).numpy(),
                                   atol=1e-5)
        seeded = model.decode(codes, layer, stochastic=True, seed=3).numpy()
        np.testing.assert_array_equal(seeded, model.decode(codes, layer, stochastic=True, seed=(3, 0)).numpy())


def check_the_saved_model_signatures_equal_the_python_model(case, tmp_path):
    name, model, _, pixels, _ = case
    # The default layer's code signatures (every layer's are tested in tests/export): tracing is the cost.
    layers = None if model.code_layout() is None else [model.code_layout().default_layer]
    endpoints = model.serving_endpoints(layers=layers)
    path = sm.export_saved_model(model, str(tmp_path), "m", layers=layers, warmup_images=pixels)
    signatures = tf.saved_model.load(path).signatures
    names = {n for e in endpoints for n in (e.name, *e.aliases)}
    assert set(signatures.keys()) == names and "serving_default" in names
    assert sm.custom_ops(path) == []
    for endpoint in endpoints:
        inputs = {k: tf.constant(v) for k, v in endpoint.warmup(pixels[:1]).items()}
        got = signatures[endpoint.name](**inputs)
        want = endpoint(**inputs)
        assert set(got) == set(want), endpoint.name
        for key in want:
            np.testing.assert_allclose(got[key].numpy(), tf.convert_to_tensor(want[key]).numpy(), rtol=1e-5,
                                       atol=1e-5, err_msg=f"{endpoint.name}/{key}")
        if any(s.name == "images" for s in endpoint.input_signature):
            assert next(s for s in endpoint.input_signature if s.name == "images").dtype == tf.uint8


def check_a_tfvq_file_round_trips_to_the_decoded_codes(case, tmp_path):
    name, model, weights, pixels, _ = case
    if model.code_layout() is None:
        with pytest.raises(codec.CodecError, match="no discrete codes|continuous"):
            codec.compress(pixels, name, weights=weights)
        return
    data = codec.compress(pixels, name, weights=weights)
    decoded = codec.decompress(data, weights=weights)
    # The weights as saved (the backward test above moved running statistics of the shared model).
    reference = zoo.load(name, weights=weights)
    np.testing.assert_array_equal(decoded, reference.decode(reference.encode(pixels), dtype="uint8").numpy())


BAD_IMAGES = [
    (lambda m: np.zeros((2,) + m.image_shape, np.int32), TypeError, "uint8"),
    (lambda m: np.zeros((2,) + m.image_shape[:2] + (m.image_shape[2] + 1,), np.float32), ValueError, "shape"),
    (lambda m: np.zeros(m.image_shape, np.float32), ValueError, "batch"),
    (lambda m: np.full((1,) + m.image_shape, 1.5, np.float32), ValueError, r"\[0, 1\]"),
]


def check_bad_images_raise_errors_naming_what_was_expected(case, tmp_path):
    _, model, _, _, _ = case
    methods = [model.reconstruct] + ([model.encode] if model.code_layout() is not None else [])
    methods += [getattr(model, m) for m in ("bits_per_dim", "elbo") if hasattr(model, m)]
    for bad, error, match in BAD_IMAGES:
        for method in methods:
            with pytest.raises(error, match=match):
                method(bad(model))


def check_a_bad_seed_raises_value_error(case, tmp_path):
    _, model, _, pixels, _ = case
    for seed in ("7", 1.5, (1, 2, 3), [[1, 2]], True, 2**40):
        with pytest.raises(ValueError, match="seed must be None, an int or a pair of ints"):
            model.reconstruct(pixels, stochastic=True, seed=seed)
        if hasattr(model, "sample"):
            with pytest.raises(ValueError, match="seed must be"):
                model.sample(1, seed=seed)


def check_bad_layers_and_codes_raise_value_errors(case, tmp_path):
    _, model, _, pixels, _ = case
    layout = model.code_layout()
    if layout is None:
        pytest.skip("no discrete codes")
    for layer in (0, layout.num_layers + 1, 1.0, "1"):
        with pytest.raises(ValueError, match=r"layer must be an integer in 1\.\."):
            model.encode(pixels, layer)
    codes = tf.nest.flatten(model.encode(pixels))
    k = layout.num_codes[layout.default_layer - 1]
    with pytest.raises(ValueError, match=rf"in \[0, {k - 1}\]"):
        model.decode([codes[0] + k] + codes[1:])
    with pytest.raises(TypeError, match="integers"):
        model.decode([tf.cast(c, tf.float32) for c in codes])
    with pytest.raises(ValueError, match="Expected the codes of"):
        model.decode(codes + codes)


CHECKS = [check_the_contract_kinds, check_forward_and_every_stage_backward_are_finite,
          check_keras_file_round_trip_gives_equal_outputs,
          check_uint8_and_float_images_give_the_same_codes_and_images_come_back_as_given,
          check_decode_of_encode_is_the_deterministic_reconstruction_at_every_layer,
          check_the_saved_model_signatures_equal_the_python_model, check_a_tfvq_file_round_trips_to_the_decoded_codes,
          check_bad_images_raise_errors_naming_what_was_expected, check_a_bad_seed_raises_value_error,
          check_bad_layers_and_codes_raise_value_errors]
"""Every check of the contract: `check(case, tmp_path)`, skipped (`pytest.skip`) where it does not apply."""


def _name(check):
    return check.__name__.removeprefix("check_")


@pytest.mark.parametrize("check", CHECKS, ids=_name)
def test_every_zoo_entry_keeps_the_contract(case, check, tmp_path):
    check(case, tmp_path)


@pytest.mark.parametrize("check", CHECKS, ids=_name)
def test_a_family_registered_from_its_own_folder_keeps_the_contract(family_case, check, tmp_path):
    check(family_case, tmp_path)


def test_a_registered_family_is_a_family_of_the_zoo_until_it_is_unregistered(family_case):
    name = family_case[0]
    assert zoo.list_models("tiny_vq*") == [name] and zoo.get(name).family == "tiny_vq"
    assert type(zoo.build(name)).__name__ == "TinyVQ" and zoo.info(name)["bits_per_layer"] == {1: 48}
