"""The tiny family's presets: its class (`FAMILIES`) and one entry (`PRESETS`), as a family folder of `tfvq.models`
holds them."""

from tfvq.models import Recipe
from tfvq.models.preset import ZooEntry

from tiny_family.tiny_vq import TinyVQ

FAMILIES = {"tiny_vq": TinyVQ}

PRESETS = (
    ZooEntry(
        name="tiny_vq_digits",
        family="tiny_vq",
        config=dict(image_shape=(8, 8, 1), num_codes=8, code_dim=4),
        train=Recipe(batch_size=16, steps=(200,), learning_rate=1e-2),
        dataset="digits",
        paper="van den Oord, Vinyals, Kavukcuoglu, Neural Discrete Representation Learning, 2017",
        table="a family of one's own (tests/models/data/tiny_family)",
        description="A VQ autoencoder of one code per 2x2 patch on the 8x8 digits: 16 codes of 3 bits",
    ),
)
