"""Time-series forecasting from a CSV column, and polyphonic music from JSB-style JSON."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _checks as check
from ..data import DataError, bucket_batches, pad_sequences, read_csv_series, read_jsb_chorales
from ..errors import ConfigError
from ..models.base import RecurrentConfig, Regularisers
from ..models.sequence_regression import Forecaster, ForecasterConfig, PianoRollConfig, PianoRollModel
from ..train import TrainConfig, TrainResult, evaluate, train


def between_layers_only(dropout: float, num_layers: int) -> None:
    """These models drop out only between stacked layers: with one layer, dropout would do
    nothing, so it is refused rather than ignored."""
    if dropout and num_layers < 2:
        raise ConfigError(f"dropout: acts between stacked layers and needs num_layers >= 2, got "
                          f"num_layers={num_layers} (or use zoneout, input_dropout, recurrent_dropout)")


def windows(z: np.ndarray, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """All (window, horizon) pairs of a series: x (window, N), y (N, horizon)."""
    n = len(z) - window - horizon + 1
    if n < 1:
        raise DataError(f"series: {len(z)} values are too few for window={window} + horizon={horizon}")
    idx = np.arange(n)[:, None]
    return z[idx + np.arange(window)].T, z[idx + window + np.arange(horizon)]


@dataclass
class WindowTask:
    x: np.ndarray
    y: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    batch_size: int
    carries_state: bool = False

    def train_batches(self, rng):
        order = rng.permutation(self.x.shape[1])
        return [(self.x[:, b], self.y[b]) for b in np.array_split(order, max(1, len(order) // self.batch_size))]

    def valid_batches(self):
        return [(self.vx, self.vy)]


def train_forecaster(csv_path: str | Path, run_dir: str | Path = "runs/forecaster", *,
                     column: int | str = -1, window: int = 48, horizon: int = 1, cell: str = "lstm",
                     hidden_size: int = 32, num_layers: int = 1, dropout: float = 0.0,
                     batch_size: int = 32, test_fraction: float = 0.2, train_config: TrainConfig | None = None,
                     resume: bool = True, progress: bool = True,
                     regularisers: Regularisers | None = None) -> TrainResult:
    """The series' first (1 - test_fraction) trains (normalised by its mean and std), the rest
    validates; windows never straddle the cut. The column, the normalisation and the cut are
    stored in the checkpoint, so evaluation and prediction read the same column.
    `dropout` acts between stacked layers (num_layers > 1)."""
    between_layers_only(dropout, num_layers)
    for name, v in (("window", window), ("horizon", horizon), ("batch_size", batch_size)):
        check.positive_int(v, name)
    series = read_csv_series(csv_path, column)
    cut = held_out_start(len(series), test_fraction)
    mean, std = float(series[:cut].mean()), float(series[:cut].std() + 1e-8)
    z = ((series - mean) / std).astype(np.float32)
    rc = RecurrentConfig.make(cell, hidden_size, num_layers, dropout, regularisers=regularisers)
    cfg = ForecasterConfig(1, horizon, rc, window, horizon, mean, std, column, test_fraction)
    tc = train_config or TrainConfig()
    model = Forecaster(cfg, rng=tc.seed)
    x, y = windows(z[:cut], window, horizon)
    vx, vy = windows(z[cut - window:], window, horizon)
    return train(model, WindowTask(x, y, vx, vy, batch_size), tc, run_dir, resume=resume, progress=progress)


def held_out_start(n: int, test_fraction: float) -> int:
    """Where the held-out part of a series of n values begins."""
    return int(n * (1 - test_fraction))


def evaluate_forecaster(model: Forecaster, csv_path: str | Path, column: int | str | None = None,
                        held_out: bool = False) -> dict[str, float]:
    """MAE, naive last-value MAE and loss over every window of the series' `column` (default:
    the column the model was trained on); `held_out` scores only the windows whose targets lie
    in the part held out from training (the same cut as training used)."""
    cfg = model.cfg
    z = ((read_csv_series(csv_path, cfg.column if column is None else column) - cfg.mean) / cfg.std
         ).astype(model.dtype)
    if held_out:
        z = z[max(0, held_out_start(len(z), cfg.test_fraction) - cfg.window):]
    x, y = windows(z, cfg.window, cfg.horizon)
    return evaluate(model, [(x, y)], False)


def predict_forecaster(model: Forecaster, csv_path: str | Path, column: int | str | None = None) -> list[float]:
    """The next `horizon` values after the series' last `window` values."""
    return model.forecast(read_csv_series(csv_path, model.cfg.column if column is None else column)).tolist()


@dataclass
class RollTask:
    train_rolls: list[np.ndarray]
    valid_rolls: list[np.ndarray]
    batch_size: int
    carries_state: bool = False

    @staticmethod
    def _batch(rolls, idx):
        x, lengths = pad_sequences([rolls[i] for i in idx], pad=0, dtype=np.float32)
        return x, lengths

    def train_batches(self, rng):
        lengths = np.array([len(r) for r in self.train_rolls])
        return [self._batch(self.train_rolls, b) for b in bucket_batches(lengths, self.batch_size, rng)]

    def valid_batches(self):
        lengths = np.array([len(r) for r in self.valid_rolls])
        return [self._batch(self.valid_rolls, b) for b in bucket_batches(lengths, 64)]


def train_music(json_path: str | Path, run_dir: str | Path = "runs/music", *, cell: str = "lstm",
                hidden_size: int = 64, num_layers: int = 1, dropout: float = 0.0, batch_size: int = 8,
                train_config: TrainConfig | None = None, resume: bool = True,
                progress: bool = True, regularisers: Regularisers | None = None) -> TrainResult:
    """Next-step piano-roll prediction on the "train" split, validated on "valid". `dropout`
    acts between stacked layers (num_layers > 1)."""
    between_layers_only(dropout, num_layers)
    check.positive_int(batch_size, "batch_size")
    data = read_jsb_chorales(json_path)
    rolls = {k: [r for r in v if len(r) >= 2] for k, v in data.items()}
    tc = train_config or TrainConfig()
    rc = RecurrentConfig.make(cell, hidden_size, num_layers, dropout, regularisers=regularisers)
    model = PianoRollModel(PianoRollConfig(88, rc), rng=tc.seed)
    return train(model, RollTask(rolls["train"], rolls["valid"], batch_size), tc, run_dir,
                 resume=resume, progress=progress)


def evaluate_music(model: PianoRollModel, json_path: str | Path, split: str = "test") -> dict[str, float]:
    rolls = [r for r in read_jsb_chorales(json_path)[split] if len(r) >= 2]
    return evaluate(model, RollTask([], rolls, 1).valid_batches(), False)
