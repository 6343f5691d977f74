"""torch in the same process as rnnlab runs at its own speed: a torch.nn GRU and LSTM call timed
alone, after rnnlab ran every cell on every backend (the default: nothing in the process
changed), torch imported before or after it, and inside rnnlab.threads.shared_pool().

Each scenario runs in a fresh interpreter; the ratio is the scenario's median time over the
median of torch alone, measured in the same run (interleaved: scenario after scenario, three
rounds). Torch is timed 0.5 s after rnnlab's last call: right after any NumPy product,
OpenBLAS's workers spin for ~70 ms and slow whatever runs next, rnnlab or not. Writes
benchmarks/results/torch_beside.json.

    python benchmarks/torch_beside.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from _common import report

RNNLAB_EVERYWHERE = """
import numpy as np, rnnlab
for make in (rnnlab.LSTM, rnnlab.GRU, rnnlab.RNN):
    for level in ("numpy", "compiled", "packed"):
        net = make(64, 64, rng=0, backend=level)
        x = np.ones((50, 32, 64), np.float32)
        y, _ = net(x); net.backward(np.ones_like(y)); net.forward(x, keep_cache=False)
"""

TORCH_TIMING = """
import time, json, torch
time.sleep(0.5)                  # OpenBLAS's workers spin ~70 ms after NumPy's last product
torch.set_num_threads(2)
out = {}
for name, cls in (("GRU", torch.nn.GRU), ("LSTM", torch.nn.LSTM)):
    net = cls(64, 64)
    x = torch.randn(50, 128, 64)
    with torch.no_grad():
        for _ in range(5):
            net(x)
        ts = []
        for _ in range(30):
            t0 = time.perf_counter(); net(x); ts.append(time.perf_counter() - t0)
    out[name] = sorted(ts)[15] * 1e3
print(json.dumps(out))
"""

SCENARIOS = {
    "torch alone": TORCH_TIMING,
    "torch imported after rnnlab ran every path": RNNLAB_EVERYWHERE + TORCH_TIMING,
    "torch imported before rnnlab ran every path": "import torch\n" + RNNLAB_EVERYWHERE + TORCH_TIMING,
    "inside shared_pool, torch imported after": (
        "import rnnlab\nPOOL = rnnlab.threads.shared_pool(); POOL.__enter__()\n" + RNNLAB_EVERYWHERE + TORCH_TIMING),
}


def main() -> None:
    times: dict[str, list[dict]] = {k: [] for k in SCENARIOS}
    for _ in range(3):
        for name, code in SCENARIOS.items():
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                                 check=True)
            times[name].append(json.loads(out.stdout.splitlines()[-1]))
    alone = {k: statistics.median(r[k] for r in times["torch alone"]) for k in ("GRU", "LSTM")}
    result = {}
    for name, rounds in times.items():
        med = {k: statistics.median(r[k] for r in rounds) for k in ("GRU", "LSTM")}
        result[name] = {k: {"ms": round(med[k], 3), "ratio_to_alone": round(med[k] / alone[k], 3)} for k in med}
    report("torch_beside", {"torch": __import__("torch").__version__, "shape": "H 64, B 128, T 50, inference",
                            "scenarios": result})


if __name__ == "__main__":
    main()
