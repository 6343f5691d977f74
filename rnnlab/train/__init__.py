"""Training: the loop (knows nothing about cells) and atomic, resumable checkpoints."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .loop import Task, TrainConfig, TrainResult, evaluate, train

__all__ = ["Task", "TrainConfig", "TrainResult", "evaluate", "train", "save_checkpoint", "load_checkpoint",
           "CheckpointError"]
