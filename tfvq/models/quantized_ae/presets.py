"""The presets of today's quantizers: FSQ, lookup-free, VQ (rotation trick) and residual VQ in HQA layer 1's
autoencoder, on the digits; FSQ, residual FSQ, VQ (rotation trick) and SimVQ in the same network
(`ComposedAutoencoder`) on real digits (`mnist10k`), the bundled models of the comparison in
`tfvq.experiments.quantizers`.

Data beside the family's code: `FAMILIES` (family name -> model class) and `PRESETS` (the entries), which
the zoo finds and registers (`tfvq.zoo.registry`). Every family folder has its `presets` module: the one name
the zoo looks for.
Every entry uses HQA Table 10's layer-1 encoder and decoder (32x32x1 -> a 16x16 grid of codes -> 32x32x1),
trained end to end (`VQVAERecipe`, HQA App. C.3's optimiser) on the embedded 8x8 digits resized to 32x32,
with a recipe of a few minutes on a 2-core CPU (2.5 minutes each with the two side by side); bundled weights.
"""

from tfvq.models.hqa.hqa_recipes import VQVAERecipe
from tfvq.models.preset import ZooEntry
from tfvq.models.quantized_ae.codebook_ae import RVQAutoencoder, VQAutoencoder
from tfvq.models.quantized_ae.composed_ae import ComposedAutoencoder
from tfvq.models.quantized_ae.implicit_ae import FSQAutoencoder, LFQAutoencoder

FAMILIES = {"composed_ae": ComposedAutoencoder, "fsq_ae": FSQAutoencoder, "lfq_ae": LFQAutoencoder,
            "rvq_ae": RVQAutoencoder, "vq_ae": VQAutoencoder}

FSQ_PAPER = "Mentzer, Minnen, Agustsson, Tschannen, Finite Scalar Quantization: VQ-VAE Made Simple, 2023 (ICLR 2024)"
LFQ_PAPER = ("Yu et al., Language Model Beats Diffusion -- Tokenizer is Key to Visual Generation (MAGVIT-v2), 2023 "
             "(ICLR 2024)")
ROTATION_PAPER = "Fifty et al., Restructuring Vector Quantization with the Rotation Trick, 2024"
RVQ_PAPER = "Zeghidour, Luebs, Omran, Skoglund, Tagliasacchi, SoundStream: An End-to-End Neural Audio Codec, 2021"

# HQA Table 10, layer 1: encoder and decoder widths 16.
_LAYER_1 = dict(image_shape=(32, 32, 1), encoder_hidden=16, decoder_hidden=16)
# A CPU recipe: batch 64, 3000 steps at RAdam 2e-3 (hqa_digits' rate), cosine-annealed over the final third. On
# a busy 2-core CPU a step took about 35 ms (FSQ) and 60 ms (RVQ): 2 and 3 minutes.
_CPU_TRAIN = VQVAERecipe(batch_size=64, steps=(3000,), learning_rate=2e-3)

FSQ_DIGITS = ZooEntry(
    name="fsq_digits",
    family="fsq_ae",
    config=dict(_LAYER_1, levels=(8, 5, 5, 5)),
    train=_CPU_TRAIN,
    dataset="digits",
    paper=FSQ_PAPER,
    table="FSQ §3.1, Table 1 (levels 8,5,5,5); HQA Table 10 layer-1 encoder/decoder",
    description="FSQ autoencoder on the embedded digits (32x32x1): a 16x16 grid of 1000 codes (2560 bits)",
    bundled_weights="fsq_digits.weights.h5",
    weights_command="tfvq train --model=fsq_digits --model_dir=runs/fsq_digits",
)

# SoundStream §3.3: 4 stages of 32 codes (5 bits each per position), quantizer dropout, k-means codebooks on the
# first batch and codebook expiry. Layer l carries stages 1..(5 - l): 5120, 3840, 2560 (FSQ's rate), 1280 bits.
RVQ_DIGITS = ZooEntry(
    name="rvq_digits",
    family="rvq_ae",
    config=dict(_LAYER_1, num_quantizers=4, num_codes=32, code_dim=16, commitment_cost=0.25,
                quantizer_dropout=True, expire_codes_below=1.0),
    train=_CPU_TRAIN,
    dataset="digits",
    paper=RVQ_PAPER,
    table="SoundStream §3.3, Algorithm 1 (residual VQ, quantizer dropout); HQA Table 10 layer-1 encoder/decoder",
    description="Residual-VQ autoencoder on the embedded digits (32x32x1): 4 stages of 32 codes on a 16x16 grid, "
                "one rate per depth (1280..5120 bits)",
    bundled_weights="rvq_digits.weights.h5",
    weights_command="tfvq train --model=rvq_digits --model_dir=runs/rvq_digits",
)

