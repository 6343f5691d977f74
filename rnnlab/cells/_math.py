"""Activations written so that backward can use the saved outputs (`1 - y*y`)."""

import numpy as np


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """sigmoid(x) = 0.5 * tanh(0.5 x) + 0.5: one tanh, no exp overflow, exact in float64."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out
