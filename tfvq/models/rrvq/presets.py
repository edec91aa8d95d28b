"""The RRVQ presets: RRVQ-VAEs (RRVQ Table 1, App. C, App. F), the rVQ-VAE and Spatial-VAE baselines.

Data beside the family's code: `FAMILIES` (family name -> model class) and `PRESETS` (the entries), which
the zoo finds and registers (`tfvq.zoo.registry`). Every family folder has its `presets` module: the one name
the zoo looks for.
"""

from tfvq.models.preset import ZooEntry
from tfvq.models.rrvq.rrvq_recipe import HierarchicalVAERecipe
from tfvq.models.rrvq.rrvq_vae import RRVQVAE
from tfvq.models.rrvq.spatial_vae import SpatialVAE

FAMILIES = {"rrvq_vae": RRVQVAE, "spatial_vae": SpatialVAE}

RRVQ_PAPER = "Willetts et al., Relaxed-Responsibility Hierarchical Discrete VAEs"


def rrvq_recipe(train_size, epochs, patience, **changes):
    """RRVQ App. C: AdaMax, batch 64, lr 8e-4 times 0.8 when the test ELBO has not improved for `patience`
    epochs, floor 5e-5, up to `epochs` epochs. One evaluation period is one epoch of steps.
    (`HierarchicalVAERecipe.for_epochs`.)"""
    return HierarchicalVAERecipe.for_epochs(train_size, epochs, patience, **changes)


