"""The named models of the zoo, with the papers' configurations."""

from tfvq.models.hqa import HQA
from tfvq.models.rrvq_vae import RRVQVAE
from tfvq.models.spatial_vae import SpatialVAE
from tfvq.models.vqvae import VQVAE
from tfvq.zoo.registry import ZooEntry, register, register_family

register_family("hqa", lambda config: HQA(**config))
register_family("vqvae", lambda config: VQVAE(**config))
register_family("rrvq_vae", lambda config: RRVQVAE(**config))
register_family("spatial_vae", lambda config: SpatialVAE(**config))

HQA_PAPER = "Williams et al., Hierarchical Quantized Autoencoders, NeurIPS 2020"


def _hqa_layers(enc_hidden, dec_hidden, num_codes, code_dim, dec_layers, dropout, beta, downsample):
    return tuple(
        dict(
            num_codes=num_codes,
            code_dim=code_dim,
            encoder_hidden=e,
            decoder_hidden=d,
            decoder_layers=dec_layers,
            dropout=p,
            downsample=s,
            entropy_cost=beta,
            commitment_cost=beta,
        )
        for e, d, p, s in zip(enc_hidden, dec_hidden, dropout, downsample)
    )


# HQA Table 10 (MNIST, 32x32): 5 layers down to a 1x1 code of 8 bits.
_MNIST_LAYERS = _hqa_layers(
    enc_hidden=(16, 16, 32, 48, 80),
    dec_hidden=(16, 32, 48, 80, 128),
    num_codes=256,
    code_dim=64,  # App. C.1: "Each code ... is represented by a 64 dimensional vector"
    dec_layers=3,
    dropout=(0.0,) * 5,
    beta=1e-3,
    downsample=(True,) * 5,
)
_MNIST_TRAIN = dict(
    batch_size=512,
    steps=(18000,) * 5,
    learning_rate=4e-4,
    cosine_fraction=1 / 3,
    initial_temperature=0.66,
    final_temperature=0.01,
    reset_fraction=0.75,
    clip_norm=1.0,
)

register(
    ZooEntry(
        name="hqa_mnist",
        family="hqa",
        config=dict(image_shape=(32, 32, 1), layers=_MNIST_LAYERS),
        train=_MNIST_TRAIN,
        dataset="mnist",
        paper=HQA_PAPER,
        table="HQA Table 10, App. C.1",
        description="HQA on MNIST 32x32: 5 layers, 16x16 -> 1x1 codes of 256 (2048 -> 8 bits)",
    )
)

# HQA Table 9 (CelebA 64x64): 7 layers; layer 1 keeps the 64x64 size (input 64 -> 64), then each halves
# it down to a 1x1 code of 512 (9 bits). 8x8 codes (layer 4) are the 576-bit rate of HQA Table 1.
register(
    ZooEntry(
        name="hqa_celeba64",
        family="hqa",
        config=dict(
            image_shape=(64, 64, 3),
            layers=_hqa_layers(
                enc_hidden=(64, 64, 512, 512, 512, 512, 512),
                dec_hidden=(64, 64, 512, 512, 512, 512, 512),
                num_codes=512,
                code_dim=64,
                dec_layers=6,
                dropout=(0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5),
                beta=5e-5,
                downsample=(False,) + (True,) * 6,
            ),
        ),
        train=dict(
            batch_size=1024,
            steps=(100000, 100000, 100000, 100000, 60000, 30000, 30000),
            learning_rate=4e-4,
            cosine_fraction=1 / 3,
            initial_temperature=0.4,
            final_temperature=0.01,
            reset_fraction=0.75,
            clip_norm=1.0,
        ),
        dataset="celeb_a",
        paper=HQA_PAPER,
        table="HQA Table 9, App. C.1",
        description="HQA on CelebA 64x64: 7 layers, 64x64 -> 1x1 codes of 512 (36864 -> 9 bits)",
    )
)

