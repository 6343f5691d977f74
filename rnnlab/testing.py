"""Finite differences, for checking any backward pass against its forward pass."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .errors import DTypeError


def numeric_grad(f: Callable[[], float], a: np.ndarray, eps: float = 1e-6, *,
                 at: Sequence[tuple[int, ...]] | None = None) -> np.ndarray:
    """d f / d a by central differences, perturbing `a` in place (and restoring it).

    `f` takes no arguments and reads `a` through a closure; use float64 arrays. `at`, a list of
    index tuples, differentiates only those entries (a sample of a large array) and returns
    their derivatives as a 1-D array, in that order.
    """
    if a.dtype != np.float64:
        raise DTypeError(f"a: expected float64 for finite differences, got {a.dtype}")
    where = list(np.ndindex(a.shape)) if at is None else [tuple(i) for i in at]
    d = np.empty(len(where))
    for k, i in enumerate(where):
        old = a[i]
        a[i] = old + eps
        fp = f()
        a[i] = old - eps
        fm = f()
        a[i] = old
        d[k] = (fp - fm) / (2 * eps)                  # central difference
    return d.reshape(a.shape) if at is None else d


def max_rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max |a - n| / max(1, |a| + |n|) elementwise: relative where values are large."""
    return float(np.max(np.abs(analytic - numeric) / np.maximum(1.0, np.abs(analytic) + np.abs(numeric)),
                        initial=0.0))
