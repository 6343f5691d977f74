"""The benchmark command's pieces: FLOP counts, timing rows, the report, peak memory."""

import time

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli import cli
from rnnlab.errors import ConfigError
from rnnlab.recipes import bench


def test_flops_count_the_gemms():
    # LSTM forward: per step x @ W_ih^T (B x D x 4H) and h @ W_hh^T (B x H x 4H), 2 FLOPs per MAC
    assert bench.network_flops("LSTM", 8, 2, 3, "inference") == 2 * 3 * 2 * 4 * 8 * 16
    assert bench.network_flops("GRU", 8, 2, 3, "training") == 3 * 2 * 3 * 2 * 3 * 8 * 16
    assert bench.network_flops("RNN", 8, 1, 1, "stream") == 2 * 8 * 16


@pytest.fixture
def no_pauses(monkeypatch):
    """bench's pauses between timed calls (they let the machine settle) skipped: these tests
    check what is timed and reported, not how well."""
    monkeypatch.setattr(bench.time, "sleep", lambda s: None)


def test_bench_point_times_every_available_peer(no_pauses):
    peers = bench.available_peers()
    for mode in bench.MODES:
        row = bench.bench_point("GRU", 8, 1, 4, mode, rounds=1, peers=peers, threads=1)
        assert row.ours_s > 0 and row.gflops() > 0
        expected = {p for p in peers if not (p == "onnxruntime" and mode == "training")}
        assert set(row.peers_s) == expected


class _Clock:
    """bench's clock, advanced only by the calls it times: the counts below cannot depend on
    how busy the machine is."""

    def __init__(self, monkeypatch):
        self.now = 0.0
        monkeypatch.setattr(bench.time, "perf_counter", lambda: self.now)
        monkeypatch.setattr(bench.time, "sleep", lambda s: None)

    def taking(self, seconds, counts=None, name=None):
        """A call that takes `seconds` (an iterator of them, or one value) on this clock."""
        durations = iter(seconds) if not isinstance(seconds, float) else None

        def call():
            if counts is not None:
                counts[name] += 1
            self.now += next(durations) if durations is not None else seconds
        return call


def test_a_round_is_the_mean_of_calls_filling_round_s(monkeypatch):
    clock = _Clock(monkeypatch)
    calls = []
    assert bench._timed(lambda: (calls.append(1), clock.taking(1e-3)()), 3) == pytest.approx(1e-3)
    assert len(calls) == 3
    # a function taking 1 ms is called ROUND_S / 1 ms = 50 times a round, the slow one once
    counts = {"fast": 0, "slow": 0}
    monkeypatch.setattr(bench, "GAP_S", 0.0)
    monkeypatch.setattr(bench, "_functions", lambda *a: {"rnnlab": clock.taking(1e-3, counts, "fast"),
                                                         "torch": clock.taking(0.06, counts, "slow")})
    row = bench.bench_point("GRU", 8, 1, 4, "inference", rounds=2, peers=["torch"], threads=1)
    assert counts["slow"] == 1 + 1 + 2                           # warm-up, count, two rounds of one
    assert counts["fast"] - 4 == 2 * 50                          # warm-up, 3 counted, 50 a round
    assert row.ours_s == pytest.approx(1e-3) and row.peers_s["torch"] == pytest.approx(0.06)   # a call, not a round


def test_one_slow_call_does_not_leave_one_call_a_round(monkeypatch):
    """The first point of a kind once read 2.5 ms for a 0.1 ms call: its counting call was slow,
    so each round timed a single call after the idle gap."""
    clock = _Clock(monkeypatch)
    assert bench._calls_per_round(clock.taking([0.02] + [1e-3] * 10)) == 50


def test_run_bench_report_and_errors(no_pauses):
    rows = []
    rep = bench.run_bench(("RNN",), (8,), (1, 2), (3,), ("inference", "stream"), rounds=1, threads=1,
                          peers=[], memory=False, on_row=lambda r, peak: rows.append(r))
    assert [(r.B, r.mode) for r in rep.rows] == [(1, "inference"), (1, "stream"), (2, "inference")]
    assert rows == rep.rows and rep.gemm_peak_gflops > 0
    text = bench.format_report(rep)
    assert "| RNN | 8 | 2 | 3 | inference |" in text and "torch" not in text.split("\n", 2)[2]
    assert "NumPy's BLAS: " in text.split("\n", 1)[0]          # the machine line says which kernels
    with pytest.raises(ConfigError, match="kinds"):
        bench.run_bench(("LSTMX",), (8,), (1,), (3,), peers=[], memory=False)
    with pytest.raises(ConfigError, match="modes"):
        bench.run_bench(("RNN",), (8,), (1,), (3,), ("fast",), peers=[], memory=False)


