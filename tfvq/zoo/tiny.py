"""Tiny zoo entries: each entry's architecture at a size that builds, trains a step and compiles in seconds.

`register_tiny(name)` registers `tiny(<name>)`, the entry with `tiny_config` of its configuration and no
bundled weights; it is what the model-contract tests (tests/models/test_contract.py), the XLA and precision
tests of every family (tests/train) and `benchmarks/device_check.py --tiny` build. The recipe and dataset
are the entry's own.
"""

import numpy as np

from tfvq.zoo import registry

CAPS = {"channels": 8, "code_dim": 4, "latent_dim": 4, "encoder_hidden": 8, "decoder_hidden": 8, "num_codes": 8,
        "blocks_per_layer": 1, "strap_blocks": 0, "num_quantizers": 2}
"""The largest value a tiny configuration keeps of each of these keys (widths, counts of codes and blocks)."""


def tiny_config(config):
    """A small configuration of the same architecture: every width, count of codes and block count capped
    (`CAPS`; a residual VQ keeps 2 stages: still several cumulative layers), and one latent layer per distinct
    grid size (RRVQ's blocks of 8 layers become one each)."""
    if isinstance(config, dict):
        out = {}
        for key, value in config.items():
            if key in CAPS and isinstance(value, (int, np.integer)):
                out[key] = min(int(value), CAPS[key])
            elif key == "num_codes" and isinstance(value, (list, tuple)):
                out[key] = [min(int(k), CAPS[key]) for k in value]
            elif key == "latent_sizes":
                out[key] = [s for i, s in enumerate(value) if i == 0 or value[i - 1] != s]
            else:
                out[key] = tiny_config(value)
        if "latent_sizes" in out and isinstance(config.get("num_codes"), (list, tuple)):
            out["num_codes"] = out["num_codes"][: len(out["latent_sizes"])]
        return out
    if isinstance(config, (list, tuple)) and config and isinstance(config[0], dict):
        return [tiny_config(c) for c in config]
    return config


def tiny_name(name):
    """The registry name of `name`'s tiny entry: `tiny(<name>)`."""
    return f"tiny({name})"


def register_tiny(name):
    """Registers `tiny(<name>)` (once) and returns that name: the entry `name` with `tiny_config` of its
    configuration and no bundled weights."""
    entry = registry.get(name)
    if tiny_name(name) not in registry.list_models("tiny(*"):
        registry.register(registry.ZooEntry(**{**entry.__dict__, "name": tiny_name(name), "config": tiny_config(
            dict(entry.config)), "bundled_weights": None, "weights_command": None}))
    return tiny_name(name)


def one_per_family():
    """{family: the zoo entry of that family with the fewest pixels per image (ties: the first name)}: the
    entries whose tiny models stand for their families (HQA, VQ-VAE, RRVQ-VAE, Spatial-VAE, the quantized
    autoencoders) in tests that run every family."""
    out = {}
    for name in registry.list_models():
        if name.startswith("tiny("):
            continue
        entry = registry.get(name)
        pixels = int(np.prod(entry.config["image_shape"]))
        if entry.family not in out or pixels < out[entry.family][0]:
            out[entry.family] = (pixels, name)
    return {family: name for family, (_, name) in sorted(out.items())}
