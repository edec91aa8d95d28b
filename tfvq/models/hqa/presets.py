"""HQA's presets (HQA Tables 9, 10 and 14): the paper's configurations, and the VQ-VAE baseline.

Data beside the family's code: `FAMILIES` (family name -> model class) and `PRESETS` (the entries), which
the zoo finds and registers (`tfvq.zoo.registry`). Every family folder has its `presets` module: the one name
the zoo looks for.
"""

from tfvq.models.hqa.hqa_model import HQA
from tfvq.models.hqa.hqa_recipes import HQARecipe, VQVAERecipe
from tfvq.models.hqa.vqvae import VQVAE
from tfvq.models.preset import ZooEntry

FAMILIES = {"hqa": HQA, "vqvae": VQVAE}

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

# HQA App. C.1 and Table 10: batch 512, 18000 steps per layer, RAdam at 4e-4 cosine-annealed over the final
# third, temperature 0.66 -> 0.01, resets in the first 75% of the steps (App. C.4): `HQARecipe`'s defaults.
_MNIST_TRAIN = HQARecipe(steps=(18000,) * 5)

HQA_MNIST = ZooEntry(
    name="hqa_mnist",
    family="hqa",
    config=dict(image_shape=(32, 32, 1), layers=_MNIST_LAYERS),
    train=_MNIST_TRAIN,
    dataset="mnist",
    paper=HQA_PAPER,
    table="HQA Table 10, App. C.1",
    description="HQA on MNIST 32x32: 5 layers, 16x16 -> 1x1 codes of 256 (2048 -> 8 bits); bundled weights",
    # The bundled weights: the paper's recipe scaled to about 20 minutes of a 2-core CPU in bfloat16, on the
    # 7996 real training digits of `mnist10k`: batch 128 instead of 512, a higher learning rate, k-means++
    # codebooks, and most steps for the 8-bit top layer (cheap: a 1x1 code), whose codes Table 3 classifies.
    weights_recipe=_MNIST_TRAIN.replace(batch_size=128, steps=(4000, 2000, 2000, 3000, 12000), learning_rate=2e-3,
                                        codebook_init=("kmeans++",) * 5),
    weights_dataset="mnist10k",
    bundled_weights="hqa_mnist.weights.h5",
    weights_command="tfvq train --model=hqa_mnist --bundled_recipe --precision=mixed_bfloat16 "
                    "--model_dir=runs/hqa_mnist",
)

# HQA Table 9 (CelebA 64x64): 7 layers; layer 1 keeps the 64x64 size (input 64 -> 64), then each halves
# it down to a 1x1 code of 512 (9 bits). 8x8 codes (layer 4) are the 576-bit rate of HQA Table 1.
HQA_CELEBA64 = ZooEntry(
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
    train=HQARecipe(
        batch_size=1024,
        steps=(100000, 100000, 100000, 100000, 60000, 30000, 30000),
        initial_temperature=0.4,  # App. C.1: 0.4 for CelebA
    ),
    dataset="celeb_a",
    paper=HQA_PAPER,
    table="HQA Table 9, App. C.1",
    description="HQA on CelebA 64x64: 7 layers, 64x64 -> 1x1 codes of 512 (36864 -> 9 bits)",
)

# HQA Table 14, column L5: the VQ-VAE baseline at HQA layer 5's rate (1x1 code, 8 bits), Table 3's "VQ-VAE".
VQVAE_MNIST = ZooEntry(
    name="vqvae_mnist",
    family="vqvae",
    config=dict(image_shape=(32, 32, 1), num_downsamples=5, encoder_hidden=78, decoder_hidden=22,
                num_codes=256, code_dim=64, commitment_cost=0.125),
    train=VQVAERecipe(),  # HQA App. C.3, Table 14 (MNIST): batch 512, 18000 steps, RAdam at 4e-4, cosine tail
    dataset="mnist",
    paper=HQA_PAPER,
    table="HQA Table 14 (L5), Table 3",
    description="VQ-VAE baseline on MNIST 32x32 at 8 bits (1x1 code of 256), trained end to end; bundled weights",
    # The bundled weights: `hqa_mnist`'s CPU recipe (batch 128, learning rate 2e-3) on `mnist10k`, for as many
    # steps as the whole HQA stack takes (23000): the baseline of Table 3 gets the same number of updates.
    weights_recipe=VQVAERecipe(batch_size=128, steps=(23000,), learning_rate=2e-3),
    weights_dataset="mnist10k",
    bundled_weights="vqvae_mnist.weights.h5",
    weights_command="tfvq train --model=vqvae_mnist --bundled_recipe --precision=mixed_bfloat16 "
                    "--model_dir=runs/vqvae_mnist",
)

