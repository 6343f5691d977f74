"""The GEMM floor: the GEMMs a call makes, timed alone in their fastest layout."""

import time

import numpy as np
import pytest

from rnnlab.errors import ConfigError
from rnnlab.recipes import bench, gemm_floor


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("mode", ["inference", "training", "stream"])
def test_the_floor_lists_every_flop_the_bench_counts(kind, mode):
    for H, B, T in ((8, 1, 3), (64, 32, 50), (1024, 128, 200)):
        gemms = gemm_floor.network_gemms(kind, H, B, T, mode)
        assert sum(g.flops() for g in gemms) == bench.network_flops(kind, H, B, T, mode)


def test_the_recurrent_gemms_are_one_a_step_at_the_batch_size():
    gemms = {g.what: g for g in gemm_floor.network_gemms("LSTM", 16, 4, 7, "training")}
    assert (gemms["h W_hh^T"].m, gemms["h W_hh^T"].k, gemms["h W_hh^T"].n, gemms["h W_hh^T"].count) == (4, 16, 64, 7)
    assert (gemms["dA W_hh"].m, gemms["dA W_hh"].k, gemms["dA W_hh"].n, gemms["dA W_hh"].count) == (4, 64, 16, 7)
    assert gemms["X W_ih^T"].m == 28 and gemms["X W_ih^T"].count == 1


def test_bad_kind_and_mode_are_named():
    with pytest.raises(ConfigError, match="kind: .*'LSTM_LN'"):
        gemm_floor.network_gemms("LSTM_LN", 8, 1, 3, "inference")
    with pytest.raises(ConfigError, match="mode: .*'fast'"):
        gemm_floor.network_gemms("GRU", 8, 1, 3, "fast")


def test_the_three_layouts_compute_the_same_product():
    rng = np.random.default_rng(0)
    first, view, transposed = (fn() for fn in gemm_floor._layouts(5, 7, 3, rng))
    assert first.shape == view.shape == (5, 3) and transposed.shape == (3, 5)
    np.testing.assert_allclose(view, first, rtol=1e-5)
    np.testing.assert_allclose(transposed.T, first, rtol=1e-5)


def test_the_fastest_layout_is_the_one_kept():
    def sleeper(seconds):
        return lambda: time.sleep(seconds)
    fast = sleeper(0.001)
    assert gemm_floor._fastest([sleeper(0.02), fast, sleeper(0.01)], tries=2) is fast


def test_the_floor_runs_each_gemm_its_count_of_times(monkeypatch):
    calls = []
    monkeypatch.setattr(gemm_floor, "_layouts", lambda m, k, n, rng: [lambda: calls.append((m, k, n))])
    run = gemm_floor.floor_function("GRU", 8, 2, 5, "training")
    calls.clear()
    run()
    assert calls.count((2, 8, 24)) == 5 and calls.count((2, 24, 8)) == 5
    assert calls.count((24, 10, 8)) == 2 and calls.count((10, 8, 24)) == 1 and len(calls) == 14


def test_bench_rows_carry_the_floor_for_the_peered_cells():
    row = bench.bench_point("LSTM", 8, 2, 3, "training", rounds=1, peers=[], threads=1)
    assert row.floor_s > 0 and row.gflops(row.floor_s) > 0
    line = bench.format_row(row, 100.0, [])
    head = bench.table_header([]).split("\n")[0]
    assert line.count("|") == head.count("|") == 11 and f"| {1e3 * row.floor_s:.2f} |" in line
    assert bench.format_row(row, 100.0, ["torch"]).count("|") == bench.table_header(["torch"]).split("\n")[0].count("|")
    assert bench.bench_point("LSTM_LN", 8, 2, 3, "inference", rounds=1, peers=[], threads=1).floor_s is None
