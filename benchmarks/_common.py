"""Shared by the training benchmarks: where the data is, timing, a result line."""

from __future__ import annotations

import json
import platform
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from rnnlab.threads import shared_pool

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"

# a benchmark is a process of its own: it runs rnnlab's fastest loops (rnnlab.threads)
PROCESS = ExitStack()
PROCESS.enter_context(shared_pool())


def need(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        print(f"skipped: {path} is absent (the benchmarks read ../shared/data)")
        sys.exit(0)
    return path


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


def annealed(train: dict, epochs: int) -> dict:
    """Training settings `train` run for `epochs` epochs, the rate annealed to 0 over them
    (cosine), patience off: the end point is fixed, not picked by a stopping rule."""
    return {**train, "epochs": epochs, "schedule": "cosine", "schedule_args": {"total_epochs": epochs},
            "patience": None}


def report(name: str, result: dict) -> None:
    """Print the result and keep it in benchmarks/results/NAME.json."""
    from rnnlab.recipes.bench import _blas_kernels, _cpu_name, _vector_isa
    machine = (f"{platform.machine()}, {_cpu_name()}, {__import__('os').cpu_count()} cores, {_vector_isa()}; "
               f"NumPy's BLAS: {_blas_kernels()}")
    result = {"benchmark": name, "machine": machine, **result}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
