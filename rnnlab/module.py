"""What every rnnlab module shares: PyTorch-keyed state dicts over typed parameters."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from .errors import ConfigError, DTypeError, OrderError, ShapeError, ValueRangeError
from .params import CellParams, torch_key


class ParamModule:
    """A module whose parameters are `CellParams` with a PyTorch key suffix each."""

    dtype: np.dtype
    training: bool = True

    def _param_sets(self) -> list[tuple[str, CellParams]]:
        """(key suffix, params) for every layer and direction; suffix as "_l0_reverse"."""
        raise NotImplementedError

    def _grad_sets(self) -> list[CellParams] | None:
        raise NotImplementedError

    def named_parameters(self) -> Iterator[tuple[str, np.ndarray]]:
        """(PyTorch key, live array) pairs; optimizers update the arrays in place."""
        for suffix, p in self._param_sets():
            for field, a in p.items():
                yield torch_key(field, suffix), a

    def parameters(self) -> list[np.ndarray]:
        return [a for _, a in self.named_parameters()]

    def named_grads(self) -> Iterator[tuple[str, np.ndarray]]:
        """(PyTorch key, gradient) of the last backward call, same keys as the parameters."""
        grads = self._grad_sets()
        if grads is None:
            raise OrderError("no gradients yet: call backward() after a forward call")
        for (suffix, _), g in zip(self._param_sets(), grads):
            for field, a in g.items():
                yield torch_key(field, suffix), a

    @property
    def grads(self) -> dict[str, np.ndarray]:
        return dict(self.named_grads())

    def state_dict(self) -> dict[str, np.ndarray]:
        """PyTorch's keys and shapes, copies of the arrays."""
        return {k: a.copy() for k, a in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, object], strict: bool = True) -> None:
        """Copy arrays (NumPy, or anything `np.asarray` takes, e.g. CPU torch tensors) in.

        Keys, shapes and finiteness are checked before anything is written; values are cast to
        this module's dtype. With `strict`, missing and unexpected keys are both errors.
        """
        if not isinstance(state, Mapping):
            raise ConfigError(f"state_dict: expected a mapping of names to arrays, got {type(state).__name__}")
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise ConfigError(f"state_dict: expected the keys of this module, got {few(missing)} missing "
                              f"and {few(unexpected)} unexpected")
        staged = {}
        for k, target in own.items():
            if k not in state:
                continue
            a = as_numpy(state[k], f"state_dict[{k!r}]")
            if a.dtype.kind not in "fiu":
                raise DTypeError(f"state_dict[{k!r}]: expected a numeric array, got dtype {a.dtype}")
            if a.shape != target.shape:
                raise ShapeError(f"state_dict[{k!r}]: expected shape {target.shape}, got {a.shape}")
            if not np.isfinite(a).all():
                raise ValueRangeError(f"state_dict[{k!r}]: expected finite values, got NaN or inf")
            staged[k] = a
        for k, a in staged.items():
            own[k][...] = a

    def train(self, mode: bool = True) -> "ParamModule":
        self.training = mode
        return self

    def eval(self) -> "ParamModule":
        return self.train(False)


def few(keys: list, n: int = 5) -> str:
    """At most n keys and a count of the rest: a hostile state dict must not make a 4 MB error."""
    shown = ", ".join(repr(k)[:60] for k in keys[:n])
    return f"[{shown}{f', ... ({len(keys) - n} more)' if len(keys) > n else ''}]"


def as_numpy(src: object, name: str) -> np.ndarray:
    """A NumPy array from an array, a CPU torch tensor or anything `np.asarray` takes; torch
    tensors NumPy cannot hold (bfloat16, sparse, meta) are refused by name."""
    if hasattr(src, "detach"):                                     # a torch tensor
        try:
            src = src.detach().cpu().numpy()
        except (TypeError, RuntimeError, NotImplementedError):
            raise DTypeError(f"{name}: expected a dense float32 or float64 tensor, got "
                             f"{getattr(src, 'dtype', '?')} ({getattr(src, 'layout', '?')}, "
                             f"on {getattr(src, 'device', '?')})") from None
    try:
        return np.asarray(src)
    except (TypeError, ValueError) as exc:
        raise DTypeError(f"{name}: expected a numeric array, got {type(src).__name__} ({exc})") from None
