"""Learning-rate schedules: the learning rate for each epoch from the base rate.

Each is called once per epoch with the epoch just finished (and, for ReduceOnPlateau, the
validation loss) and returns the rate for the next epoch. State is plain numbers
(`state`/`load_state`) so a checkpoint can restore it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import ConfigError


class Schedule:
    def __call__(self, base_lr: float, epoch: int, val_loss: float | None = None) -> float:
        raise NotImplementedError

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass


@dataclass
class Constant(Schedule):
    def __call__(self, base_lr, epoch, val_loss=None):
        return base_lr


@dataclass
class StepDecay(Schedule):
    """Epoch k (from 0) runs at base * gamma^((k - start) // every + 1) from epoch `start` on,
    at the base rate before. Zaremba et al. 2014, small model: start=4, gamma=0.5, every=1;
    torch's StepLR(step_size=s): start=s, every=s."""
    gamma: float = 0.5
    every: int = 1
    start: int = 1

    def __post_init__(self) -> None:
        if self.start < 1 or self.every < 1:
            raise ConfigError(f"start, every: expected ints >= 1, got {self.start}, {self.every}")

    def __call__(self, base_lr, epoch, val_loss=None):
        k = epoch + 1                                           # the epoch about to start
        return base_lr if k < self.start else base_lr * self.gamma ** ((k - self.start) // self.every + 1)


@dataclass
class Exponential(Schedule):
    gamma: float = 0.95

    def __call__(self, base_lr, epoch, val_loss=None):
        return base_lr * self.gamma ** (epoch + 1)


@dataclass
class CosineAnnealing(Schedule):
    total_epochs: int = 10
    min_lr: float = 0.0

    def __call__(self, base_lr, epoch, val_loss=None):
        t = min(epoch + 1, self.total_epochs) / self.total_epochs
        return self.min_lr + 0.5 * (base_lr - self.min_lr) * (1 + math.cos(math.pi * t))


@dataclass
class ReduceOnPlateau(Schedule):
    """Multiply the rate by `factor` when the validation loss has not improved by more than
    `threshold` (relative) for `patience` epochs."""
    factor: float = 0.5
    patience: int = 1
    threshold: float = 1e-4
    best: float = math.inf
    bad_epochs: int = 0
    scale: float = 1.0

    def __call__(self, base_lr, epoch, val_loss=None):
        if val_loss is None:
            raise ConfigError("val_loss: ReduceOnPlateau needs the validation loss every epoch")
        if val_loss < self.best * (1 - self.threshold):
            self.best, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                self.scale *= self.factor
                self.bad_epochs = 0
        return base_lr * self.scale

    def state(self) -> dict:
        return asdict(self)

    def load_state(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)


SCHEDULES = {"constant": Constant, "step": StepDecay, "exponential": Exponential,
             "cosine": CosineAnnealing, "plateau": ReduceOnPlateau}
