"""The model benchmark's pieces: each case's two models, where a step's time goes, its memory."""

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli import cli
from rnnlab.errors import ConfigError
from rnnlab.layers import Dense, Embedding
from rnnlab.recipes import bench_models as bm


@pytest.mark.parametrize("name", list(bm.CASES))
def test_both_libraries_build_the_same_architecture(name):
    torch = pytest.importorskip("torch")
    case = bm.CASES[name](torch)
    ours, theirs = case.parameters
    assert ours == theirs > 0                     # the same layers, sizes and biases in both
    assert case.state_bytes == 3 * 4 * ours       # float32 gradients + Adam's two moments


def test_a_case_runs_without_torch():
    case = bm.CASES["forecaster"](None)
    assert case.theirs_train is None and case.parameters[1] is None
    case.ours_train()
    case.ours_eval()


def test_parts_are_found_by_module():
    assert bm._part("/x/site-packages/rnnlab/kernels/_jit.py") == "recurrent"
    assert bm._part("/x/rnnlab/layers/embedding.py") == "embedding"
    assert bm._part("/x/rnnlab/layers/attention.py") == "attention"
    assert bm._part("/x/rnnlab/optim/_fused.py") == "optimizer"
    assert bm._part("/x/rnnlab/models/tagger.py") is None       # the model's glue: "other"
    assert bm._part("/usr/lib/python3.11/json/__init__.py") is None


def test_shares_count_the_time_inside_each_part():
    rng = np.random.default_rng(0)
    emb, head = Embedding(5000, 64, rng=rng), Dense(64, 5000, rng=rng)
    ids = rng.integers(0, 5000, (50, 20))

    def step():
        y = head(emb(ids))                        # the dense head dominates: 64 x 5000 per token
        emb.backward(head.backward(np.ones_like(y)))
    shares = bm.step_shares(step, steps=2)
    assert set(shares) == set(bm.PARTS) | {"other"}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["head"] > 0.5 and shares["embedding"] > 0
    assert shares["recurrent"] == shares["optimizer"] == 0


def test_bench_case_times_both_and_reports_memory():
    torch = pytest.importorskip("torch")
    r = bm.bench_case("forecaster", rounds=1, torch=torch, profile=False, memory=True, threads=1)
    assert set(r.train_ms) == set(r.eval_ms) == {"rnnlab", "torch"}
    assert all(v > 0 for v in r.train_ms.values())
    if bm._resident_mb() is not None:             # Linux: peaks of fresh processes
        assert set(r.peak_mb) == {"rnnlab train", "rnnlab eval", "torch train", "torch eval"}
        assert all(v >= 0 for v in r.peak_mb.values())
    assert "| forecaster | 32 x 48 |" in bm.format_models([r], 1, 1)


def test_unknown_model_is_refused():
    with pytest.raises(ConfigError, match="models: expected some of"):
        bm.run_models(("gpt",))


def test_cli_runs_the_model_bench():
    res = CliRunner().invoke(cli, ["bench", "--models", "forecaster", "--rounds", "1", "--no-memory", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "| forecaster | 32 x 48 |" in res.output and "Machine:" in res.output
