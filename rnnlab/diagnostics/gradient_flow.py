"""The gradient through time: ||dL/dh_k|| for every step k (and ||dL/dc_k|| for LSTM).

For a loss read at the last step, dL/dh_k = dL/dh_T * prod_{t=k+1..T} dh_t/dh_{t-1}: the
product of Jacobians that shrinks (or explodes) geometrically in a plain RNN, and that the LSTM's
cell state, updated additively through the forget gate, keeps from vanishing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..recurrent import reverse_order


@dataclass
class GradientFlow:
    h_norm: np.ndarray                 # (L*Dn, T): mean over the batch of ||dL/dh_t||, input time
    c_norm: np.ndarray | None          # (L*Dn, T) for LSTM: ||dL/dc_t||

    def decay(self, which: str = "h", row: int = 0, last: int | None = None) -> dict[str, float]:
        """Least-squares fit of log10 ||dL/dh_k|| against the distance T-1-k over the steps
        from the end (`last` of them): per-step factor and orders of magnitude per 50 steps."""
        norms = (self.h_norm if which == "h" else self.c_norm)[row]
        T = len(norms)
        k = np.arange(T)[-(last or T):]
        ok = norms[k] > 0
        if ok.sum() < 2:
            return {"per_step_factor": 0.0, "orders_per_50_steps": float("inf")}
        slope = np.polyfit((T - 1 - k)[ok], np.log10(norms[k][ok]), 1)[0]
        return {"per_step_factor": float(10 ** slope), "orders_per_50_steps": float(-50 * slope)}


def _recorder(net, lengths: np.ndarray | None, T: int, B: int):
    """A hook for `net.backward` filling (L*Dn, T) norm tables, in input time order."""
    nd = net.num_directions
    h = np.zeros((net.num_layers * nd, T))
    c = np.zeros_like(h) if len(net.cell.carry_sizes()) == 2 else None
    back = reverse_order(lengths, T, B)[:, :, 0]                # processing step -> input step

    def hook(layer: int, direction: int, t: int, dstate) -> None:
        row = layer * nd + direction
        if direction == 1:                                       # reverse: map to input time
            steps = back[t]                                      # (B,)
            for b, s in enumerate(steps):
                h[row, s] += np.linalg.norm(dstate[0][b]) / B
                if c is not None:
                    c[row, s] += np.linalg.norm(dstate[1][b]) / B
        else:
            h[row, t] = np.linalg.norm(dstate[0], axis=-1).mean()
            if c is not None:
                c[row, t] = np.linalg.norm(dstate[1], axis=-1).mean()

    return hook, h, c


def gradient_flow(model, batch, carry=None) -> GradientFlow:
    """Gradient flow of a model's own loss on one batch (the model must have `.rnn`)."""
    net = model.rnn
    state = {}

    def capture(layer, direction, t, dstate):
        if "hook" not in state:
            T, B, _ = net.saved.x_shape
            state["hook"], state["h"], state["c"] = _recorder(net, _lengths_of(batch), T, B)
        state["hook"](layer, direction, t, dstate)

    net.state_grad_hook = capture
    try:
        model.forward_backward(batch, carry)
    finally:
        net.state_grad_hook = None
    return GradientFlow(state["h"], state["c"])


def _lengths_of(batch) -> np.ndarray | None:
    for part in batch if isinstance(batch, tuple) else ():
        if isinstance(part, np.ndarray) and part.ndim == 1 and part.dtype.kind in "iu":
            return part
    return getattr(batch, "lengths", None)


def network_gradient_flow(net, x: np.ndarray, *, lengths=None, seed: int = 0) -> GradientFlow:
    """Gradient flow of L = <u_b, y_{T-1, b}> summed over the batch, u_b fixed random unit
    vectors: a loss read at the last step only, as in the tutorials' derivation."""
    out, _ = net(x, lengths=lengths)
    T, B = out.shape[0], out.shape[1]
    u = np.random.default_rng(seed).standard_normal(out.shape[1:]).astype(out.dtype)
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    dout = np.zeros_like(out)
    last = (np.full(B, T) if lengths is None else np.asarray(lengths)) - 1
    dout[last, np.arange(B)] = u
    hook, h, c = _recorder(net, None if lengths is None else np.asarray(lengths), T, B)
    net.backward(dout, on_state_grad=hook)
    return GradientFlow(h, c)
