"""Streaming inference: a network run one time step per call, its state carried between calls.

For online use (a keystroke, a sensor reading, a generated token at a time), where calling the
whole-sequence forward once per step would pay its set-up every time. `Stream` prepares each
layer once (scaled, transposed weights; the fused kernel with buffers for one step) so a step
costs the GEMMs and the gate passes and little else.

    s = net.stream(batch_size=1)
    for x_t in frames:          # (B, D) or (D,) each
        y_t = s.step(x_t)       # (B, R) or (R,): the last layer's output
    h_n = s.state               # as net(x)[1] would return
"""

from __future__ import annotations

import math

import numpy as np

from . import _checks as check
from . import kernels
from .cells.base import Carry
from .errors import ConfigError, DTypeError, ShapeError


class _Layer:
    def __init__(self, cell, p, carry: Carry, zoneout: tuple[float, ...]) -> None:
        self.cell, self.p, self.zoneout = cell, p, zoneout
        self.t = 0                                                     # for a cell's own clock
        dtype = p.w_ih.dtype
        G = p.w_ih.shape[0]
        B = carry[0].shape[0]
        w, self.b = kernels.folded_input(cell, p, kernels.input_scale(cell, dtype))  # b (G*H,)
        from .kernels import _jit                                      # loads at first use
        self.w = _jit.transposed(w)                                    # (D, G*H) scaled W_ih^T
        self.XP = np.empty((1, B, G), dtype=dtype)                     # this step's projection
        self.kern = kernels.forward_kernel(cell, p, self.XP, carry, keep_cache=False, bias=self.b,
                                           streaming=True)
        self.carry = None if self.kern is not None else tuple(np.array(c) for c in carry)

    def step(self, x: np.ndarray) -> np.ndarray:
        xp = self.XP[0]                                                # (B, G*H)
        np.matmul(x, self.w, out=xp)                                   # the kernel adds the bias
        if self.kern is None:                                          # reference step (variants)
            if self.b is not None:
                xp += self.b
            new, _ = self.cell.step_forward(self.p, xp, self.carry)
            dt = self.carry[0].dtype
            keep = [np.asarray(z, dtype=dt) for z in self.zoneout]     # zoneout's expectation
            if hasattr(self.cell, "keep_schedule"):                    # idle clockwork modules hold
                keep[0] = np.where(self.cell.keep_schedule(self.t + 1)[self.t], 1.0, keep[0]).astype(dt)
            self.t += 1
            self.carry = tuple(k * o + (1 - k) * n for k, n, o in zip(keep, new, self.carry))
            return self.carry[0]
        self.kern.step(0, None)                                        # writes carry row 1
        for S, z in zip(self.kern.carries, self.zoneout):
            if z:                                                      # zoneout's expectation
                S[1] *= 1 - z
                S[1] += z * S[0]
            S[0] = S[1]                                                # becomes the next input
        return self.kern.carries[0][0]

    def state(self) -> Carry:
        return self.carry if self.kern is None else tuple(S[0] for S in self.kern.carries)


class Stream:
    """Run `net` (unidirectional, any depth) one step at a time from `hx` (zeros if None), as in
    evaluation: no dropout, zoneout's expectation."""

    def __init__(self, net, batch_size: int = 1, hx=None) -> None:
        if net.bidirectional:
            raise ConfigError("stream: a bidirectional network needs the whole sequence "
                              "(its reverse direction starts at the end); use net(x) instead")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size: expected a positive int, got {batch_size!r}")
        self.net, self.B = net, batch_size
        self.reset(hx)

    def reset(self, hx=None) -> None:
        """Start again from `hx` ((L, B, size) as torch.nn takes it) or zeros."""
        carries = self.net._split_state(hx, self.B, False)
        self.layers = [_Layer(self.net.cell, ps[0], carries[k][0], self.net.zoneout)
                       for k, ps in enumerate(self.net.layers)]

    def step(self, x: np.ndarray) -> np.ndarray:
        """One time step: x (B, D), or (D,) when batch_size is 1; returns a fresh (B, R) / (R,)."""
        x = np.asarray(x)
        if x.dtype != self.net.dtype:
            raise DTypeError(f"x: expected dtype {self.net.dtype} (the network's), got {x.dtype}")
        unbatched = x.ndim == 1 and self.B == 1
        xb = x[None] if unbatched else x
        if xb.shape != (self.B, self.net.input_size):
            raise ShapeError(f"x: expected shape ({self.B}, {self.net.input_size})"
                             + (f" or ({self.net.input_size},)" if self.B == 1 else "")
                             + f", got {x.shape}")
        if not math.isfinite(xb.sum(dtype=np.float64)):         # NaN and inf refused, as forward
            check.array(xb, "x", self.net.dtype, 2)              # does (this names where)
        for layer in self.layers:
            xb = layer.step(xb)
        return xb[0].copy() if unbatched else xb.copy()

    @property
    def state(self):
        """The carried state in torch.nn's layout: h (L, B, R), or (h, c) for an LSTM."""
        parts = list(zip(*[layer.state() for layer in self.layers]))
        out = [np.stack(p) for p in parts]
        return out[0] if len(out) == 1 else (out[0], out[1])
