"""The forecaster remembers its column and held-out part; dropout is honoured or refused."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli import cli
from rnnlab.errors import RnnlabError
from rnnlab.recipes import evaluate_checkpoint, load_model, predict_checkpoint
from rnnlab.recipes.series import train_forecaster, train_music
from rnnlab.train import TrainConfig


@pytest.fixture()
def csv_file(tmp_path):
    """Passengers in the hundreds, then a last column of small numbers (the old default)."""
    t = np.arange(150)
    rows = "".join(f"{i},{300 + 100 * np.sin(i / 4):.2f},{i % 3}\n" for i in t)
    p = tmp_path / "air.csv"
    p.write_text("Month,Passengers,Other\n" + rows)
    return p


def test_the_trained_column_is_read_again(tmp_path, csv_file):
    r = train_forecaster(csv_file, tmp_path / "run", column="Passengers", window=12, hidden_size=8,
                         train_config=TrainConfig(epochs=2), progress=False)
    model, _ = load_model(r.best_checkpoint)
    assert model.cfg.column == "Passengers"
    stored = evaluate_checkpoint(r.best_checkpoint, csv_file)
    named = evaluate_checkpoint(r.best_checkpoint, csv_file, column="Passengers")
    assert stored == named and stored["naive_mae"] > 1.0          # the other column's would be ~1
    held = evaluate_checkpoint(r.best_checkpoint, csv_file, held_out=True)
    # the held-out windows are the validation windows of training: the same MAE as logged
    log = [json.loads(x) for x in r.metrics_log.read_text().splitlines()]
    best = min(log, key=lambda rec: rec["val_loss"])
    assert held["mae"] == pytest.approx(best["val_mae"], rel=1e-5)
    forecast = predict_checkpoint(r.best_checkpoint, csv_file)
    assert 150 < forecast[0] < 450                                 # in the units of Passengers
    res = CliRunner().invoke(cli, ["evaluate", str(r.best_checkpoint), str(csv_file), "--held-out"])
    assert res.exit_code == 0 and json.loads(res.output)["mae"] == pytest.approx(held["mae"])


def test_dropout_is_honoured_between_layers_or_refused(tmp_path, csv_file):
    with pytest.raises(RnnlabError, match="dropout: acts between stacked layers"):
        train_forecaster(csv_file, tmp_path / "a", dropout=0.3, hidden_size=4, progress=False)
    r = train_forecaster(csv_file, tmp_path / "b", dropout=0.3, num_layers=2, window=8, hidden_size=4,
                         train_config=TrainConfig(epochs=1), progress=False)
    model, _ = load_model(r.best_checkpoint)
    assert model.rnn.dropout == 0.3
    with pytest.raises(RnnlabError, match="dropout: acts between stacked layers"):
        train_music(tmp_path / "none.json", tmp_path / "c", dropout=0.3, progress=False)