# HQA Table 14, column L5: the VQ-VAE baseline at HQA layer 5's rate (1x1 code, 8 bits), Table 3's "VQ-VAE".
register(
    ZooEntry(
        name="vqvae_mnist",
        family="vqvae",
        config=dict(image_shape=(32, 32, 1), num_downsamples=5, encoder_hidden=78, decoder_hidden=22,
                    num_codes=256, code_dim=64, commitment_cost=0.125),
        train=dict(batch_size=512, steps=(18000,), learning_rate=4e-4, cosine_fraction=1 / 3, clip_norm=1.0),
        dataset="mnist",
        paper=HQA_PAPER,
        table="HQA Table 14 (L5), Table 3",
        description="VQ-VAE baseline on MNIST 32x32 at 8 bits (1x1 code of 256), trained end to end",
    )
)

# The MNIST architecture on scikit-learn's embedded 8x8 digits (resized to 32x32): trains on a CPU in minutes.
register(
    ZooEntry(
        name="hqa_digits",
        family="hqa",
        config=dict(image_shape=(32, 32, 1), layers=_MNIST_LAYERS),
        # The paper's recipe scaled to a 5-minute CPU budget: batch 64, a higher learning rate, and more of the
        # steps for the upper layers, whose steps are cheap (a 1x1 code costs little) and which learn slowest.
        train=dict(_MNIST_TRAIN, batch_size=64, steps=(300, 400, 800, 800, 800), learning_rate=2e-3),
        dataset="digits",
        paper=HQA_PAPER,
        table="HQA Table 10 architecture; embedded digits data",
        description="HQA (Table 10 architecture) on the embedded 8x8 digits resized to 32x32; bundled weights",
        bundled_weights="hqa_digits.weights.h5",
        weights_command="python train.py --model=hqa_digits --model_dir=runs/hqa_digits",
    )
)


# ----------------------------------------------------------------------------------------------- RRVQ-VAE
RRVQ_PAPER = "Willetts et al., Relaxed-Responsibility Hierarchical Discrete VAEs"


