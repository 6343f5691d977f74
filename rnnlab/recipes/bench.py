"""`rnnlab bench`: rnnlab's RNN/LSTM/GRU timed against torch.nn and onnxruntime in one process.

Method (see ../shared/notes/performance-baseline.md for why): for each grid point every
library's function runs once to warm up, then `rounds` interleaved rounds, with an idle gap
between libraries (OpenBLAS threads spin ~0.1 s after a call and slow whatever runs next); the
figure is the median. A round calls the function as many times as fill about `ROUND_S`
(counted at warm-up, the same count in every round) and takes the mean call: one
sub-millisecond call after an idle gap measures the machine waking up, not the function.
Peers that are not installed are skipped and said so. For RNN, LSTM and GRU the rounds also
time the point's GEMM floor (gemm_floor.py): the GEMMs alone, through NumPy's BLAS.

Modes: inference (the whole sequence, no cache kept), training (forward and backward of all
outputs; torch builds its graph and runs backward; onnxruntime has none), stream (B = 1 only:
T calls of one step each with the state carried: rnnlab's `Stream`, torch called on (1, 1, D)
with its hidden state, onnxruntime's session run per step).
FLOPs count the GEMMs only: forward 2 T B G H (D + H) with G gate blocks; training 3x that.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import GRU, LSTM, RNN, ClockworkRNN, DepthGatedLSTM, __version__
from ..errors import ConfigError
from ..kernels import _jit
from ..threads import shared_pool
from .gemm_floor import GATE_BLOCKS, floor_function

KINDS = {  # kind -> network of input and hidden size H; the first three have torch/ONNX peers
    "RNN": lambda H: RNN(H, H, rng=0),
    "LSTM": lambda H: LSTM(H, H, rng=0),
    "GRU": lambda H: GRU(H, H, rng=0),
    "LSTM_LN": lambda H: LSTM(H, H, layer_norm=True, rng=0),
    "GRU_LN": lambda H: GRU(H, H, layer_norm=True, rng=0),
    "CLOCKWORK": lambda H: ClockworkRNN(H, H, num_modules=min(8, H), rng=0),
    "DG_LSTM": lambda H: DepthGatedLSTM(H, H, num_layers=2, rng=0),
    "LSTM_ZONEOUT": lambda H: LSTM(H, H, zoneout=0.1, rng=0),
}
PEERED = ("RNN", "LSTM", "GRU")
# GEMM multiply-adds per step and batch row, in units of H^2 (D = H): input + recurrent blocks
MACS = {"RNN": 2, "LSTM": 8, "GRU": 6, "LSTM_LN": 8, "GRU_LN": 6, "CLOCKWORK": 2,
        "DG_LSTM": 8 + 9, "LSTM_ZONEOUT": 8}
MODES = ("inference", "training", "stream")
GAP_S = 0.3
FLOOR = "GEMM floor"
ROUND_S = 0.05


def available_peers() -> list[str]:
    return [p for p in ("torch", "onnxruntime") if importlib.util.find_spec(p) is not None]


def gemm_peak(n: int = 2048, rounds: int = 10) -> float:
    """The machine's float32 GEMM throughput through NumPy's BLAS, GFLOP/s: the best round (a
    slower one is another job on the machine, not the machine)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / min(times) / 1e9


def network_flops(kind: str, H: int, B: int, T: int, mode: str) -> float:
    """GEMM FLOPs of one call (input size D = H; one layer, DG_LSTM two; Clockwork's mask
    not discounted)."""
    fwd = 2.0 * T * B * MACS[kind] * H * H
    return 3 * fwd if mode == "training" else fwd


def _timed(fn: Callable[[], object], calls: int = 1) -> float:
    """Seconds per call, the mean of `calls` calls in a row."""
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def _calls_per_round(fn: Callable[[], object]) -> int:
    """How many calls fill ROUND_S: from the fastest of three timed calls where one is shorter
    than a round. A single slow call (the first of a kind in a process read 2.5-4 ms where 0.1
    was right) would otherwise leave one call a round, and one short call after the idle gap
    measures the machine waking up."""
    per_call = _timed(fn)
    if per_call < ROUND_S:
        per_call = min(per_call, _timed(fn), _timed(fn))
    return max(1, min(1000, round(ROUND_S / per_call)))


