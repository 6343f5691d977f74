"""Optimizers over named parameter arrays, updated in place; same update rules as torch.optim.

State is a set of named arrays plus a step count, so a checkpoint can save and restore it
exactly (`state_arrays` / `load_state_arrays`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from .. import backends
from ..errors import ConfigError, ShapeError


def _compiled(*arrays: np.ndarray):
    """The module of one-pass compiled updates (optim._fused) where the backend in force runs
    compiled code and every array is contiguous in one float dtype; else None (the NumPy
    passes run). Call its functions on the arrays' flat views (`_flat`)."""
    if not (backends.numba_installed() and backends.allows("compiled")):
        return None
    if not all(a.flags.c_contiguous and a.dtype == arrays[0].dtype for a in arrays):
        return None
    if arrays[0].dtype.kind != "f":
        return None
    from . import _fused                                         # numba loads at first use
    return _fused


def _flat(*arrays: np.ndarray) -> list[np.ndarray]:
    return [a.reshape(-1) for a in arrays]


class Optimizer:
    slots: tuple[str, ...] = ()

    def __init__(self, named_params: Iterable[tuple[str, np.ndarray]], lr: float,
                 weight_decay: float = 0.0) -> None:
        self.params = dict(named_params)
        if not self.params:
            raise ConfigError("named_params: expected at least one parameter, got none")
        if not lr > 0:
            raise ConfigError(f"lr: expected a positive learning rate, got {lr}")
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.steps = 0
        self.state = {s: {k: np.zeros_like(p) for k, p in self.params.items()} for s in self.slots}

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        missing = [k for k in self.params if k not in grads]
        if missing:
            raise ConfigError(f"grads: expected a gradient for every parameter, got none for {missing}")
        self.steps += 1
        for k, p in self.params.items():
            g = grads[k]
            if g.shape != p.shape:
                raise ShapeError(f"grads[{k!r}]: expected shape {p.shape}, got {g.shape}")
            self._update(k, p, g)

    def _update(self, key: str, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def state_arrays(self) -> dict[str, np.ndarray]:
        out = {f"{s}.{k}": a for s, d in self.state.items() for k, a in d.items()}
        out["steps"] = np.array([self.steps], dtype=np.int64)
        return out

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        for s, d in self.state.items():
            for k, a in d.items():
                src = arrays[f"{s}.{k}"]
                if src.shape != a.shape:
                    raise ShapeError(f"optimizer state {s}.{k}: expected shape {a.shape}, got {src.shape}")
                a[...] = src
        self.steps = int(np.asarray(arrays["steps"]).reshape(-1)[0])


class SGD(Optimizer):
    def __init__(self, named_params, lr: float = 0.1, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        self.slots = ("momentum",) if momentum else ()
        super().__init__(named_params, lr, weight_decay)
        if nesterov and not momentum:
            raise ConfigError("nesterov: needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _update(self, key, p, g):
        buf = self.state["momentum"][key] if self.momentum else p   # p: a stand-in, not read
        fused = _compiled(p, g, buf)
        if fused is not None:                                   # one compiled pass
            fused.sgd(*_flat(p, g, buf), self.lr, self.weight_decay, self.momentum, self.nesterov,
                      self.steps == 1)
            return
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            if self.steps == 1:
                buf[...] = g                                   # torch: first buffer = g
            else:
                buf *= self.momentum
                buf += g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g


class Adagrad(Optimizer):
    slots = ("sum",)

    def __init__(self, named_params, lr: float = 0.01, eps: float = 1e-10,
                 weight_decay: float = 0.0) -> None:
        super().__init__(named_params, lr, weight_decay)
        self.eps = eps

    def _update(self, key, p, g):
        s = self.state["sum"][key]
        fused = _compiled(p, g, s)
        if fused is not None:                                   # one compiled pass
            fused.adagrad(*_flat(p, g, s), self.lr, self.weight_decay, self.eps)
            return
        if self.weight_decay:
            g = g + self.weight_decay * p
        s += g * g
        p -= self.lr * g / (np.sqrt(s) + self.eps)


class RMSprop(Optimizer):
    slots = ("square_avg",)

    def __init__(self, named_params, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(named_params, lr, weight_decay)
        self.alpha, self.eps = alpha, eps

    def _update(self, key, p, g):
        v = self.state["square_avg"][key]
        fused = _compiled(p, g, v)
        if fused is not None:                                   # one compiled pass
            fused.rmsprop(*_flat(p, g, v), self.lr, self.weight_decay, self.alpha, self.eps)
            return
        if self.weight_decay:
            g = g + self.weight_decay * p
        v *= self.alpha
        v += (1 - self.alpha) * g * g
        p -= self.lr * g / (np.sqrt(v) + self.eps)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015); `weight_decay` adds L2 to the gradient, as torch.optim.Adam."""

    slots = ("exp_avg", "exp_avg_sq")
    decoupled = False

    def __init__(self, named_params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(named_params, lr, weight_decay)
        self.b1, self.b2 = betas
        self.eps = eps

    def _update(self, key, p, g):
        m, v = self.state["exp_avg"][key], self.state["exp_avg_sq"][key]
        step_size = self.lr / (1 - self.b1 ** self.steps)       # bias corrections
        c2_sqrt = math.sqrt(1 - self.b2 ** self.steps)
        decay = self.lr * self.weight_decay
        fused = _compiled(p, g, m, v)
        if fused is not None:                                   # one compiled pass
            fused.adam(*_flat(p, g, m, v), self.b1, self.b2,
                  step_size, c2_sqrt, self.eps, 0.0 if self.decoupled else self.weight_decay,
                  1 - decay if self.decoupled else 1.0)
            return
        if self.weight_decay and self.decoupled:
            p *= 1 - decay                                      # AdamW: decay apart from g
        elif self.weight_decay:
            g = g + self.weight_decay * p
        tmp = np.multiply(g, 1 - self.b1)                       # one temporary, reused
        m *= self.b1
        m += tmp
        np.multiply(g, g, out=tmp)
        tmp *= 1 - self.b2
        v *= self.b2
        v += tmp
        np.sqrt(v, out=tmp)                                     # sqrt(v) / sqrt(c2) + eps
        tmp /= c2_sqrt
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= step_size
        p -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), default 0.01 as torch."""

    decoupled = True

    def __init__(self, named_params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01) -> None:
        super().__init__(named_params, lr, betas, eps, weight_decay)
