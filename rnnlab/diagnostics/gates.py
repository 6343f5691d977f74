"""Gate and state activations of a network's last forward call; saturation; correlated units."""

from __future__ import annotations

import numpy as np

from ..errors import OrderError
from ..recurrent import gather_time


def gate_activations(net) -> dict[str, dict[str, np.ndarray]]:
    """{"l0", "l0_reverse", ...: {gate name: (T, B, H)}} from the last forward call (made with
    the cache kept), in input time order. Copies: the network's own buffers change under
    backward (the fused LSTM and GRU turn their saved gates into gradients) and later calls."""
    fc = net.saved                                   # DepthGatedLSTM: its stack cell's
    if fc is None:
        raise OrderError("gate_activations: run the network forward first (keep_cache=True)")
    if any(sc.spent for scans in fc.scans for sc in scans):
        raise OrderError("gate_activations: backward has turned the last forward call's saved "
                           "gates into their gradients; read the gates before backward, or run "
                           "forward again")
    out = {}
    for layer, scans in enumerate(fc.scans):
        for d, sc in enumerate(scans):
            acts = fc.cell.activations(sc.caches)
            out[f"l{layer}" + ("_reverse" if d else "")] = {
                k: np.array(gather_time(v, sc.order)) for k, v in acts.items()}
    return out


def saturation(acts: dict[str, np.ndarray], gates: tuple[str, ...], mask: np.ndarray | None = None,
               low: float = 0.1, high: float = 0.9) -> dict[str, dict[str, float]]:
    """How often each sigmoid gate sits near 0 (< low) or near 1 (> high), over valid steps."""
    out = {}
    for g in gates:
        a = acts[g] if mask is None else acts[g][mask]
        out[g] = {"near_0": float((a < low).mean()), "near_1": float((a > high).mean()),
                  "mean": float(a.mean())}
    return out


def top_units(acts: np.ndarray, signal: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
    """The k units of acts (T, H) whose activation correlates most (|Pearson r|) with signal (T,)."""
    a = acts - acts.mean(0)
    s = signal - signal.mean()
    denom = np.sqrt((a * a).sum(0) * (s * s).sum()) + 1e-12
    r = (a * s[:, None]).sum(0) / denom                          # (H,)
    best = np.argsort(-np.abs(r))[:k]
    return [(int(u), float(r[u])) for u in best]