@dataclass
class Row:
    kind: str
    H: int
    B: int
    T: int
    mode: str
    ours_s: float
    peers_s: dict[str, float] = field(default_factory=dict)
    floor_s: float | None = None          # the GEMMs alone (gemm_floor), where measured

    def gflops(self, seconds: float | None = None) -> float:
        """GFLOP/s of rnnlab's call, or of a call taking `seconds`."""
        s = self.ours_s if seconds is None else seconds
        return network_flops(self.kind, self.H, self.B, self.T, self.mode) / s / 1e9


@dataclass
class BenchReport:
    machine: str
    versions: dict[str, str]
    threads: int
    rounds: int
    gemm_peak_gflops: float
    rows: list[Row]
    memory: list[dict] = field(default_factory=list)


def _functions(kind: str, H: int, B: int, T: int, mode: str, peers: list[str], threads: int):
    """{library: zero-argument function} for one grid point and mode."""
    rng = np.random.default_rng(0)
    net = KINDS[kind](H)
    x = rng.standard_normal((T, B, H)).astype(np.float32)
    g = rng.standard_normal((T, B, H)).astype(np.float32)
    fns: dict[str, Callable[[], object]] = {}
    if kind not in PEERED:
        peers = []
    if mode == "inference":
        fns["rnnlab"] = lambda: net.forward(x, keep_cache=False)
    elif mode == "training":
        def ours_train():
            net(x)
            net.backward(g)
        fns["rnnlab"] = ours_train
    elif kind == "DG_LSTM":
        return {}                                     # no streaming for it yet
    else:
        stream = net.stream(batch_size=B)

        def ours_stream():
            stream.reset()
            for t in range(T):
                stream.step(x[t])
        fns["rnnlab"] = ours_stream
    if "torch" in peers:
        import torch
        torch.set_num_threads(threads)
        tm = getattr(torch.nn, kind)(H, H)
        tm.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in net.state_dict().items()})
        xt, gt = torch.from_numpy(x), torch.from_numpy(g)
        if mode == "inference":
            def torch_inf():
                with torch.no_grad():
                    tm(xt)
            fns["torch"] = torch_inf
        elif mode == "training":
            def torch_train():
                tm.zero_grad(set_to_none=True)
                out, _ = tm(xt.clone().requires_grad_(True))
                out.backward(gt)
            fns["torch"] = torch_train
        else:
            def torch_stream():
                with torch.no_grad():
                    state = None
                    for t in range(T):
                        _, state = tm(xt[t:t + 1], state)
            fns["torch"] = torch_stream
    if "onnxruntime" in peers and mode != "training":
        fns["onnxruntime"] = _ort_function(net, x, mode, threads)
    if kind in GATE_BLOCKS:
        fns[FLOOR] = floor_function(kind, H, B, T, mode)
    return fns


def _ort_function(net, x: np.ndarray, mode: str, threads: int):
    import onnxruntime as ort

    from ..interop.onnx_io import export_network
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(export_network(net).SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    T, B, _ = x.shape
    lstm = len(net.cell.carry_sizes()) == 2
    feeds = {"sequence_lens": np.full(B, T, np.int32),
             "initial_h": np.zeros((1, B, net.hidden_size), np.float32)}
    if lstm:
        feeds["initial_c"] = np.zeros((1, B, net.hidden_size), np.float32)
    if mode == "inference":
        feeds["X"] = x
        return lambda: sess.run(None, feeds)
    one = dict(feeds, sequence_lens=np.ones(B, np.int32))

    def ort_stream():
        f = dict(one)
        for t in range(T):
            f["X"] = x[t:t + 1]
            out = sess.run(None, f)
            f["initial_h"] = out[1]
            if lstm:
                f["initial_c"] = out[2]
    return ort_stream


def bench_point(kind: str, H: int, B: int, T: int, mode: str, rounds: int, peers: list[str],
                threads: int) -> Row | None:
    """One row, or None where the mode does not apply (DG_LSTM has no streaming). rnnlab is
    timed at its fastest: inside `rnnlab.threads.shared_pool()`, the packed loops on."""
    with shared_pool():
        return _bench_point(kind, H, B, T, mode, rounds, peers, threads)


def _bench_point(kind: str, H: int, B: int, T: int, mode: str, rounds: int, peers: list[str],
                 threads: int) -> Row | None:
    fns = _functions(kind, H, B, T, mode, peers, threads)
    if not fns:
        return None
    calls = {}
    for k, fn in fns.items():                                 # warm-up, then count calls a round
        fn()
        calls[k] = _calls_per_round(fn)
        time.sleep(GAP_S)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):                                   # interleaved rounds
        for k, fn in fns.items():
            times[k].append(_timed(fn, calls[k]))
            time.sleep(GAP_S)
    med = {k: statistics.median(v) for k, v in times.items()}
    return Row(kind, H, B, T, mode, med.pop("rnnlab"), floor_s=med.pop(FLOOR, None), peers_s=med)