def rrvq_recipe(train_size, epochs, patience, **overrides):
    """RRVQ App. C: AdaMax, batch 64, lr 8e-4 times 0.8 when the test ELBO has not improved for `patience`
    epochs, floor 5e-5, up to `epochs` epochs. One evaluation period is one epoch of steps."""
    epoch = -(-train_size // 64)
    recipe = dict(batch_size=64, steps=(epochs * epoch,), optimizer="adamax", learning_rate=8e-4,
                  plateau_factor=0.8, plateau_patience=patience, min_learning_rate=5e-5, eval_every=epoch,
                  eval_examples=2048, clip_norm=200.0)
    recipe.update(overrides)
    return recipe


def _blocks_of_8(first):
    """RRVQ §4: 32 layers in 4 blocks of 8, the number of latents quartered (side halved) every 8 layers."""
    return tuple(first // 2**b for b in range(4) for _ in range(8))


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
    register(ZooEntry(
        name=f"rrvq_{_name}", family="rrvq_vae",
        config=dict(image_shape=(32, 32, 3), latent_sizes=_blocks_of_8(16), **_L32),
        train=_train, dataset=_data, paper=RRVQ_PAPER, table="RRVQ Table 1, §4, App. C",
        description=f"RRVQ-VAE, L=32 on {_desc}: latents 16x16 (x8) .. 2x2 (x8), K=256, d_e=32",
    ))
    register(ZooEntry(
        name=f"rrvq_{_name}_l5", family="rrvq_vae",
        config=dict(image_shape=(32, 32, 3), **_L5),
        train=_train, dataset=_data, paper=RRVQ_PAPER, table="RRVQ Table G.1, App. C, App. F",
        description=f"RRVQ-VAE, L=5 on {_desc}: latents 16x16 .. 1x1, K=256, d_e=128",
    ))

# CelebA 64x64, L = 32: enc1 halves the image to the 32x32 grid of layers 1-8 (down to 4x4 at the top).
register(ZooEntry(
    name="rrvq_celeba64", family="rrvq_vae",
    config=dict(image_shape=(64, 64, 3), latent_sizes=_blocks_of_8(32), **_L32),
    train=_CELEBA_TRAIN, dataset="celeb_a", paper=RRVQ_PAPER, table="RRVQ Table 1, §4, App. C",
    description="RRVQ-VAE, L=32 on CelebA 64x64: latents 32x32 (x8) .. 4x4 (x8), K=256, d_e=32",
))
# RRVQ App. F: CelebA L = 5 keeps the 16x16 .. 1x1 latents, tapers K = 128, 64, 32, 16, 8 with d_e = 32 (2275
# bits per image) and narrows the networks (the width is not given: 64 channels here).
register(ZooEntry(
    name="rrvq_celeba64_l5", family="rrvq_vae",
    config=dict(_L5, image_shape=(64, 64, 3), num_codes=(128, 64, 32, 16, 8), code_dim=32, channels=64),
    train=_CELEBA_TRAIN, dataset="celeb_a", paper=RRVQ_PAPER, table="RRVQ App. F (Fig. F.9), App. C",
    description="RRVQ-VAE, L=5 on CelebA 64x64: K=128..8, d_e=32, 2275 bits of codes per image",
))

# Baselines of RRVQ Table 1. rVQ-VAE (RRVQ eq. 2, App. B): one layer of relaxed-VQ latents with unit
# variances and a uniform prior; App. B's network: 2 ResNet blocks of 32 channels, a latent per 2x2 pixels,
# d_e = K = 16.
register(ZooEntry(
    name="rvqvae_cifar10", family="rrvq_vae",
    config=dict(image_shape=(32, 32, 3), latent_sizes=(16,), num_codes=16, code_dim=16, channels=32,
                blocks_per_layer=2, strap_blocks=0, prior="embedding", covariance="unit", top_prior="uniform"),
    train=_CIFAR_TRAIN, dataset="cifar10", paper=RRVQ_PAPER, table="RRVQ Table 1, eq. 2, App. B",
    description="rVQ-VAE baseline on CIFAR-10: one 16x16 layer of relaxed VQ latents (K=d_e=16), uniform prior",
))
# Spatial-VAE (RRVQ Table 1): the L = 32 hierarchy with Gaussian latents of dimension d_e = 32.
register(ZooEntry(
    name="spatial_vae_cifar10", family="spatial_vae",
    config=dict(image_shape=(32, 32, 3), latent_sizes=_blocks_of_8(16), latent_dim=32, channels=256,
                blocks_per_layer=1, strap_blocks=0, top_prior="learned"),
    train=_CIFAR_TRAIN, dataset="cifar10", paper=RRVQ_PAPER, table="RRVQ Table 1, App. B",
    description="Spatial-VAE baseline, L=32 on CIFAR-10: the RRVQ hierarchy with 32-dim Gaussian latents",
))

# Small RRVQ-VAEs on the embedded datasets: the L = 5 latent layout at CPU size, with bundled weights.
_SMALL = dict(latent_sizes=(16, 8, 4, 2, 1), blocks_per_layer=1, strap_blocks=0, prior="embedding",
              covariance="diagonal", top_prior="uniform")
register(ZooEntry(
    name="rrvq_digits", family="rrvq_vae",
    config=dict(_SMALL, image_shape=(32, 32, 1), num_codes=32, code_dim=16, channels=32),
    train=rrvq_recipe(1500, 100, 5, eval_every=100, eval_examples=297, steps=(3000,)),
    dataset="digits", paper=RRVQ_PAPER, table="RRVQ L=5 layout (App. F) at CPU size; embedded digits data",
    description="RRVQ-VAE, L=5 layout, 32 channels, on the embedded digits (32x32x1); bundled weights",
    bundled_weights="rrvq_digits.weights.h5",
    weights_command="python train.py --model=rrvq_digits --model_dir=runs/rrvq_digits",
))
register(ZooEntry(
    name="rrvq_swatches", family="rrvq_vae",
    config=dict(_SMALL, image_shape=(32, 32, 3), num_codes=16, code_dim=8, channels=16),
    train=rrvq_recipe(900, 100, 5, eval_every=100, eval_examples=90, steps=(1500,)),
    dataset="swatches", paper=RRVQ_PAPER, table="RRVQ App. B colour swatches; L=5 layout at CPU size",
    description="RRVQ-VAE, L=5 layout, 16 channels, on the colour swatches of App. B; bundled weights",
    bundled_weights="rrvq_swatches.weights.h5",
    weights_command="python train.py --model=rrvq_swatches --model_dir=runs/rrvq_swatches",
))
