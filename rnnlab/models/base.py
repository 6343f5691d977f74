"""What every model shares: named submodules, dotted PyTorch-style keys, a JSON config.

A model's training step is `forward_backward(batch, carry) -> (loss_sum, count, carry)`: it
runs forward, measures the loss and leaves the gradients in `named_grads()`. Clipping and
updates belong to the trainer, which knows nothing about cells.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np

from .. import _checks as check
from ..errors import ConfigError
from ..networks import GRU, LSTM, RNN, ClockworkRNN, DepthGatedLSTM
from ..recurrent import Regularisers

CELLS = ("rnn", "rnn_relu", "lstm", "gru", "gru_reset_before", "lstm_peephole", "lstm_cifg", "lstm_ln", "gru_ln", "clockwork", "dg_lstm")


@dataclass
class RecurrentConfig:
    """The recurrent part of a model: which cell, how wide, how deep, how regularised
    (`dropout` is between stacked layers; the rest act inside the time loop, see `Regularisers`)."""
    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.0
    bidirectional: bool = False
    zoneout: float = 0.0
    input_dropout: float = 0.0
    recurrent_dropout: float = 0.0

    def __post_init__(self) -> None:
        check.choice(self.cell, "cell", CELLS)
        check.positive_int(self.hidden_size, "hidden_size")
        check.positive_int(self.num_layers, "num_layers")
        for name in ("dropout", "zoneout", "input_dropout", "recurrent_dropout"):
            check.probability(getattr(self, name), name)

    @classmethod
    def make(cls, cell: str, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
             bidirectional: bool = False, regularisers: Regularisers | None = None) -> "RecurrentConfig":
        return cls(cell, hidden_size, num_layers, dropout, bidirectional, **asdict(regularisers or Regularisers()))


def make_rnn(rc: RecurrentConfig, input_size: int, dtype: np.dtype, rng: np.random.Generator):
    """The network for a `RecurrentConfig` (dropout here is between stacked layers)."""
    common = dict(num_layers=rc.num_layers, dropout=rc.dropout, bidirectional=rc.bidirectional,
                  zoneout=rc.zoneout, input_dropout=rc.input_dropout,
                  recurrent_dropout=rc.recurrent_dropout, dtype=dtype, rng=rng)
    if rc.cell == "dg_lstm":                        # its layers are linked inside one step:
        common.pop("dropout")                       # no dropout between them
        return DepthGatedLSTM(input_size, rc.hidden_size, **dict(common, num_layers=max(2, rc.num_layers)))
    if rc.cell == "clockwork":                      # up to 4 modules, periods 1, 2, 4, 8
        return ClockworkRNN(input_size, rc.hidden_size, num_modules=min(4, rc.hidden_size), **common)
    if rc.cell in ("rnn", "rnn_relu"):
        return RNN(input_size, rc.hidden_size, nonlinearity="relu" if rc.cell == "rnn_relu" else "tanh", **common)
    if rc.cell.startswith("gru"):
        return GRU(input_size, rc.hidden_size, reset_after=rc.cell != "gru_reset_before",
                   layer_norm=rc.cell == "gru_ln", **common)
    return LSTM(input_size, rc.hidden_size, peephole=rc.cell == "lstm_peephole",
                cifg=rc.cell == "lstm_cifg", layer_norm=rc.cell == "lstm_ln", **common)


def rnn_parameter_floor(rc: RecurrentConfig, input_size: int) -> int:
    """A lower bound on the parameters `make_rnn(rc, input_size)` allocates, computed without
    allocating: every cell has at least one gate, so each direction holds at least H x D input
    weights and H x H recurrent weights per layer. A loader compares it with the file's arrays
    before building anything (a hostile config must not allocate gigabytes)."""
    H, L, Dn = rc.hidden_size, rc.num_layers, 2 if rc.bidirectional else 1
    return Dn * (H * input_size + L * H * H)


def last_layer_state(net, state) -> np.ndarray:
    """The last layer's final h of every direction, side by side: (B, Dn*H)."""
    h = state[0] if isinstance(state, tuple) else state              # (L*Dn, B, H)
    return np.concatenate(list(h[-net.num_directions:]), axis=-1)


