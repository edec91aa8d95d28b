"""Tiny zoo entries (`tfvq.zoo.tiny`): the small configuration of an architecture, its registration under
`tiny(<name>)`, and the one entry that stands for each family."""

import numpy as np

from tfvq import zoo
from tfvq.zoo import tiny


def test_widths_and_counts_are_capped_and_everything_else_is_kept():
    config = {"image_shape": (32, 32, 3), "channels": 256, "code_dim": 2, "num_codes": np.int64(512),
              "blocks_per_layer": 4, "strap_blocks": 1, "num_quantizers": 8, "prior": "embedding", "dropout": 0.5,
              "layers": ({"encoder_hidden": 80, "decoder_hidden": 4, "num_codes": 256, "downsample": True},
                         {"encoder_hidden": 16, "decoder_layers": 3})}
    assert tiny.tiny_config(config) == {
        "image_shape": (32, 32, 3), "channels": 8, "code_dim": 2, "num_codes": 8, "blocks_per_layer": 1,
        "strap_blocks": 0, "num_quantizers": 2, "prior": "embedding", "dropout": 0.5,
        "layers": [{"encoder_hidden": 8, "decoder_hidden": 4, "num_codes": 8, "downsample": True},
                   {"encoder_hidden": 8, "decoder_layers": 3}]}
    assert config["channels"] == 256 and config["layers"][0]["encoder_hidden"] == 80  # the entry's own is untouched


def test_one_latent_layer_per_grid_size_and_one_codebook_size_each():
    config = {"latent_sizes": (16, 16, 16, 8, 8, 4, 2, 2, 1), "num_codes": (128, 128, 64, 64, 32, 16, 16, 8, 4)}
    assert tiny.tiny_config(config) == {"latent_sizes": [16, 8, 4, 2, 1], "num_codes": [8, 8, 8, 8, 8]}
    # A grid size that comes back after another is a layer of its own.
    assert tiny.tiny_config({"latent_sizes": [4, 4, 2, 4], "code_dim": 3}) == {"latent_sizes": [4, 2, 4], "code_dim": 3}


def test_a_tiny_entry_is_registered_once_with_the_tiny_config_and_no_bundled_weights():
    name = tiny.register_tiny("hqa_digits")
    assert name == tiny.tiny_name("hqa_digits") == "tiny(hqa_digits)"
    assert tiny.register_tiny("hqa_digits") == name and zoo.list_models("tiny(hqa_digits)") == [name]
    entry, original = zoo.get(name), zoo.get("hqa_digits")
    assert entry.config == tiny.tiny_config(dict(original.config))
    assert [layer["num_codes"] for layer in entry.config["layers"]] == [8] * 5
    assert entry.bundled_weights is None and entry.weights_command is None and original.bundled_weights
    assert (entry.family, entry.dataset, entry.train) == (original.family, original.dataset, original.train)


def test_each_family_is_stood_for_by_its_entry_with_the_fewest_pixels():
    chosen = tiny.one_per_family()
    names = [n for n in zoo.list_models() if not n.startswith("tiny(")]
    assert set(chosen) == {zoo.get(n).family for n in names} and list(chosen) == sorted(chosen)
    for family, name in chosen.items():
        pixels = int(np.prod(zoo.get(name).config["image_shape"]))
        same = [n for n in names if zoo.get(n).family == family]
        assert zoo.get(name).family == family
        assert all(pixels <= int(np.prod(zoo.get(n).config["image_shape"])) for n in same)
        assert name == min(n for n in same if int(np.prod(zoo.get(n).config["image_shape"])) == pixels)
