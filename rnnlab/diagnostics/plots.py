"""PNG plots with matplotlib (Agg backend, no screen): returned as bytes and optionally saved."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _figure():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _png(fig, path: str | Path | None) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _figure().close(fig)
    data = buf.getvalue()
    if path is not None:
        from ..train.checkpoint import atomic_write_bytes
        atomic_write_bytes(Path(path), data)                 # makes the folder, as reports do
    return data


def plot_gradient_flow(norms: Mapping[str, np.ndarray], path: str | Path | None = None,
                       title: str = "Gradient norm against distance") -> bytes:
    """norms: label -> ||dL/dh_k|| for k = 0..T-1; drawn against the distance T-1-k, log scale."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, n in norms.items():
        n = np.asarray(n, dtype=float)
        d = np.arange(len(n))[::-1]
        ok = n > 0
        ax.semilogy(d[ok], n[ok], label=label)
    ax.set_xlabel("distance from the loss (steps back in time)")
    ax.set_ylabel("||dL/dh||")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _png(fig, path)


def plot_learning_curves(curves: Mapping[str, Sequence[float]], path: str | Path | None = None,
                         ylabel: str = "validation loss", baseline: float | None = None) -> bytes:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, ys in curves.items():
        ax.plot(np.arange(1, len(ys) + 1), ys, label=label)
    if baseline is not None:
        ax.axhline(baseline, color="grey", linestyle="--", label="baseline")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _png(fig, path)


def plot_activations(acts: np.ndarray, path: str | Path | None = None, title: str = "") -> bytes:
    """A heat map of activations (T, H): time across, units down."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8, 3))
    im = ax.imshow(np.asarray(acts).T, aspect="auto", cmap="RdBu_r", interpolation="nearest")
    ax.set_xlabel("step")
    ax.set_ylabel("unit")
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
    return _png(fig, path)
