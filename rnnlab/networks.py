"""`rnnlab.RNN`, `rnnlab.LSTM`, `rnnlab.GRU`: stacked, bidirectional networks as torch.nn has them.

Constructor arguments, parameter keys and shapes, call signature and return values follow
`torch.nn.RNN/LSTM/GRU`; arrays are NumPy. The math lives in `rnnlab.cells` and the time loop in
`rnnlab.recurrent`; this file only stacks layers and directions, applies inter-layer dropout,
and keeps the last forward call's cache for `backward`.
"""

from __future__ import annotations

from collections.abc import Callable
import functools
from dataclasses import dataclass, field

import numpy as np

from . import _checks as check
from . import backends, kernels
from .cells.base import Carry, Cell
from .cells.clockwork import ClockworkCellConfig, exponential_periods
from .cells.depth_gated import DepthGatedLSTMCellConfig
from .cells.gru import GRUCellConfig
from .cells.layernorm import LayerNormGRUCellConfig, LayerNormLSTMCellConfig
from .cells.lstm import LSTMCellConfig
from .cells.rnn import NONLINEARITIES, RNNCellConfig
from .errors import ConfigError, OrderError, ShapeError, ValueRangeError
from .init import INIT_SCHEMES, init_cell, make_rng
from .kernels._buffers import Scratch
from .module import ParamModule
from .params import CellParams
from .recurrent import Noise, Regularisers, ScanCache, fingerprint, saves, scan_backward, scan_forward
from .streaming import Stream

State = np.ndarray | tuple[np.ndarray, np.ndarray]