def training_memory(kind: str, H: int, B: int, T: int) -> dict:
    """Peak memory (tracemalloc, NumPy's allocations) of one training call against what the
    saved activations need; the network and the input are not counted."""
    with shared_pool():                         # as the calls it measures run in bench_point
        return _training_memory(kind, H, B, T)


def _training_memory(kind: str, H: int, B: int, T: int) -> dict:
    rng = np.random.default_rng(0)
    net = KINDS[kind](H)
    x = rng.standard_normal((T, B, H)).astype(np.float32)
    g = rng.standard_normal((T, B, H)).astype(np.float32)
    net(x[:1])                                  # compiled code loads (or compiles) outside the count
    net.backward(g[:1])
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    net(x)
    cache = net.saved
    saved = {id(_root(a)): _root(a).nbytes for sc in cache.scans[0] for a in sc.caches}
    net.backward(g)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    net.release_memory()
    return {"kind": kind, "H": H, "B": B, "T": T, "peak_mb": peak / 2 ** 20,
            "saved_activations_mb": sum(saved.values()) / 2 ** 20}


def _root(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def run_bench(kinds=("RNN", "LSTM", "GRU"), Hs=(64, 256, 1024), Bs=(1, 32, 128), Ts=(50, 200),
              modes=MODES, rounds: int = 5, threads: int = 2, peers: list[str] | None = None,
              memory: bool = True, on_row: Callable[[Row, float], None] | None = None) -> BenchReport:
    """Time the grid; `on_row(row, gemm_peak)` sees each row as it is measured."""
    for k in kinds:
        if k not in KINDS:
            raise ConfigError(f"kinds: expected some of {sorted(KINDS)}, got {k!r}")
    for m in modes:
        if m not in MODES:
            raise ConfigError(f"modes: expected some of {list(MODES)}, got {m!r}")
    peers = available_peers() if peers is None else peers
    versions = {"rnnlab": __version__, "numpy": np.__version__,
                "gate math": f"compiled (numba {_jit.numba.__version__})" if _jit.enabled() else "NumPy"}
    for p in peers:
        versions[p] = __import__(p).__version__
    machine = f"{platform.machine()}, {_cpu_name()}, {_cores()} cores, {_vector_isa()}; NumPy's BLAS: {_blas_kernels()}"
    report = BenchReport(machine, versions, threads, rounds, gemm_peak(), [])
    for kind in kinds:
        for H in Hs:
            for B in Bs:
                for T in Ts:
                    for mode in modes:
                        if mode == "stream" and B != 1:
                            continue
                        row = bench_point(kind, H, B, T, mode, rounds, peers, threads)
                        if row is None:
                            continue
                        report.rows.append(row)
                        if on_row is not None:
                            on_row(row, report.gemm_peak_gflops)
    report.gemm_peak_gflops = max(report.gemm_peak_gflops, gemm_peak())   # and after the grid
    if memory:
        for kind in kinds:
            for T in (50, 100, 200):
                report.memory.append(training_memory(kind, 1024, 128, T))
    return report


def _cpu_name() -> str:
    """The model name, with x86 family and model numbers where /proc/cpuinfo has them (a virtual
    machine may name only "AMD EPYC": family 25 is Zen 3/4, 26 Zen 5)."""
    try:
        fields = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
            if not line.strip():
                break                                 # the first CPU is enough
    except OSError:
        fields = {}
    name = fields.get("model name") or platform.processor() or "unknown CPU"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def _vector_isa() -> str:
    """The widest x86 vector extension the CPU reports (torch's oneDNN uses it; NumPy's BLAS
    may not, see _blas_kernels)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "vector extensions unknown"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    for isa in ("avx512f", "avx2", "avx", "sse2"):
        if isa in flags:
            return isa.upper()
    return "vector extensions unknown"


def _blas_kernels() -> str:
    """NumPy's BLAS and the kernels it runs, e.g. OpenBLAS's Haswell (AVX2) kernels on an AVX-512
    CPU when OPENBLAS_CORETYPE pins them: that caps every GEMM here."""
    try:
        from threadpoolctl import threadpool_info
        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:                               # optional: only the environment is told
        blas = []
    text = ", ".join(f"{b['internal_api']} {b.get('version')} {b.get('architecture')} kernels" for b in blas) or "unknown"
    pinned = os.environ.get("OPENBLAS_CORETYPE")
    return text + (f" (OPENBLAS_CORETYPE={pinned} set in the environment)" if pinned else "")


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def format_row(row: Row, peak: float, peers: list[str]) -> str:
    cells = [row.kind, str(row.H), str(row.B), str(row.T), row.mode, f"{1e3 * row.ours_s:.2f}"]
    for p in peers:
        t = row.peers_s.get(p)
        cells += ["-", "-"] if t is None else [f"{1e3 * t:.2f}", f"{row.ours_s / t:.2f}"]
    cells += [f"{row.gflops():.1f}", f"{100 * row.gflops() / peak:.0f}%"]
    if row.floor_s is None:
        cells += ["-"] * (2 + ("torch" in peers))
    else:
        cells += [f"{1e3 * row.floor_s:.2f}", f"{100 * row.gflops(row.floor_s) / peak:.0f}%"]
        t = row.peers_s.get("torch")
        cells += ["-" if t is None else f"{row.floor_s / t:.2f}"] if "torch" in peers else []
    return "| " + " | ".join(cells) + " |"


def table_header(peers: list[str]) -> str:
    head = ["cell", "H", "B", "T", "mode", "rnnlab ms"]
    for p in peers:
        head += [f"{p} ms", f"rnnlab/{p}"]
    head += ["rnnlab GFLOP/s", "of GEMM peak", "GEMM floor ms", "floor of GEMM peak"]
    head += ["floor/torch"] if "torch" in peers else []
    return "| " + " | ".join(head) + " |\n|" + "---|" * len(head)


def format_report(report: BenchReport) -> str:
    peers = [p for p in ("torch", "onnxruntime") if p in report.versions]
    peers = [p for p in peers if any(p in r.peers_s for r in report.rows)] if report.rows else peers
    lines = [f"Machine: {report.machine}; " + ", ".join(f"{k} {v}" for k, v in report.versions.items())
             + f"; {report.threads} threads; median of {report.rounds} interleaved rounds (each the mean of "
             f"the calls filling {ROUND_S * 1e3:.0f} ms); float32, "
             f"one layer, D = H; GEMM peak (NumPy, 2048^3, best of 10 before and after the grid) "
             f"{report.gemm_peak_gflops:.0f} GFLOP/s. GEMM floor: the call's GEMMs alone through NumPy's "
             f"BLAS, each in its fastest layout, timed in the same rounds.",
             "", table_header(peers)]
    lines += [format_row(r, report.gemm_peak_gflops, peers) for r in report.rows]
    if report.memory:
        lines += ["", "Training peak memory (forward + backward, tracemalloc) against the saved activations:",
                  "", "| cell | H | B | T | peak MB | saved activations MB | peak / saved |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {m['kind']} | {m['H']} | {m['B']} | {m['T']} | {m['peak_mb']:.0f} | "
                  f"{m['saved_activations_mb']:.0f} | {m['peak_mb'] / m['saved_activations_mb']:.2f} |"
                  for m in report.memory]
    return "\n".join(lines)
