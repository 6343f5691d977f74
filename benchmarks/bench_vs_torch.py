"""Time rnnlab against torch.nn.RNN/LSTM/GRU on the CPU, in one process, float32.

For each cell kind and grid point (H, B, T; input size D = H, one layer) it times inference
(forward) and training (forward + backward of all outputs) for both libraries in interleaved
rounds, with an idle gap between libraries (OpenBLAS threads spin ~0.1 s after a call and slow
whatever runs next), and prints the median times and the ratio rnnlab / torch (lower is better).

    python benchmarks/bench_vs_torch.py                    # the full grid (takes a while)
    python benchmarks/bench_vs_torch.py --kinds LSTM --H 64 256 --B 32 --T 50 --rounds 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

import rnnlab

GAP_S = 0.3


def bench_once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def make_pair(kind: str, H: int, seed: int = 0):
    torch.manual_seed(seed)
    tm = getattr(torch.nn, kind)(H, H)
    ours = getattr(rnnlab, kind)(H, H, rng=seed)
    ours.load_state_dict(tm.state_dict())
    return tm, ours


def run_point(kind: str, H: int, B: int, T: int, rounds: int) -> dict[str, float]:
    tm, ours = make_pair(kind, H)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, H)).astype(np.float32)
    g = rng.standard_normal((T, B, H)).astype(np.float32)
    xt, gt = torch.from_numpy(x), torch.from_numpy(g)

    def ours_inf():
        ours.forward(x, keep_cache=False)

    def ours_train():
        ours(x)
        ours.backward(g)

    def torch_inf():
        with torch.no_grad():
            tm(xt)

    def torch_train():
        tm.zero_grad(set_to_none=True)
        xr = xt.clone().requires_grad_(True)
        out, _ = tm(xr)
        out.backward(gt)

    fns = {"ours_inf": ours_inf, "torch_inf": torch_inf,
           "ours_train": ours_train, "torch_train": torch_train}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():                          # warm-up
        fn()
        time.sleep(GAP_S)
    for _ in range(rounds):
        for k, fn in fns.items():
            times[k].append(bench_once(fn))
            time.sleep(GAP_S)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", nargs="+", default=["RNN", "LSTM", "GRU"])
    ap.add_argument("--H", nargs="+", type=int, default=[64, 256, 1024])
    ap.add_argument("--B", nargs="+", type=int, default=[1, 32, 128])
    ap.add_argument("--T", nargs="+", type=int, default=[50, 200])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# rnnlab {rnnlab.__version__}, torch {torch.__version__}, numpy {np.__version__}, "
          f"{platform.processor() or platform.machine()}, torch threads {args.threads}, "
          f"median of {args.rounds} interleaved rounds, float32, D = H, one layer")
    print("| cell | H | B | T | rnnlab inf ms | torch inf ms | inf ratio | "
          "rnnlab train ms | torch train ms | train ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind in args.kinds:
        for H in args.H:
            for B in args.B:
                for T in args.T:
                    r = run_point(kind, H, B, T, args.rounds)
                    print(f"| {kind} | {H} | {B} | {T} | {1e3 * r['ours_inf']:.2f} | "
                          f"{1e3 * r['torch_inf']:.2f} | {r['ours_inf'] / r['torch_inf']:.2f} | "
                          f"{1e3 * r['ours_train']:.2f} | {1e3 * r['torch_train']:.2f} | "
                          f"{r['ours_train'] / r['torch_train']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
