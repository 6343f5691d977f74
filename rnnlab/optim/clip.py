"""Global-norm gradient clipping (Pascanu et al. 2013), a step of its own, as torch's
`clip_grad_norm_`: every gradient is scaled by max_norm / (norm + 1e-6) when norm > max_norm."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import _checks as check


def clip_grad_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> float:
    """Scale `grads` in place so their joint L2 norm is at most `max_norm`; returns the norm
    before clipping (non-finite if any gradient is). A negative or non-finite `max_norm` is
    refused (a negative one would flip the gradients' sign)."""
    check.number(max_norm, "max_norm", 0.0)
    total = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads.values():
            g *= g.dtype.type(coef)
    return total
