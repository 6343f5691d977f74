"""Optimizers (in-place updates of named arrays), gradient clipping and learning-rate schedules."""

from .clip import clip_grad_norm
from .optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from .schedules import CosineAnnealing, Exponential, ReduceOnPlateau, StepDecay, Schedule

OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Optimizer", "OPTIMIZERS",
           "clip_grad_norm", "StepDecay", "Exponential", "CosineAnnealing", "ReduceOnPlateau",
           "Schedule"]
