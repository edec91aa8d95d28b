"""HQA layer 1's autoencoder around today's quantizers (`tfvq.models.quantized_ae.quantized_autoencoder`): for
every family, `decode(encode(x)) == reconstruct(x)` at every layer, the TFLite encoders' codes, the signatures,
configuration and `.keras` round trips, the families by name, and the network's argument checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq import zoo
from tfvq.models.quantized_ae import (QUANTIZERS, ComposedAutoencoder, FSQAutoencoder, LFQAutoencoder,
                                      QuantizedAutoencoder, RVQAutoencoder, VQAutoencoder, quantized_autoencoder)


def test_decode_of_encode_is_the_reconstruction_and_tflite_encoders_give_the_same_codes(digits):
    x = digits[:3]
    models = [zoo.build(name) for name in ("fsq_digits", "lfq_digits", "vq_digits", "rvq_digits")]
    cosine = zoo.build("vq_digits", distance="cosine")
    cosine.fit_codebooks(digits[:8])
    for model in models[:3] + [cosine] + models[3:]:
        layout = model.code_layout()
        np.testing.assert_array_equal(model.decode(model.encode(x)).numpy(), model(x).numpy())
        for layer in range(1, layout.num_layers + 1):
            codes = model.encode(x, layer)
            np.testing.assert_array_equal(model.decode(codes, layer).numpy(), model.reconstruct(x, layer).numpy())
            lite = model.tflite_encoder(layer)(tf.constant(x))
            names = ["codes"] if len(layout.layers_sent(layer)) == 1 else [
                f"codes_layer_{l}" for l in layout.layers_sent(layer)]
            assert sorted(lite) == sorted(names)
            for name, c in zip(names, tf.nest.flatten(codes)):
                np.testing.assert_array_equal(lite[name].numpy(), c.numpy())
        assert model.decode(model.encode(x), dtype="uint8").dtype == tf.uint8
        assert model.code_stride() == 2 and model.top_code_logits(2) is None
        endpoints = {n: e.name for e in model.serving_endpoints() for n in (e.name, *e.aliases)}
        assert not any(n.startswith("decode_seeded") for n in endpoints)  # nothing to sample
    assert {"encode_layer_1", "decode_layer_4", "reconstruct_layer_2"} <= set(endpoints)
    # the unsuffixed signatures are the default layer's: every stage
    assert (endpoints["encode"], endpoints["serving_default"]) == ("encode_layer_1", "reconstruct_layer_1")


@pytest.mark.parametrize("name,config", [("fsq_digits", {}), ("lfq_digits", {}), ("vq_digits", {}),
                                         ("vq_digits", {"distance": "cosine", "ema": True})])
def test_single_layer_families_round_trip_their_config_and_a_keras_file(name, config, digits, tmp_path):
    model = zoo.build(name, **config)
    if isinstance(model, VQAutoencoder):
        model.fit_codebooks(digits[:8])
    again = type(model).from_config(model.get_config())  # the same layout from the configuration alone
    assert again.get_config() == model.get_config() and again.code_layout() == model.code_layout()
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.encode(digits).numpy(), model.encode(digits).numpy())
    np.testing.assert_array_equal(loaded.reconstruct(digits).numpy(), model.reconstruct(digits).numpy())


def test_quantized_autoencoder_builds_each_family_by_its_quantizers_name():
    assert isinstance(quantized_autoencoder((8, 8, 1), "rvq", num_quantizers=2), RVQAutoencoder)
    assert isinstance(quantized_autoencoder((8, 8, 1)), FSQAutoencoder) and issubclass(FSQAutoencoder,
                                                                                        QuantizedAutoencoder)
    assert isinstance(quantized_autoencoder((8, 8, 1), "lfq", code_dim=3), LFQAutoencoder)
    assert isinstance(quantized_autoencoder((8, 8, 1), "vq", num_codes=4), VQAutoencoder)
    assert {q: c.quantizer_name for q, c in QUANTIZERS.items()} == {q: q for q in QUANTIZERS}
    assert isinstance(quantized_autoencoder((8, 8, 1), "composed", num_quantizers=2), ComposedAutoencoder)
    with pytest.raises(ValueError, match="quantizer must be one of 'composed', 'fsq', 'lfq', 'rvq', 'vq'"):
        quantized_autoencoder((32, 32, 1), "pq")


def test_the_network_checks_its_arguments():
    with pytest.raises(ValueError, match="H and W must be even"):
        FSQAutoencoder((31, 32, 1))
    with pytest.raises(ValueError, match=r"image_shape must be \(H, W, C\)"):
        RVQAutoencoder((32, 32))
    with pytest.raises(ValueError, match="encoder_hidden must be a positive integer"):
        FSQAutoencoder((32, 32, 1), encoder_hidden=2.5)