def on_own_backend(method):
    """Run a network's method on the network's own backend when it names one (not "auto"):
    it then wins over `with rnnlab.backend(...)` around the call (rnnlab.backends)."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        if self.backend == "auto":
            return method(self, *args, **kwargs)
        with backends.backend(self.backend):
            return method(self, *args, **kwargs)
    return run


@dataclass
class SavedForward:
    """What a forward call that kept its cache saved for backward: each layer's and
    direction's `ScanCache` (inputs and the cells' saved activations), the dropout masks
    between layers, the input's shape. Diagnostics read it through `net.saved`; backward
    may spend parts of it (the LSTM's and GRU's gates become their gradients)."""
    scans: list[list[ScanCache]]        # [layer][direction]
    drop_masks: list[np.ndarray | None]  # [layer] the scaled dropout mask on its output
    unbatched: bool
    x_shape: tuple[int, ...]
    cell: Cell                           # the cell that saved them (its `activations` reads them)
    shared: list = field(default_factory=list)  # (array the caller holds, fingerprint) pairs


class _RecurrentNetwork(ParamModule):
    def __init__(self, cell: Cell, input_size: int, num_layers: int, bias: bool,
                 batch_first: bool, dropout: float, bidirectional: bool, dtype: object,
                 init: str, rng: np.random.Generator | int | None,
                 forget_bias: float | None = None, regularisers: Regularisers | None = None,
                 backend: str = "auto") -> None:
        self.input_size = check.positive_int(input_size, "input_size")
        self.hidden_size = cell.hidden_size
        self.num_layers = check.positive_int(num_layers, "num_layers")
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = check.probability(dropout, "dropout")
        self.bidirectional = bool(bidirectional)
        self.dtype = check.as_dtype(dtype)
        check.choice(init, "init", INIT_SCHEMES)
        if forget_bias is not None and not self.bias:
            raise ConfigError("forget_bias: needs bias=True")
        self.cell = cell
        self.backend = backends.validate(backend)            # see rnnlab.backends
        self.rng = make_rng(rng)
        self.num_directions = 2 if self.bidirectional else 1
        self.layers: list[list[CellParams]] = []
        for layer in range(self.num_layers):
            d_in = self.input_size if layer == 0 else cell.output_size * self.num_directions
            self.layers.append([init_cell(cell, d_in, bias=self.bias, dtype=self.dtype,
                                          rng=self.rng, scheme=init, forget_bias=forget_bias)
                                for _ in range(self.num_directions)])
        self._set_regularisers(regularisers or Regularisers())
        self.training = True
        self._cache: SavedForward | None = None
        self._scratch = Scratch(self.num_layers * self.num_directions)   # the input projections
        self._grads: list[list[CellParams]] | None = None
        self.state_grad_hook: Callable[[int, int, int, Carry], None] | None = None  # diagnostics

    @property
    def saved(self) -> SavedForward | None:
        """The last forward call's saved activations (None after an inference call or
        `release_memory`): what `rnnlab.diagnostics` reads."""
        return self._cache

    # -- regularisers inside the time loop ------------------------------------------------------
    def _set_regularisers(self, reg: Regularisers) -> None:
        zoneout, input_dropout, recurrent_dropout = reg.zoneout, reg.input_dropout, reg.recurrent_dropout
        n = len(self.cell.carry_sizes())
        z = tuple(zoneout) if isinstance(zoneout, (tuple, list)) else (zoneout,) * n
        if len(z) != n:
            raise ConfigError(f"zoneout: expected a probability or {n} of them (one per carry: "
                              f"{'h, c' if n == 2 else 'h'}), got {zoneout!r}")
        self.zoneout = tuple(check.probability(v, "zoneout") for v in z)
        self.input_dropout = check.probability(input_dropout, "input_dropout")
        self.recurrent_dropout = check.probability(recurrent_dropout, "recurrent_dropout")

    def _noise(self, D: int, B: int, T: int) -> Noise | None:
        """Fresh masks for one layer and direction (training), zoneout's expectation (evaluation)."""
        zoned = any(self.zoneout)
        if not self.training:
            return Noise(zoneout=self.zoneout) if zoned else None
        if not (zoned or self.input_dropout or self.recurrent_dropout):
            return None

        def mask(p: float, shape) -> np.ndarray | None:
            return None if not p else (self.rng.random(shape) >= p).astype(self.dtype) / (1 - p)
        zone = tuple(self.rng.random((T, B, s)) < pz for s, pz in zip(self.cell.carry_sizes(), self.zoneout))
        return Noise(mask(self.input_dropout, (B, D)), mask(self.recurrent_dropout, (B, self.cell.output_size)),
                     zone if zoned else None)

    # -- naming ------------------------------------------------------------------------------
    def _param_sets(self) -> list[tuple[str, CellParams]]:
        return [(f"_l{layer}" + ("_reverse" if d else ""), p)
                for layer, ps in enumerate(self.layers) for d, p in enumerate(ps)]

    def _grad_sets(self) -> list[CellParams] | None:
        return None if self._grads is None else [g for gs in self._grads for g in gs]

    # -- state in and out ----------------------------------------------------------------------
    def _split_state(self, hx: State | None, B: int, unbatched: bool,
                     names: tuple[str, str] = ("h_0", "c_0")) -> list[list[Carry]]:
        """PyTorch's (L*Dn, B, size) initial state(s) -> a carry per layer and direction."""
        LD = self.num_layers * self.num_directions
        sizes = self.cell.carry_sizes()
        if hx is None:
            states = [np.zeros((LD, B, s), dtype=self.dtype) for s in sizes]
        else:
            parts = hx if len(sizes) == 2 else (hx,)
            if len(sizes) == 2 and not (isinstance(hx, tuple) and len(hx) == 2):
                raise ShapeError(f"{'hx' if names[0] == 'h_0' else 'dstate'}: expected a tuple "
                                 f"({names[0]}, {names[1]}) for LSTM, got {type(hx).__name__}")
            states = []
            for name, a, size in zip(names, parts, sizes):
                check.array(a, name, self.dtype, 2 if unbatched else 3)
                if unbatched:
                    check.shape(a, name, (LD, size), "num_layers * num_directions, size")
                    a = a[:, None]
                else:
                    check.shape(a, name, (LD, B, size), "num_layers * num_directions, batch, size")
                states.append(a)
        return [[tuple(st[layer * self.num_directions + d] for st in states)
                 for d in range(self.num_directions)] for layer in range(self.num_layers)]

    def _join_state(self, carries: list[list[Carry]], unbatched: bool) -> State:
        n = len(self.cell.carry_sizes())
        out = [np.stack([c[k] for cs in carries for c in cs]) for k in range(n)]  # (L*Dn, B, .)
        if unbatched:
            out = [a[:, 0] for a in out]
        return out[0] if n == 1 else (out[0], out[1])

    # -- forward and backward ------------------------------------------------------------------
    def __call__(self, x: np.ndarray, hx: State | None = None,
                 lengths: np.ndarray | list[int] | None = None) -> tuple[np.ndarray, State]:
        """Outputs (T, B, Dn*R) (or batch-first) and final state(s), as torch.nn does.

        `lengths` (B,) gives each row's valid steps, as `pack_padded_sequence` would: outputs
        past a row's length are zeros and its final state is the state at its last valid step.
        """
        return self.forward(x, hx, lengths)

    @on_own_backend
    def forward(self, x: np.ndarray, hx: State | None = None,
                lengths: np.ndarray | list[int] | None = None,
                keep_cache: bool = True) -> tuple[np.ndarray, State]:
        """As __call__; `keep_cache=False` saves nothing for backward (inference).

        The fused cells' input projections go into buffers that the network keeps for its
        next calls: at the end of a keep_cache=False call, and, for the LSTM and GRU, whose
        saved gates are written over them, after the backward of a call that kept its cache
        (release_memory lets them go)."""
        check.array(x, "x", self.dtype, (2, 3))
        unbatched = x.ndim == 2
        if unbatched:
            x = x[:, None]                                          # (T, 1, D)
        elif self.batch_first:
            x = x.transpose(1, 0, 2)                                # (T, B, D)
        T, B, D = x.shape
        if T == 0:
            raise ShapeError(f"x: expected at least one time step, got shape {x.shape}")
        if D != self.input_size:
            raise ShapeError(f"x: expected input size {self.input_size} in the last axis, got {D}")
        lens = check.lengths(lengths, "lengths", B, T)
        carries0 = self._split_state(hx, B, unbatched)
        if B == 0:                                                  # an empty batch, as torch: empty out
            return self._empty_call(x, carries0, unbatched, keep_cache)
        inputs = x
        scans, masks, finals = [], [], []
        for layer, params in enumerate(self.layers):
            outs, layer_scans, layer_final = [], [], []
            for d, p in enumerate(params):
                y, carry, sc = scan_forward(self.cell, p, inputs, carries0[layer][d], lens,
                                            reverse=d == 1, keep_cache=keep_cache,
                                            noise=self._noise(inputs.shape[-1], B, T),
                                            scratch=self._scratch)
                outs.append(y)
                layer_scans.append(sc)
                layer_final.append(carry)
            inputs = np.concatenate(outs, axis=-1) if len(outs) > 1 else outs[0]  # (T, B, Dn*R)
            mask = None
            if layer < self.num_layers - 1 and self.training and self.dropout > 0:
                keep = 1.0 - self.dropout
                mask = (self.rng.random(inputs.shape) < keep).astype(self.dtype) / keep
                inputs = inputs * mask
            scans.append(layer_scans)
            masks.append(mask)
            finals.append(layer_final)
        self._cache = SavedForward(scans, masks, unbatched, x.shape, self.cell) if keep_cache else None
        self._grads = None
        out = inputs
        if keep_cache:                                  # arrays the caller holds that backward reads
            shared = [a for a in (x, out) if saves(a, scans[0] + scans[-1])]
            self._cache.shared = [(a, fingerprint(a)) for a in shared]
        if unbatched:
            out = out[:, 0]
        elif self.batch_first:
            out = np.ascontiguousarray(out.transpose(1, 0, 2))
        return out, self._join_state(finals, unbatched)

    def _empty_call(self, x: np.ndarray, carries0, unbatched: bool, keep_cache: bool):
        """Forward over a batch of 0 rows: (T, 0, Dn*R) outputs and (L*Dn, 0, .) states."""
        self._cache = SavedForward([], [], unbatched, x.shape, self.cell) if keep_cache else None
        self._grads = None
        out = np.zeros((x.shape[0], 0, self.cell.output_size * self.num_directions), dtype=self.dtype)
        return (out.transpose(1, 0, 2) if self.batch_first else out), self._join_state(carries0, unbatched)

    @on_own_backend
    def backward(self, doutput: np.ndarray | None, dstate: State | None = None, *,
                 on_state_grad: Callable[[int, int, int, Carry], None] | None = None
                 ) -> tuple[np.ndarray, State]:
        """Gradients of the outputs and of the final state(s) in; gradients of x and the
        initial state(s) out. Parameter gradients: `self.grads` (same keys as state_dict).

        `on_state_grad(layer, direction, t, dstate)` sees dL/dh_t (and dL/dc_t) at every step
        (t in the direction's processing order); `self.state_grad_hook` is used when not given."""
        on_state_grad = on_state_grad or self.state_grad_hook
        fc = self._cache
        if fc is None:
            raise OrderError("backward: no forward call to go back through "
                               "(call the network first, with keep_cache=True)")
        if any(fingerprint(a) != digest for a, digest in fc.shared):
            raise ValueRangeError("backward: the input x or the output of the forward call was written "
                                  "into after the call, and backward reads them; pass a copy "
                                  "(y.copy()), or run forward again")
        T, B, _ = fc.x_shape
        R = self.cell.output_size * self.num_directions
        if doutput is None:
            d = np.zeros((T, B, R), dtype=self.dtype)
        else:
            check.array(doutput, "doutput", self.dtype, 2 if fc.unbatched else 3)
            d = doutput[:, None] if fc.unbatched else (
                doutput.transpose(1, 0, 2) if self.batch_first else doutput)
            check.shape(d, "doutput", (T, B, R), "the output's shape")
        dcarries = self._split_state(dstate, B, fc.unbatched, ("dh_n", "dc_n"))
        if B == 0:                                                  # nothing flowed: zero gradients
            self._grads = [[p.zeros_like() for p in ps] for ps in self.layers]
            dx = np.zeros((T, 0, self.input_size), dtype=self.dtype)
            return (dx.transpose(1, 0, 2) if self.batch_first else dx), self._join_state(dcarries, False)
        grads = [[None] * self.num_directions for _ in self.layers]
        dcarry0 = [[None] * self.num_directions for _ in self.layers]
        for layer in range(self.num_layers - 1, -1, -1):
            if fc.drop_masks[layer] is not None:
                d = d * fc.drop_masks[layer]                        # back through the dropout
            dparts = np.split(d, self.num_directions, axis=-1) if self.num_directions > 1 else [d]
            dx = None
            for dirn, p in enumerate(self.layers[layer]):
                hook = None if on_state_grad is None else (
                    lambda t, dc, layer=layer, dirn=dirn: on_state_grad(layer, dirn, t, dc))
                dxi, dc0, g = scan_backward(self.cell, p, fc.scans[layer][dirn],
                                            np.ascontiguousarray(dparts[dirn]),
                                            dcarries[layer][dirn], hook, self._scratch)
                dx = dxi if dx is None else dx + dxi               # both directions read x
                grads[layer][dirn], dcarry0[layer][dirn] = g, dc0
            d = dx
        self._grads = grads
        if fc.unbatched:
            d = d[:, 0]
        elif self.batch_first:
            d = np.ascontiguousarray(d.transpose(1, 0, 2))
        return d, self._join_state(dcarry0, fc.unbatched)

    def release_memory(self) -> None:
        """Let go of what this network keeps between calls: the last forward call's saved
        activations (backward then needs a new forward call) and the buffers that its calls
        reuse for their input projections (the next calls allocate them again). Parameters and
        the last gradients stay."""
        self._scratch.clear()
        self._cache = None

    @on_own_backend
    def plan(self, x: np.ndarray | None = None, training: bool | None = None,
             batch_size: int | None = None) -> backends.Plan:
        """Which backend and loops a call on `x` (or a batch of `batch_size` rows) would run,
        and in training (default: the network's mode) which backward loop: decided as the call
        decides it (rnnlab.backends.choose)."""
        if x is not None:
            B = 1 if x.ndim == 2 else x.shape[0 if self.batch_first else 1]
        elif batch_size is not None:
            B = check.positive_int(batch_size, "batch_size")
        else:
            raise ConfigError("plan: expected x or batch_size, got neither")
        T = 1 if x is None else x.shape[1 if self.batch_first and x.ndim == 3 else 0]
        training = self.training if training is None else training
        return kernels.path_of(self.cell, T, B, self.dtype, training)

    @on_own_backend
    def stream(self, batch_size: int = 1, hx: State | None = None):
        """A `rnnlab.streaming.Stream`: this network one time step per call, state carried
        (its kernels are chosen when the stream is made)."""
        return Stream(self, batch_size, hx)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}, dtype={self.dtype}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class RNN(_RecurrentNetwork):
    """Elman RNN, as `torch.nn.RNN` (nonlinearity "tanh" or "relu")."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, *,
                 zoneout: float = 0.0, input_dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 dtype: object = np.float32, init: str = "pytorch",
                 rng: np.random.Generator | int | None = None, backend: str = "auto") -> None:
        cell = RNNCellConfig(check.positive_int(hidden_size, "hidden_size"),
                             check.choice(nonlinearity, "nonlinearity", NONLINEARITIES))
        super().__init__(cell, input_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, init, rng,
                         regularisers=Regularisers(zoneout, input_dropout, recurrent_dropout), backend=backend)


class ClockworkRNN(_RecurrentNetwork):
    """Clockwork RNN (Koutnik et al. 2014; `rnnlab.cells.clockwork`): tanh units in modules that
    update every `periods[i]` steps (default 1, 2, 4, ... for `num_modules`), each reading only
    modules as slow or slower. Parameters and keys as torch.nn.RNN's; W_hh outside the
    block upper-triangular mask starts at zero and is never used."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, periods: tuple[int, ...] | None = None,
                 num_modules: int = 4, zoneout: float = 0.0, input_dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, dtype: object = np.float32, init: str = "pytorch",
                 rng: np.random.Generator | int | None = None, backend: str = "auto") -> None:
        H = check.positive_int(hidden_size, "hidden_size")
        if periods is None:
            periods = exponential_periods(check.positive_int(num_modules, "num_modules"))
        cell = ClockworkCellConfig(H, tuple(int(p) for p in periods))
        super().__init__(cell, input_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, init, rng,
                         regularisers=Regularisers(zoneout, input_dropout, recurrent_dropout), backend=backend)
        mask = cell.recurrent_mask(self.dtype)
        for params in self.layers:
            for p in params:
                p.w_hh *= mask                                     # unused entries at zero


