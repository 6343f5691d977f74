import json

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli import cli
from rnnlab.data import Vocab
from rnnlab.data.synthetic import embedded_reber
from rnnlab.models import LanguageModel, LanguageModelConfig, RecurrentConfig
from rnnlab.recipes.compare import compare_cells, reber_correct
from rnnlab.train import TrainConfig


@pytest.mark.parametrize("task", ["adding", "copy", "reber", "first_token"])
def test_compare_runs_every_task_and_writes_its_outputs(task, tmp_path):
    r = compare_cells(task, length=8, cells=("rnn", "lstm"), seeds=2, hidden_size=6, n_train=60, n_test=20,
                      batch_size=20, train_config=TrainConfig(epochs=1, lr=1e-2), run_dir=tmp_path, progress=False)
    assert len(r.rows) == 4 and {row["cell"] for row in r.rows} == {"rnn", "lstm"}
    for name in ("results.json", "table.md", "learning_curves.png", "gradient_flow_trained.png", "report.html"):
        assert (tmp_path / name).stat().st_size > 0
    assert json.loads((tmp_path / "results.json").read_text()) == r.rows


def test_curves_of_different_lengths_average_aligned_at_the_end():
    from rnnlab.recipes.compare import mean_aligned_at_end
    np.testing.assert_allclose(mean_aligned_at_end([np.array([1.0, 2.0, 3.0]), np.array([5.0, 7.0])]),
                               [1.0, 3.5, 5.0])


def test_reber_scoring_counts_legal_sets():
    """A model that puts all its mass on nothing in particular gets few sets right; the
    scorer checks the top-k set against the legal successors."""
    vocab = Vocab(list("BTPSXVE"))
    m = LanguageModel(vocab, LanguageModelConfig("char", 4, RecurrentConfig("lstm", 4)), rng=0)
    strings = embedded_reber(30, np.random.default_rng(0))
    acc = reber_correct(m, strings)
    assert 0.0 <= acc < 0.9


def test_compare_and_gradient_flow_commands(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["compare", "--task", "first_token", "--length", "5", "--cells", "gru,lstm_cifg",
                              "--seeds", "1", "--hidden-size", "4", "--n-train", "40", "--n-test", "10",
                              "--epochs", "1", "--run-dir", str(tmp_path / "c"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "| gru |" in res.output and "report:" in res.output
    res = runner.invoke(cli, ["compare", "--cells", "rnn,transformer"])
    assert res.exit_code == 2 and "transformer" in res.output
    res = runner.invoke(cli, ["gradient-flow", "--length", "30", "--hidden-size", "8", "--out", str(tmp_path / "g.png")])
    assert res.exit_code == 0 and "orders of magnitude per 50 steps" in res.output
    assert "cell state c" in res.output                              # LSTM: also through c
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
