"""Sums of probabilities kept as logarithms, shared by the CRF and CTC recursions."""

from __future__ import annotations

import numpy as np


def logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(exp(a))) over `axis`, stable (the largest term taken out first) and -inf where
    every term is -inf (an impossible path stays impossible, without NaN)."""
    m = a.max(axis, keepdims=True)
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return (safe + np.log(np.exp(a - safe).sum(axis, keepdims=True))).squeeze(axis)