class DepthGatedLSTM(ParamModule):
    """Depth-Gated LSTM (Yao et al. 2015; `rnnlab.cells.depth_gated`): `num_layers` >= 2 LSTM
    layers of equal width whose cells are linked across depth by a depth gate.

    Called as `rnnlab.LSTM`: outputs are the top layer's h (T, B, Dn*H), final states
    `(h_n, c_n)` (L*Dn, B, H). Inside, each direction is one recurrent cell running the whole
    stack per time step. With `bidirectional=True` each direction is its own depth-gated stack
    and their top outputs are concatenated (layer l of one direction does not read the other
    direction's layer l-1, unlike torch's bidirectional stacks).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 2, bias: bool = True,
                 batch_first: bool = False, bidirectional: bool = False, *, zoneout: float = 0.0,
                 input_dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 dtype: object = np.float32, init: str = "pytorch",
                 rng: np.random.Generator | int | None = None, backend: str = "auto") -> None:
        H = check.positive_int(hidden_size, "hidden_size")
        L = check.positive_int(num_layers, "num_layers")
        self.stack = _RecurrentNetwork(DepthGatedLSTMCellConfig(H, L), input_size, 1, bias, batch_first,
                                       0.0, bidirectional, dtype, init, rng,
                                       regularisers=Regularisers(zoneout, input_dropout, recurrent_dropout), backend=backend)
        self.input_size, self.hidden_size, self.num_layers = self.stack.input_size, H, L
        self.bidirectional, self.num_directions = self.stack.bidirectional, self.stack.num_directions
        self.batch_first, self.dtype, self.bias = self.stack.batch_first, self.stack.dtype, self.stack.bias
        self.backend = self.stack.backend            # its calls run on it through the stack
        self.cell = LSTMCellConfig(H)                # what models read: carries (h, c) of size H
        self.training = True

    @property
    def rng(self) -> np.random.Generator:
        return self.stack.rng                        # the masks' source is the stack's

    @property
    def saved(self) -> SavedForward | None:
        """As `rnnlab.LSTM.saved`: the stack cell's (all layers in one cell per direction)."""
        return self.stack.saved

    @rng.setter
    def rng(self, value: np.random.Generator) -> None:
        self.stack.rng = value

    def _param_sets(self):
        return self.stack._param_sets()

    def _grad_sets(self):
        return self.stack._grad_sets()

    def train(self, mode: bool = True) -> "DepthGatedLSTM":
        self.training = mode
        self.stack.train(mode)
        return self

    def _pack(self, state, names=("h_0", "c_0")):
        """(L*Dn, [B,] H) pairs -> the stack cell's (Dn, [B,] L*H) pairs."""
        if state is None:
            return None
        if not (isinstance(state, tuple) and len(state) == 2):
            raise ShapeError(f"{names[0][:-2]}: expected a tuple ({names[0]}, {names[1]}), got {type(state).__name__}")
        L, Dn, H = self.num_layers, self.num_directions, self.hidden_size
        out = []
        for name, a in zip(names, state):
            check.array(a, name, self.dtype, (2, 3))
            if a.shape[0] != L * Dn or a.shape[-1] != H:
                raise ShapeError(f"{name}: expected ({L * Dn}, batch, {H}) (num_layers * num_directions, "
                                 f"batch, hidden_size), got {a.shape}")
            mid = a.shape[1:-1]                                            # (B,) or ()
            a = a.reshape((L, Dn) + mid + (H,))
            out.append(np.ascontiguousarray(np.moveaxis(a, 0, -2)).reshape((Dn,) + mid + (L * H,)))
        return tuple(out)

    def _unpack(self, state):
        L, Dn, H = self.num_layers, self.num_directions, self.hidden_size
        out = []
        for a in state:
            mid = a.shape[1:-1]
            a = a.reshape((Dn,) + mid + (L, H))
            out.append(np.ascontiguousarray(np.moveaxis(a, -2, 0)).reshape((L * Dn,) + mid + (H,)))
        return tuple(out)

    def __call__(self, x, hx=None, lengths=None):
        return self.forward(x, hx, lengths)

    def forward(self, x, hx=None, lengths=None, keep_cache: bool = True):
        """The top layer's outputs and every layer's final (h, c), as `rnnlab.LSTM`."""
        y_all, state = self.stack.forward(x, self._pack(hx), lengths, keep_cache)
        L, Dn, H = self.num_layers, self.num_directions, self.hidden_size
        y = y_all.reshape(y_all.shape[:-1] + (Dn, L, H))[..., L - 1, :]  # each direction's top
        return np.ascontiguousarray(y).reshape(y_all.shape[:-1] + (Dn * H,)), self._unpack(state)

    def backward(self, doutput, dstate=None, *, on_state_grad=None):
        L, Dn, H = self.num_layers, self.num_directions, self.hidden_size
        d_all = None
        if doutput is not None:
            check.array(doutput, "doutput", self.dtype, (2, 3))
            d_all = np.zeros(doutput.shape[:-1] + (Dn, L, H), dtype=self.dtype)
            d_all[..., L - 1, :] = doutput.reshape(doutput.shape[:-1] + (Dn, H))
            d_all = d_all.reshape(doutput.shape[:-1] + (Dn * L * H,))
        dx, dst = self.stack.backward(d_all, self._pack(dstate, ("dh_n", "dc_n")), on_state_grad=on_state_grad)
        return dx, self._unpack(dst)

    def release_memory(self) -> None:
        """As `rnnlab.LSTM.release_memory`."""
        self.stack.release_memory()

    def stream(self, batch_size: int = 1, hx=None):
        raise ConfigError("stream: not available for DepthGatedLSTM yet; call the network on the sequence")

    def __repr__(self) -> str:
        return (f"DepthGatedLSTM({self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}, dtype={self.dtype})")


