"""Training: strategies, the loop (greedy HQA, end-to-end RRVQ-VAE), RAdam and schedules."""

from tfvq.train.loop import TrainOptions, Trainer, train
from tfvq.train.optimizers import RAdam
from tfvq.train.schedules import CosineAnnealFinalFraction, ReduceOnPlateau, linear_anneal
from tfvq.train.strategies import STRATEGIES, is_chief, make_strategy, split_cpu

__all__ = [
    "RAdam",
    "CosineAnnealFinalFraction",
    "ReduceOnPlateau",
    "linear_anneal",
    "STRATEGIES",
    "is_chief",
    "make_strategy",
    "split_cpu",
    "TrainOptions",
    "Trainer",
    "train",
]