def last_layer_state_grad(net, dlast: np.ndarray):
    """The final-state gradient for `net.backward` from the gradient of `last_layer_state`."""
    nd = net.num_directions
    dh = np.zeros((net.num_layers * nd, dlast.shape[0], net.hidden_size), dtype=dlast.dtype)
    dh[-nd:] = np.stack(np.split(dlast, nd, axis=-1))                 # (Dn, B, H) of the last layer
    return (dh, np.zeros_like(dh)) if len(net.cell.carry_sizes()) == 2 else dh


def config_from_dict(cls: type, data: dict[str, Any], what: str):
    """A config dataclass from JSON, naming unknown or missing keys."""
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{what}: unknown keys {unknown}; expected some of {sorted(names)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"{what}: {exc}") from None


class Model:
    """Base class: subclasses set `kind`, build submodules and list them in `modules()`."""

    kind: ClassVar[str]
    batch_axes: ClassVar[tuple[int, ...] | None] = None   # tuple batches: each element's batch axis
    rng: np.random.Generator
    training: bool = True

    def shard_batch(self, batch, comm):
        """This process's share of a global batch for data-parallel training (None when it is
        empty): of a tuple batch, the columns `train.distributed.shard` gives this rank, along
        each element's batch axis (`batch_axes`). Models with other batches override it."""
        if self.batch_axes is None:
            raise ConfigError(f"a {self.kind} cannot be trained across processes")
        cols = shard_columns(batch[0].shape[self.batch_axes[0]], comm)
        if not len(cols):
            return None
        return tuple(np.take(a, cols, axis=ax) for a, ax in zip(batch, self.batch_axes))

    def modules(self) -> list[tuple[str, Any]]:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def parameter_floor(cls, config: dict[str, Any]) -> int:
        """A lower bound on the parameters `from_config(config)` allocates, without allocating."""
        raise NotImplementedError

    def named_parameters(self) -> Iterator[tuple[str, np.ndarray]]:
        for prefix, m in self.modules():
            for k, a in m.named_parameters():
                yield f"{prefix}.{k}", a

    def named_grads(self) -> Iterator[tuple[str, np.ndarray]]:
        for prefix, m in self.modules():
            for k, a in m.named_grads():
                yield f"{prefix}.{k}", a

    def num_parameters(self) -> int:
        return sum(a.size for _, a in self.named_parameters())

    def train(self, mode: bool = True) -> "Model":
        """Training (dropout and zoneout masks drawn) or evaluation mode, for every submodule
        and what each holds inside (a Depth-Gated LSTM's stack, a tagger's character network)."""
        self.training = mode
        for _, m in self.modules():
            if callable(getattr(m, "train", None)):
                m.train(mode)
            else:
                m.training = mode
        for d in getattr(self, "dropouts", ()):
            d.training = mode
        return self

    def eval(self) -> "Model":
        return self.train(False)


def shard_columns(B: int, comm) -> np.ndarray:
    """This rank's columns of a batch of B (contiguous blocks as even as they go)."""
    return np.array_split(np.arange(B), comm.size)[comm.rank]


def shard_dataclass(batch, comm, axes: dict[str, int], lengths: str | None = None, time: tuple[str, ...] = ()):
    """A dataclass batch's share: each field in `axes` taken at this rank's columns along its
    axis (None fields stay None); then the fields in `time` cut to the longest of `lengths`."""
    B = getattr(batch, next(iter(axes))).shape[axes[next(iter(axes))]]
    cols = shard_columns(B, comm)
    if not len(cols):
        return None
    out = {f.name: getattr(batch, f.name) for f in fields(batch)}
    for name, ax in axes.items():
        if out[name] is not None:
            out[name] = np.take(out[name], cols, axis=ax)
    if lengths is not None:
        longest = int(out[lengths].max())
        for name in time:
            if out[name] is not None:
                out[name] = out[name][:longest]
    return type(batch)(**out)


def dataclass_dict(obj: Any) -> dict[str, Any]:
    return asdict(obj)