def _blocks_of_8(first):
    """RRVQ §4: 32 layers in 4 blocks of 8, the number of latents quartered (side halved) every 8 layers."""
    return tuple(first // 2**b for b in range(4) for _ in range(8))


_ENTRIES = []
_CIFAR_TRAIN = rrvq_recipe(50000, 500, 20)
_SVHN_TRAIN = rrvq_recipe(73257, 500, 20)
_CELEBA_TRAIN = rrvq_recipe(162770, 160, 5)

# RRVQ App. C, L = 32: 256-channel backbone, d_e = 32, K = 256 per layer, one ResNet block per enc/dec step,
# single-convolution ladders and straps. enc1 halves 32x32 images to the 16x16 grid of layers 1-8; the top
# block (2x2, 4 latents) is not a single variable, so its prior comes from a learnt d_33 (App. C, Fig. C.3).
_L32 = dict(code_dim=32, num_codes=256, channels=256, blocks_per_layer=1, strap_blocks=0, prior="embedding",
            covariance="diagonal", top_prior="learned")
# RRVQ App. F, L = 5: latents 16x16, 8x8, 4x4, 2x2, 1x1, K = 256, d_e = 128; App. C: 4 ResNet blocks between
# latents and in every ladder/strap network. The top is a single variable with a uniform prior (§3.3). The
# paper does not give the L = 5 backbone width: 128 channels here.
_L5 = dict(latent_sizes=(16, 8, 4, 2, 1), code_dim=128, num_codes=256, channels=128, blocks_per_layer=4,
           strap_blocks=4, prior="embedding", covariance="diagonal", top_prior="uniform")

for _data, _name, _train, _desc in (("cifar10", "cifar10", _CIFAR_TRAIN, "CIFAR-10"),
                                    ("svhn_cropped", "svhn", _SVHN_TRAIN, "SVHN")):
    _ENTRIES.append(ZooEntry(
        name=f"rrvq_{_name}", family="rrvq_vae",
        config=dict(image_shape=(32, 32, 3), latent_sizes=_blocks_of_8(16), **_L32),
        train=_train, dataset=_data, paper=RRVQ_PAPER, table="RRVQ Table 1, §4, App. C",
        description=f"RRVQ-VAE, L=32 on {_desc}: latents 16x16 (x8) .. 2x2 (x8), K=256, d_e=32",
    ))
    _ENTRIES.append(ZooEntry(
        name=f"rrvq_{_name}_l5", family="rrvq_vae",
        config=dict(image_shape=(32, 32, 3), **_L5),
        train=_train, dataset=_data, paper=RRVQ_PAPER, table="RRVQ Table G.1, App. C, App. F",
        description=f"RRVQ-VAE, L=5 on {_desc}: latents 16x16 .. 1x1, K=256, d_e=128",
    ))

# CelebA 64x64, L = 32: enc1 halves the image to the 32x32 grid of layers 1-8 (down to 4x4 at the top).
_ENTRIES.append(ZooEntry(
    name="rrvq_celeba64", family="rrvq_vae",
    config=dict(image_shape=(64, 64, 3), latent_sizes=_blocks_of_8(32), **_L32),
    train=_CELEBA_TRAIN, dataset="celeb_a", paper=RRVQ_PAPER, table="RRVQ Table 1, §4, App. C",
    description="RRVQ-VAE, L=32 on CelebA 64x64: latents 32x32 (x8) .. 4x4 (x8), K=256, d_e=32",
))
# RRVQ App. F: CelebA L = 5 keeps the 16x16 .. 1x1 latents, tapers K = 128, 64, 32, 16, 8 with d_e = 32 (2275
# bits per image) and narrows the networks (the width is not given: 64 channels here).
_ENTRIES.append(ZooEntry(
    name="rrvq_celeba64_l5", family="rrvq_vae",
    config=dict(_L5, image_shape=(64, 64, 3), num_codes=(128, 64, 32, 16, 8), code_dim=32, channels=64),
    train=_CELEBA_TRAIN, dataset="celeb_a", paper=RRVQ_PAPER, table="RRVQ App. F (Fig. F.9), App. C",
    description="RRVQ-VAE, L=5 on CelebA 64x64: K=128..8, d_e=32, 2275 bits of codes per image",
))

# Baselines of RRVQ Table 1. rVQ-VAE (RRVQ eq. 2, App. B): one layer of relaxed-VQ latents with unit
# variances and a uniform prior; App. B's network: 2 ResNet blocks of 32 channels, a latent per 2x2 pixels,
# d_e = K = 16.
_ENTRIES.append(ZooEntry(
    name="rvqvae_cifar10", family="rrvq_vae",
    config=dict(image_shape=(32, 32, 3), latent_sizes=(16,), num_codes=16, code_dim=16, channels=32,
                blocks_per_layer=2, strap_blocks=0, prior="embedding", covariance="unit", top_prior="uniform"),
    train=_CIFAR_TRAIN, dataset="cifar10", paper=RRVQ_PAPER, table="RRVQ Table 1, eq. 2, App. B",
    description="rVQ-VAE baseline on CIFAR-10: one 16x16 layer of relaxed VQ latents (K=d_e=16), uniform prior",
))
# Spatial-VAE (RRVQ Table 1): the L = 32 hierarchy with Gaussian latents of dimension d_e = 32.
_ENTRIES.append(ZooEntry(
    name="spatial_vae_cifar10", family="spatial_vae",
    config=dict(image_shape=(32, 32, 3), latent_sizes=_blocks_of_8(16), latent_dim=32, channels=256,
                blocks_per_layer=1, strap_blocks=0, top_prior="learned"),
    train=_CIFAR_TRAIN, dataset="cifar10", paper=RRVQ_PAPER, table="RRVQ Table 1, App. B",
    description="Spatial-VAE baseline, L=32 on CIFAR-10: the RRVQ hierarchy with 32-dim Gaussian latents",
))

# Small RRVQ-VAEs on the embedded datasets: the L = 5 latent layout at CPU size, with bundled weights.
_SMALL = dict(latent_sizes=(16, 8, 4, 2, 1), blocks_per_layer=1, strap_blocks=0, prior="embedding",
              covariance="diagonal", top_prior="uniform")
_ENTRIES.append(ZooEntry(
    name="rrvq_digits", family="rrvq_vae",
    config=dict(_SMALL, image_shape=(32, 32, 1), num_codes=32, code_dim=16, channels=32),
    train=rrvq_recipe(1500, 100, 5, eval_every=100, eval_examples=297, steps=(3000,)),
    dataset="digits", paper=RRVQ_PAPER, table="RRVQ L=5 layout (App. F) at CPU size; embedded digits data",
    description="RRVQ-VAE, L=5 layout, 32 channels, on the embedded digits (32x32x1); bundled weights",
    bundled_weights="rrvq_digits.weights.h5",
    weights_command="python train.py --model=rrvq_digits --model_dir=runs/rrvq_digits",
))
_ENTRIES.append(ZooEntry(
    name="rrvq_swatches", family="rrvq_vae",
    config=dict(_SMALL, image_shape=(32, 32, 3), num_codes=16, code_dim=8, channels=16),
    train=rrvq_recipe(900, 100, 5, eval_every=100, eval_examples=90, steps=(1500,)),
    dataset="swatches", paper=RRVQ_PAPER, table="RRVQ App. B colour swatches; L=5 layout at CPU size",
    description="RRVQ-VAE, L=5 layout, 16 channels, on the colour swatches of App. B; bundled weights",
    bundled_weights="rrvq_swatches.weights.h5",
    weights_command="python train.py --model=rrvq_swatches --model_dir=runs/rrvq_swatches",
))
# Real MNIST digits at their own 28x28 size (`mnist10k_28`): 28 = 2 x 14 = 4 x 7 cannot halve down to 1x1, so the
# L = 5 layers keep RRVQ's rule that a grid keeps its size or halves (§4: blocks of equal grids) with two layers
# of 14x14 latents and three of 7x7. Lossless files of 28x28 digits code them as they are, without resizing.
# The learning rate stays at 8e-4 (plateau patience beyond the run): RRVQ App. C lowers it on the test set's
# ELBO, and the bundled weights are not tuned on the test split. The bundled static prior chooses the top layer's
# codes by rate (`tfvq fit-priors --model=rrvq_mnist --rate_weights=5:2 --context_steps=0`): q is nearly flat
# there (15 bits of KL over 49 codes of 6 bits), so the codes gather on one and lossless files lose 23 bytes.
_ENTRIES.append(ZooEntry(
    name="rrvq_mnist", family="rrvq_vae",
    config=dict(_SMALL, image_shape=(28, 28, 1), latent_sizes=(14, 14, 7, 7, 7), num_codes=64, code_dim=16,
                channels=48),
    train=rrvq_recipe(7996, 500, 20),
    dataset="mnist10k_28", paper=RRVQ_PAPER, table="RRVQ L=5 (App. F) at CPU size; real MNIST at 28x28",
    description="RRVQ-VAE, L=5 (14x14 x2, 7x7 x3), 48 channels, on real 28x28 MNIST digits; bundled weights",
    weights_recipe=rrvq_recipe(7996, 500, 10**6, eval_every=500, eval_examples=512, steps=(6000,)),
    weights_dataset="mnist10k_28",
    bundled_weights="rrvq_mnist.weights.h5",
    weights_command="tfvq train --model=rrvq_mnist --bundled_recipe --model_dir=runs/rrvq_mnist",
))
PRESETS = tuple(_ENTRIES)
