"""Finite differences, for checking any backward pass against its forward pass."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import DTypeError


def numeric_grad(f: Callable[[], float], a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f / d a by central differences, perturbing `a` in place (and restoring it).

    `f` takes no arguments and reads `a` through a closure; use float64 arrays.
    """
    if a.dtype != np.float64:
        raise DTypeError(f"a: expected float64 for finite differences, got {a.dtype}")
    g = np.zeros_like(a)
    it = np.nditer(a, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = a[i]
        a[i] = old + eps
        fp = f()
        a[i] = old - eps
        fm = f()
        a[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def max_rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max |a - n| / max(1, |a| + |n|) elementwise: relative where values are large."""
    return float(np.max(np.abs(analytic - numeric) / np.maximum(1.0, np.abs(analytic) + np.abs(numeric)),
                        initial=0.0))