# MAGVIT-v2 §3.1: 10 sign bits per position (1024 implicit codes, FSQ's rate), the paper's entropy penalty at
# weight 0.1 with diversity weight 1.
LFQ_DIGITS = ZooEntry(
    name="lfq_digits",
    family="lfq_ae",
    config=dict(_LAYER_1, code_dim=10, entropy_weight=1e-3, commitment_cost=1e-3, diversity_gamma=1.0),
    train=_CPU_TRAIN,
    dataset="digits",
    paper=LFQ_PAPER,
    table="MAGVIT-v2 §3.1 (lookup-free quantization, entropy penalty); HQA Table 10 layer-1 encoder/decoder",
    description="Lookup-free (sign) autoencoder on the embedded digits (32x32x1): a 16x16 grid of 10 bits "
                "(2560 bits)",
    bundled_weights="lfq_digits.weights.h5",
    weights_command="tfvq train --model=lfq_digits --model_dir=runs/lfq_digits",
)

# A VQ-VAE at FSQ's rate: 1024 codes of 16 dimensions (10 bits per position), k-means codebook on the first
# batch, codebook expiry, gradients by the rotation trick (Fifty et al. §4).
VQ_DIGITS = ZooEntry(
    name="vq_digits",
    family="vq_ae",
    config=dict(_LAYER_1, num_codes=1024, code_dim=16, commitment_cost=0.25, rotation_trick=True,
                expire_codes_below=1.0),
    train=_CPU_TRAIN,
    dataset="digits",
    paper=ROTATION_PAPER,
    table="Rotation trick §4; VQ-VAE (van den Oord et al. 2017); HQA Table 10 layer-1 encoder/decoder",
    description="VQ autoencoder with the rotation trick on the embedded digits (32x32x1): a 16x16 grid of 1024 "
                "codes (2560 bits)",
    bundled_weights="vq_digits.weights.h5",
    weights_command="tfvq train --model=vq_digits --model_dir=runs/vq_digits",
)

# Real digits (mnist10k, 32x32): the comparison's recipe (`tfvq.experiments.quantizers --dataset=mnist10k`), one
# network for every bottleneck (`ComposedAutoencoder`), 2000 steps at batch 64 in float32.
MNIST_TRAIN = VQVAERecipe(batch_size=64, steps=(2000,), learning_rate=2e-3)

# The bundled real-digit weights are seed 0 of their rows of the comparison (2048 bits per image), and
# `tfvq train --model=NAME` trains them again (the same recipe, dataset and seed).
_MNIST_VQ = {"name": "vq", "num_codes": 256, "code_dim": 16, "codebook_init": "kmeans"}
SIMVQ_PAPER = ("Zhu, Li, Zhang, Chen, Addressing Representation Collapse in Vector Quantized Models with One "
               "Linear Layer, 2024")


def _mnist_entry(name, quantizer, paper, table, description, num_quantizers=1):
    return ZooEntry(
        name=name,
        family="composed_ae",
        config=dict(_LAYER_1, quantizer=quantizer, num_quantizers=num_quantizers, groups=1),
        train=MNIST_TRAIN,
        dataset="mnist10k",
        paper=paper,
        table=f"{table}; HQA Table 10 layer-1 encoder/decoder",
        description=f"{description} on real MNIST digits at 32x32 (mnist10k): a 16x16 grid, 8 bits per position "
                    "(2048 bits)",
        bundled_weights=f"{name}.weights.h5",
        weights_command=f"tfvq train --model={name} --model_dir=runs/{name}",
    )


# FSQ Table 1's levels for 2^8 codes: (8, 6, 5), 240 implicit codes.
FSQ_MNIST = _mnist_entry("fsq_mnist", {"name": "fsq", "levels": [8, 6, 5]}, FSQ_PAPER,
                         "FSQ §3.1, Table 1 (levels 8,6,5)", "FSQ autoencoder")
# Residual FSQ: two stages of levels (5, 3) (15 codes, 4 bits each), stage 2 scaled by (5, 3) (`ResidualQuantizer`).
RFSQ_MNIST = _mnist_entry("rfsq_mnist", {"name": "fsq", "levels": [5, 3]}, FSQ_PAPER,
                          "FSQ §3.1 levels (5,3), residual over 2 stages (SoundStream §3.3, Algorithm 1)",
                          "Residual-FSQ autoencoder", num_quantizers=2)
# 256 learned codes of 16 dimensions, k-means on the first batch, gradients by the rotation trick.
VQ_MNIST = _mnist_entry("vq_mnist", dict(_MNIST_VQ, rotation_trick=True), ROTATION_PAPER,
                        "Rotation trick §4; VQ-VAE (van den Oord et al. 2017)", "VQ autoencoder (rotation trick)")
# 256 codes C W: C frozen at N(0, 1/16), W learned.
SIMVQ_MNIST = _mnist_entry("simvq_mnist", {"name": "simvq", "num_codes": 256, "code_dim": 16}, SIMVQ_PAPER,
                           "SimVQ §3 (frozen random codebook times one learned linear map)", "SimVQ autoencoder")

PRESETS = (FSQ_DIGITS, FSQ_MNIST, LFQ_DIGITS, RFSQ_MNIST, RVQ_DIGITS, SIMVQ_MNIST, VQ_DIGITS, VQ_MNIST)
