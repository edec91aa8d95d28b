"""The papers' presets as data: every family's class (`FAMILIES`) and every named entry (`PRESETS`).

`hqa`: HQA and its VQ-VAE baseline (HQA Tables 9, 10, 14); `rrvq`: the RRVQ-VAEs and their baselines (RRVQ
Table 1, App. C, App. F); `modern`: today's quantizers in HQA layer 1's autoencoder (FSQ, Mentzer et al. 2023;
residual VQ, Zeghidour et al. 2021). The registry (`tfvq.zoo.registry`) registers them when it is imported.
"""

from tfvq.zoo.presets import hqa, modern, rrvq

FAMILIES = {**hqa.FAMILIES, **rrvq.FAMILIES, **modern.FAMILIES}
"""Family name -> model class."""
PRESETS = hqa.PRESETS + rrvq.PRESETS + modern.PRESETS
"""Every preset `ZooEntry`."""

__all__ = ["FAMILIES", "PRESETS", "hqa", "modern", "rrvq"]