def test_the_machine_line_names_pinned_blas_kernels(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert bench._blas_kernels().endswith("(OPENBLAS_CORETYPE=Haswell set in the environment)")
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert "OPENBLAS_CORETYPE" not in bench._blas_kernels()
    assert bench._vector_isa() in ("AVX512F", "AVX2", "AVX", "SSE2", "vector extensions unknown")


def test_the_machine_line_names_the_cpu_family_and_model(monkeypatch):
    """A virtual machine may call its CPU only "AMD EPYC"; family and model tell Zen 4 from 5."""
    class Info:
        def __init__(self, text):
            self.text = text

        def read_text(self):
            return self.text
    two_cpus = "processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n\nprocessor\t: 1\n"
    monkeypatch.setattr(bench, "Path", lambda _: Info(two_cpus + "cpu family\t: 99\n"))
    assert bench._cpu_name() == "AMD EPYC (family 25, model 17)"
    monkeypatch.setattr(bench, "Path", lambda _: Info("model name\t: Some ARM\n"))
    assert bench._cpu_name() == "Some ARM"


def test_training_memory_is_linear_in_T_and_near_the_saved_activations():
    ms = [bench.training_memory("LSTM", 32, 16, T) for T in (20, 40, 80)]
    saved = [m["saved_activations_mb"] for m in ms]
    assert saved[1] == pytest.approx(2 * saved[0], rel=0.05) and saved[2] == pytest.approx(4 * saved[0], rel=0.05)
    peaks = np.array([m["peak_mb"] for m in ms])
    assert (peaks >= np.array(saved)).all()
    assert peaks[2] - peaks[1] == pytest.approx(2 * (peaks[1] - peaks[0]), rel=0.15)  # linear growth
    assert (peaks / np.array(saved) < 2.5).all()


def test_rnn_training_memory_holds_one_chunk_of_gate_gradients():
    """Past one chunk of steps (2048 rows), an RNN's training peak grows by its saved outputs
    and its input gradient only (2x the saved activations a step, D = H), not by a (T, B, H)
    buffer of gate gradients as well (3x)."""
    ms = [bench.training_memory("RNN", 64, 64, T) for T in (100, 200, 400)]
    saved = np.array([m["saved_activations_mb"] for m in ms])
    peaks = np.array([m["peak_mb"] for m in ms])
    growth = (peaks[2] - peaks[1]) / (saved[2] - saved[1])
    assert 1.9 < growth < 2.2
    assert peaks[2] / saved[2] < 2.2


def test_bench_command(tmp_path, no_pauses):
    out = tmp_path / "table.md"
    res = CliRunner().invoke(cli, ["bench", "--cells", "LSTM", "--hidden-sizes", "8", "--batch-sizes", "1", "--steps", "3",
                                   "--rounds", "1", "--no-memory", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "| LSTM | 8 | 1 | 3 | stream |" in out.read_text()
    res = CliRunner().invoke(cli, ["bench", "--hidden", "8,x"])
    assert res.exit_code == 2 and "--hidden" in res.output


def test_issue7_kinds_run_without_peers(no_pauses):
    for kind in ("LSTM_LN", "GRU_LN", "CLOCKWORK", "DG_LSTM", "LSTM_ZONEOUT"):
        for mode in bench.MODES:
            row = bench.bench_point(kind, 8, 1, 3, mode, rounds=1, peers=bench.available_peers(), threads=1)
            if kind == "DG_LSTM" and mode == "stream":
                assert row is None
                continue
            assert row.ours_s > 0 and row.peers_s == {}
    m = bench.training_memory("DG_LSTM", 16, 4, 10)
    assert m["peak_mb"] >= m["saved_activations_mb"] > 0
