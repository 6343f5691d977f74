"""The parameters of one recurrent layer in one direction, with PyTorch's names.

A typed container, not a string-keyed dict: the names below map one-to-one onto PyTorch's
state-dict keys (`weight_ih_l0`, `bias_hh_l1_reverse`, ...), see `torch_names`.
Shapes, with G gates, H hidden units, D inputs and R = P (projection) or H:
    w_ih (G*H, D), w_hh (G*H, R), b_ih (G*H,), b_hh (G*H,), w_hr (P, H), w_peephole (K*H,)
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

# field name -> PyTorch key stem; `weight_peephole` is rnnlab's own (PyTorch has no peepholes)
TORCH_STEMS = {
    "w_ih": "weight_ih",
    "w_hh": "weight_hh",
    "b_ih": "bias_ih",
    "b_hh": "bias_hh",
    "w_hr": "weight_hr",
    "w_peephole": "weight_peephole",
    "ln_weight": "layer_norm_weight",
    "ln_bias": "layer_norm_bias",
    "w_up": "weight_up",
    "b_up": "bias_up",
    "w_depth": "weight_depth",
}


@dataclass
class CellParams:
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray | None = None
    b_hh: np.ndarray | None = None
    w_hr: np.ndarray | None = None
    w_peephole: np.ndarray | None = None
    ln_weight: np.ndarray | None = None
    ln_bias: np.ndarray | None = None
    w_up: np.ndarray | None = None
    b_up: np.ndarray | None = None
    w_depth: np.ndarray | None = None

    def items(self) -> list[tuple[str, np.ndarray]]:
        """(field, array) for every parameter present, in PyTorch's order."""
        return [(f.name, getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) is not None]

    def zeros_like(self) -> "CellParams":
        return CellParams(**{f: np.zeros_like(a) for f, a in self.items()})


def torch_key(field: str, suffix: str) -> str:
    """`torch_key("w_ih", "_l0_reverse")` -> `"weight_ih_l0_reverse"`."""
    return TORCH_STEMS[field] + suffix
