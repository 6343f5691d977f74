"""Recurrent models with real-valued outputs: a multi-step forecaster and a multi-label
piano-roll model (polyphonic music, one Bernoulli per key and step)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _checks as check
from ..errors import ConfigError, ShapeError, ValueRangeError
from ..init import make_rng
from ..layers import Dense
from ..losses import binary_cross_entropy_with_logits, mean_squared_error
from .base import (Model, RecurrentConfig, config_from_dict, dataclass_dict, last_layer_state,
                   last_layer_state_grad, make_rnn, rnn_parameter_floor)


@dataclass
class RegressorConfig:
    input_size: int = 1
    output_size: int = 1
    rnn: RecurrentConfig = field(default_factory=lambda: RecurrentConfig("lstm", 32))

    def __post_init__(self) -> None:
        if not isinstance(self.rnn, RecurrentConfig):
            self.rnn = config_from_dict(RecurrentConfig, self.rnn, "rnn")
        check.positive_int(self.input_size, "input_size")
        check.positive_int(self.output_size, "output_size")


class SequenceRegressor(Model):
    """Many-to-one regression: x (T, B, D) -> recurrent net -> dense layer on the last state
    (B, K), mean squared error. The adding problem is one."""
    kind = "sequence_regressor"
    batch_axes = (1, 0)                       # x (T, B[, D]), y (B, K)

    def __init__(self, cfg: RegressorConfig, *, dtype: object = np.float32,
                 rng: np.random.Generator | int | None = None) -> None:
        self.cfg = cfg
        self.dtype = check.as_dtype(dtype)
        self.rng = make_rng(rng)
        self.rnn = make_rnn(cfg.rnn, cfg.input_size, self.dtype, self.rng)
        width = cfg.rnn.hidden_size * (2 if cfg.rnn.bidirectional else 1)
        self.head = Dense(width, cfg.output_size, dtype=self.dtype, rng=self.rng)

    def modules(self):
        return [("rnn", self.rnn), ("head", self.head)]

    def config(self) -> dict:
        return {"model": dataclass_dict(self.cfg)}

    @classmethod
    def from_config(cls, config: dict, dtype: object = np.float32):
        return cls(config_from_dict(cls.config_class, config["model"], "model"), dtype=dtype, rng=0)

    @classmethod
    def parameter_floor(cls, config: dict) -> int:
        cfg = config_from_dict(cls.config_class, config["model"], "model")
        width = cfg.rnn.hidden_size * (2 if cfg.rnn.bidirectional else 1)
        return rnn_parameter_floor(cfg.rnn, cfg.input_size) + width * cfg.output_size

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        return x

    def _predict(self, x: np.ndarray, keep_cache: bool) -> np.ndarray:
        _, state = self.rnn.forward(self._inputs(x), keep_cache=keep_cache)
        return self.head(last_layer_state(self.rnn, state))           # (B, K) from the last layer

    def forward_backward(self, batch, carry=None):
        x, y = batch
        pred = self._predict(x, True)
        loss, dpred = mean_squared_error(pred, y)
        dlast = self.head.backward(dpred)                             # (B, Dn*H)
        self.rnn.backward(None, last_layer_state_grad(self.rnn, dlast))
        return loss * len(y), len(y), None

    def evaluate_batch(self, batch, carry=None):
        x, y = batch
        loss, _ = mean_squared_error(self._predict(x, False), y)
        return {"loss": loss * len(y)}, len(y), None

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._predict(x, False)


SequenceRegressor.config_class = RegressorConfig


@dataclass
class ForecasterConfig(RegressorConfig):
    window: int = 48                          # past steps the model reads
    horizon: int = 1                          # future steps it predicts at once
    mean: float = 0.0                         # normalisation, from the training part
    std: float = 1.0
    column: int | str = -1                    # the CSV column it was trained on (name or index)
    test_fraction: float = 0.2                # the series' last part, held out from training

    def __post_init__(self) -> None:
        self.output_size = self.horizon
        super().__post_init__()
        check.positive_int(self.window, "window")
        check.positive_int(self.horizon, "horizon")
        if isinstance(self.column, bool) or not isinstance(self.column, (int, str)):
            raise ConfigError(f"column: expected a column name or index, got {self.column!r}")
        check.probability(self.test_fraction, "test_fraction")


class Forecaster(SequenceRegressor):
    """Reads a window of a (normalised) series x (T, B), predicts the next `horizon` values."""
    kind = "forecaster"
    config_class = ForecasterConfig

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        return x[..., None]                                           # (T, B) -> (T, B, 1)

    def evaluate_batch(self, batch, carry=None):
        x, y = batch
        pred = self._predict(x, False)
        loss, _ = mean_squared_error(pred, y)
        naive = np.repeat(x[-1][:, None], y.shape[1], axis=1)         # last value persists
        scale = self.cfg.std
        return {"loss": loss * len(y),
                "mae": float(np.abs(pred - y).mean(1).sum() * scale),
                "naive_mae": float(np.abs(naive - y).mean(1).sum() * scale)}, len(y), None

    def forecast(self, history: np.ndarray) -> np.ndarray:
        """The next `horizon` values after the last `window` values of `history` (raw units)."""
        h = np.asarray(history, dtype=np.float64)
        if h.ndim != 1 or len(h) < self.cfg.window:
            raise ShapeError(f"history: expected a 1-D series of at least window={self.cfg.window} "
                             f"values, got shape {h.shape}")
        if not np.isfinite(h).all():
            raise ValueRangeError("history: contains NaN or inf")
        x = ((h[-self.cfg.window:] - self.cfg.mean) / self.cfg.std).astype(self.dtype)[:, None]
        return self._predict(x, False)[0] * self.cfg.std + self.cfg.mean


@dataclass
class PianoRollConfig:
    keys: int = 88
    rnn: RecurrentConfig = field(default_factory=lambda: RecurrentConfig("lstm", 64))

    def __post_init__(self) -> None:
        if not isinstance(self.rnn, RecurrentConfig):
            self.rnn = config_from_dict(RecurrentConfig, self.rnn, "rnn")
        check.positive_int(self.keys, "keys")


class PianoRollModel(Model):
    """Predicts which of 88 keys sound at step t+1 from the rolls up to t (Boulanger-
    Lewandowski et al. 2012; Chung et al. 2014). Loss: NLL per step summed over keys."""
    kind = "piano_roll"
    batch_axes = (1, 0)                       # rolls (T+1, B, K), lengths (B,)

    def __init__(self, cfg: PianoRollConfig, *, dtype: object = np.float32,
                 rng: np.random.Generator | int | None = None) -> None:
        self.cfg = cfg
        self.dtype = check.as_dtype(dtype)
        self.rng = make_rng(rng)
        self.rnn = make_rnn(cfg.rnn, cfg.keys, self.dtype, self.rng)
        self.head = Dense(cfg.rnn.hidden_size, cfg.keys, dtype=self.dtype, rng=self.rng)

    def modules(self):
        return [("rnn", self.rnn), ("head", self.head)]

    def config(self) -> dict:
        return {"model": dataclass_dict(self.cfg)}

    @classmethod
    def from_config(cls, config: dict, dtype: object = np.float32) -> "PianoRollModel":
        return cls(config_from_dict(PianoRollConfig, config["model"], "model"), dtype=dtype, rng=0)

    @classmethod
    def parameter_floor(cls, config: dict) -> int:
        cfg = config_from_dict(PianoRollConfig, config["model"], "model")
        return rnn_parameter_floor(cfg.rnn, cfg.keys) + cfg.rnn.hidden_size * cfg.keys

    def _logits(self, batch, keep_cache: bool):
        rolls, lengths = batch                                            # (T+1, B, K), (B,) incl. target
        x, y = rolls[:-1], rolls[1:]
        steps = lengths - 1
        out, _ = self.rnn.forward(x, None, steps, keep_cache=keep_cache)
        mask = np.arange(len(x))[:, None] < steps[None, :]               # (T, B)
        return self.head(out), y, mask

    def forward_backward(self, batch, carry=None):
        logits, y, mask = self._logits(batch, True)
        loss, dlogits = binary_cross_entropy_with_logits(logits, y, mask, reduction="sum_labels")
        self.rnn.backward(self.head.backward(dlogits))
        n = int(mask.sum())
        return loss * n, n, None

    def evaluate_batch(self, batch, carry=None):
        logits, y, mask = self._logits(batch, False)
        loss, _ = binary_cross_entropy_with_logits(logits, y, mask, reduction="sum_labels")
        n = int(mask.sum())
        return {"loss": loss * n}, n, None