def _layer_norm_cell(make, bias: bool, **plain_only: object):
    """The layer-norm cell, refusing the options it does not combine with."""
    clash = [k for k, v in plain_only.items() if v]
    if clash:
        raise ConfigError(f"layer_norm: cannot be combined with {', '.join(clash)}")
    if not bias:
        raise ConfigError("layer_norm: needs bias=True (its biases sit after the normalisation)")
    return make()


class LSTM(_RecurrentNetwork):
    """LSTM, as `torch.nn.LSTM` (with `proj_size`), plus `peephole`, `cifg` and `forget_bias`;
    `layer_norm=True` gives the layer-normalised LSTM (`rnnlab.cells.layernorm`).

    `forward` returns `output, (h_n, c_n)`; see `rnnlab.cells.lstm` for the equations.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, *,
                 peephole: bool = False, cifg: bool = False, forget_bias: float | None = None,
                 layer_norm: bool = False, zoneout: float | tuple[float, float] = 0.0,
                 input_dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 dtype: object = np.float32, init: str = "pytorch",
                 rng: np.random.Generator | int | None = None, backend: str = "auto") -> None:
        H = check.positive_int(hidden_size, "hidden_size")
        P = check.positive_int(proj_size, "proj_size", allow_zero=True)
        if P >= H:
            raise ConfigError(f"proj_size: expected an int < hidden_size ({H}), got {P}")
        if layer_norm:
            cell = _layer_norm_cell(lambda: LayerNormLSTMCellConfig(H), bias, proj_size=P,
                                    peephole=peephole, cifg=cifg)
        else:
            cell = LSTMCellConfig(H, P, bool(peephole), bool(cifg))
        super().__init__(cell, input_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, init, rng, forget_bias,
                         Regularisers(zoneout, input_dropout, recurrent_dropout), backend)


class GRU(_RecurrentNetwork):
    """GRU, as `torch.nn.GRU`; `reset_after=False` gives Cho et al.'s original form;
    `layer_norm=True` the layer-normalised GRU (reset after, `rnnlab.cells.layernorm`)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, reset_after: bool = True, layer_norm: bool = False,
                 zoneout: float = 0.0, input_dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 dtype: object = np.float32, init: str = "pytorch",
                 rng: np.random.Generator | int | None = None, backend: str = "auto") -> None:
        H = check.positive_int(hidden_size, "hidden_size")
        if layer_norm:
            cell = _layer_norm_cell(lambda: LayerNormGRUCellConfig(H), bias, reset_before=not reset_after)
        else:
            cell = GRUCellConfig(H, bool(reset_after))
        super().__init__(cell, input_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, init, rng,
                         regularisers=Regularisers(zoneout, input_dropout, recurrent_dropout), backend=backend)
