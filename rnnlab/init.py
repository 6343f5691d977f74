"""Parameter initialisation; randomness only from an explicit `np.random.Generator`."""

from __future__ import annotations

import numpy as np

from ._checks import choice
from .errors import ConfigError, DTypeError
from .cells.base import Cell
from .cells.layernorm import LayerNormLSTMCellConfig
from .cells.lstm import LSTMCellConfig
from .params import CellParams

INIT_SCHEMES = ("pytorch", "orthogonal")


def make_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator, a seed, or None (fresh OS entropy; never the global state)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise DTypeError(f"rng: expected a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def orthogonal(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """A (rows, cols) matrix with orthonormal rows or columns (Saxe et al. 2014)."""
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))                                  # make the distribution uniform
    return q if rows >= cols else q.T


def init_cell(cell: Cell, input_size: int, *, bias: bool, dtype: np.dtype,
              rng: np.random.Generator, scheme: str = "pytorch",
              forget_bias: float | None = None) -> CellParams:
    """PyTorch's default: every parameter ~ U(-1/sqrt(H), 1/sqrt(H)).

    `scheme="orthogonal"` makes each gate's block of w_hh orthogonal (Keras' recurrent default).
    `forget_bias` (LSTM) sets b_ih of the forget gate to that value and its b_hh to 0, so the
    gate starts at s(forget_bias); with CIFG, where f = 1 - i, it sets the input gate's b_ih to
    -forget_bias, which gives the same starting forget gate.
    """
    choice(scheme, "init", INIT_SCHEMES)
    H = cell.hidden_size
    k = 1.0 / np.sqrt(H)
    arrays = {}
    for name, shp in cell.param_shapes(input_size).items():
        if name in ("b_ih", "b_hh", "b_up") and not bias:
            continue
        if name == "ln_weight":                        # layer-norm gains start at 1, biases at 0
            arrays[name] = np.ones(shp)
        elif name == "ln_bias":
            arrays[name] = np.zeros(shp)
        else:
            arrays[name] = rng.uniform(-k, k, size=shp)
    if scheme == "orthogonal":
        R = arrays["w_hh"].shape[-1]

        def blocks() -> np.ndarray:
            return np.concatenate([orthogonal(H, R, rng) for _ in range(cell.gates)])
        w = arrays["w_hh"]
        arrays["w_hh"] = np.stack([blocks() for _ in range(w.shape[0])]) if w.ndim == 3 else blocks()
    if forget_bias is not None and isinstance(cell, LayerNormLSTMCellConfig):
        arrays["ln_bias"][H:2 * H] = forget_bias       # b of the forget gate, after the norms
    elif forget_bias is not None:
        if not isinstance(cell, LSTMCellConfig) or not bias:
            raise ConfigError("forget_bias: needs an LSTM with bias=True")
        if cell.cifg:
            arrays["b_ih"][0:H] = -forget_bias
            arrays["b_hh"][0:H] = 0.0
        else:
            arrays["b_ih"][H:2 * H] = forget_bias
            arrays["b_hh"][H:2 * H] = 0.0
    return CellParams(**{n: a.astype(dtype) for n, a in arrays.items()})
