"""Losses and their gradients, as pure functions: (value, d value / d prediction).

No clipping, no parameter updates: a loss only measures. `ctc_loss` (Connectionist Temporal
Classification) lives in rnnlab.ctc beside its decoders. Means are over the counted elements
(unmasked positions), as torch's `reduction="mean"` with `ignore_index`.
"""

from __future__ import annotations

import numpy as np

from .ctc import ctc_loss
from .errors import ConfigError, ShapeError, ValueRangeError

__all__ = ["log_softmax", "softmax_cross_entropy", "binary_cross_entropy_with_logits", "mean_squared_error",
           "ctc_loss"]


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)                          # stable: largest logit is 0
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def softmax_cross_entropy(logits: np.ndarray, targets: np.ndarray,
                          mask: np.ndarray | None = None, label_smoothing: float = 0.0,
                          grad: bool = True) -> tuple[float, np.ndarray | None]:
    """Mean negative log-likelihood of `targets` (...,) under softmax(`logits`) (..., V).

    `mask` (...,) is True (or 1) where a position counts; returns (loss, dlogits), dlogits None
    with `grad=False` (evaluation: two passes over the (N, V) array fewer).
    `label_smoothing` e, as torch's cross_entropy: the target is (1 - e) onehot + e / V, so a
    position's loss is (1 - e) (-log p_target) + e mean_k(-log p_k).
    """
    if not (isinstance(label_smoothing, (int, float)) and 0.0 <= label_smoothing <= 1.0):
        raise ConfigError(f"label_smoothing: expected a number in [0, 1], got {label_smoothing!r}")
    if logits.shape[:-1] != targets.shape:
        raise ShapeError(f"targets: expected shape {logits.shape[:-1]} (logits without the class "
                         f"axis), got {targets.shape}")
    V = logits.shape[-1]
    if targets.size and (targets.min() < 0 or targets.max() >= V):
        raise ValueRangeError(f"targets: expected class ids in [0, {V}), got min {targets.min()} "
                              f"and max {targets.max()}")
    m = np.ones(targets.shape, dtype=logits.dtype) if mask is None else mask.astype(logits.dtype)
    if m.shape != targets.shape:
        raise ShapeError(f"mask: expected shape {targets.shape}, got {m.shape}")
    n = max(float(m.sum()), 1.0)
    z, t, w = logits.reshape(-1, V), targets.reshape(-1), m.reshape(-1) / n   # (N, V), (N,), (N,)
    rows = np.arange(len(t))
    g = z - z.max(-1, keepdims=True)                          # (N, V): the one array of that size
    e = float(label_smoothing)
    picked = g[rows, t]                                       # the targets' shifted logits
    if e:
        picked = (1 - e) * picked + e * g.mean(-1)            # the smoothed target's mean logit
    np.exp(g, out=g)                                          # stable: the largest is 1
    s = g.sum(-1)                                             # (N,)
    loss = -((picked - np.log(s)) * w).sum()                  # log p = z - log sum exp z
    if not grad:
        return float(loss), None
    g *= (w / s)[:, None]                                     # softmax, weighted
    g[rows, t] -= (1 - e) * w                                 # - the smoothed target
    if e:
        g -= (e / V) * w[:, None]
    return float(loss), g.reshape(logits.shape)


def binary_cross_entropy_with_logits(logits: np.ndarray, targets: np.ndarray,
                                     mask: np.ndarray | None = None,
                                     reduction: str = "mean") -> tuple[float, np.ndarray]:
    """Multi-label BCE on logits (..., K) against 0/1 targets (..., K); `mask` (...,) selects
    positions. `reduction="mean"` averages over counted elements; `"sum_labels"` sums over the
    K labels and averages over counted positions (the polyphonic-music NLL per time step)."""
    if logits.shape != targets.shape:
        raise ShapeError(f"targets: expected shape {logits.shape}, got {targets.shape}")
    m = np.ones(logits.shape[:-1], dtype=logits.dtype) if mask is None else mask.astype(logits.dtype)
    if m.shape != logits.shape[:-1]:
        raise ShapeError(f"mask: expected shape {logits.shape[:-1]}, got {m.shape}")
    # log(1 + e^-|z|) + max(z, 0) - z y: stable for any z
    per = np.logaddexp(0, -np.abs(logits)) + np.maximum(logits, 0) - logits * targets
    positions = max(float(m.sum()), 1.0)
    n = positions * (logits.shape[-1] if reduction == "mean" else 1)
    if reduction not in ("mean", "sum_labels"):
        raise ConfigError(f"reduction: expected 'mean' or 'sum_labels', got {reduction!r}")
    loss = (per * m[..., None]).sum() / n
    sig = 0.5 * np.tanh(0.5 * logits) + 0.5
    return float(loss), (sig - targets) * (m[..., None] / n)  # d/dz = sigmoid(z) - y


def mean_squared_error(pred: np.ndarray, target: np.ndarray,
                       mask: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Mean of (pred - target)^2 over counted elements; `mask` has pred's shape or a prefix."""
    if pred.shape != target.shape:
        raise ShapeError(f"target: expected shape {pred.shape}, got {target.shape}")
    diff = pred - target
    if mask is None:
        m = np.ones_like(diff)
    else:
        m = np.broadcast_to(mask.reshape(mask.shape + (1,) * (diff.ndim - mask.ndim)),
                            diff.shape).astype(diff.dtype)
    n = max(float(m.sum()), 1.0)
    return float((diff * diff * m).sum() / n), 2 * diff * m / n
