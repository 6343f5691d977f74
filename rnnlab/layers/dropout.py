"""Inverted dropout: scale kept units by 1/(1-p) in training, identity in evaluation."""

from __future__ import annotations

import numpy as np

from .. import _checks as check


def dropout_mask(shape: tuple[int, ...], p: float, rng: np.random.Generator,
                 dtype: np.dtype) -> np.ndarray:
    keep = 1.0 - p
    return (rng.random(shape) < keep).astype(dtype) / dtype.type(keep)


class Dropout:
    def __init__(self, p: float, rng: np.random.Generator) -> None:
        self.p = check.probability(p, "p")
        self.rng = rng
        self.training = True
        self._mask: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0:
            self._mask = None
            return x
        self._mask = dropout_mask(x.shape, self.p, self.rng, x.dtype)
        return x * self._mask

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy if self._mask is None else dy * self._mask