# The MNIST architecture on scikit-learn's embedded 8x8 digits (resized to 32x32): trains on a CPU in minutes.
HQA_DIGITS = ZooEntry(
    name="hqa_digits",
    family="hqa",
    config=dict(image_shape=(32, 32, 1), layers=_MNIST_LAYERS),
    # The paper's recipe scaled to a 5-minute CPU budget: batch 64, a higher learning rate, and more of the
    # steps for the upper layers, whose steps are cheap (a 1x1 code costs little) and which learn slowest.
    # Layer 1's codebook starts from k-means++ on its z_e: with the paper's random codebook and App. C.4's one
    # reset per 20 batches, it collapsed to 2 of its 256 codes in this short recipe. The 8-bit top layer gets
    # the most steps: its accuracy rose from 0.50 at 800 steps to 0.83 at 2400 (README, Evaluation).
    # When its resets end, layer 1 keeps its 20 most used codes (`retire_codes`): with the 176 codes it used
    # before, its context-coded files cost 31% of the fixed 2048 bits; with 20, 21%, and its MSE fell by two
    # thirds (README, Quickstart and Compression to files).
    train=_MNIST_TRAIN.replace(batch_size=64, steps=(1200, 400, 800, 800, 2400), learning_rate=2e-3,
                               codebook_init=("kmeans++", "random", "random", "random", "random"),
                               keep_codes=(20, None, None, None, None)),
    dataset="digits",
    paper=HQA_PAPER,
    table="HQA Table 10 architecture; embedded digits data",
    description="HQA (Table 10 architecture) on the embedded 8x8 digits resized to 32x32; bundled weights",
    bundled_weights="hqa_digits.weights.h5",
    weights_command="python train.py --model=hqa_digits --model_dir=runs/hqa_digits",
)


# HQA Table 3's ablated systems (§6.2): hqa_mnist's stack with the switches of `tfvq.models.hqa.hqa_model` (its
# docstring). HAMs (De Fauw et al. 2019; HQA App. C.2) use a commitment coefficient of 0.02 (Table 12); the rows
# without HQA's probabilistic loss take it for their VQ-VAE terms (eq. 2). The network stays hqa_mnist's (Table
# 10) in every row, so a row differs from the next by its switches alone; Table 12's HAMs decoders are a little
# narrower (16, 26, 40, 58, 96), and a "codes" decoder ends in K = 256 logits. The recipe is Table 12's: batch 256,
# 18000 steps per layer, learning rate 4e-4 (Table 12 lowers it to 1e-4 for layer 5; one rate here); the GS rows
# keep HQA's temperature anneal and resets (App. C.1, C.4).
_HAMS_LAYERS = tuple(dict(layer, commitment_cost=0.02) for layer in _MNIST_LAYERS)
_HAMS_TRAIN = HQARecipe(batch_size=256, steps=(18000,) * 5, learning_rate=4e-4)


def _ablation(name, row, quantizer, target):
    return ZooEntry(
        name=name,
        family="hqa",
        config=dict(image_shape=(32, 32, 1), layers=_HAMS_LAYERS, quantizer=quantizer, target=target,
                    probabilistic_loss=False),
        train=_HAMS_TRAIN,
        dataset="mnist",
        paper=HQA_PAPER,
        table=f"HQA Table 3 ({row}), App. C.2, Table 12",
        description=f"HQA Table 3's {row!r} system on MNIST 32x32: hqa_mnist's stack, quantizer={quantizer!r}, "
                    f"target={target!r}, no probabilistic loss",
    )


HQA_MNIST_HAMS = _ablation("hqa_mnist_hams", "+ hierarchy (HAMs)", "vq", "codes")
HQA_MNIST_HAMS_GS = _ablation("hqa_mnist_hams_gs", "HAMs + GS", "gumbel", "codes")
HQA_MNIST_HAMS_MSE = _ablation("hqa_mnist_hams_mse", "HAMs + MSE", "vq", "z_e")
HQA_MNIST_HAMS_GS_MSE = _ablation("hqa_mnist_hams_gs_mse", "HAMs + GS + MSE", "gumbel", "z_e")

PRESETS = (HQA_MNIST, HQA_CELEBA64, VQVAE_MNIST, HQA_DIGITS, HQA_MNIST_HAMS, HQA_MNIST_HAMS_GS, HQA_MNIST_HAMS_MSE,
           HQA_MNIST_HAMS_GS_MSE)
