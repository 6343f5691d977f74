"""Data-parallel throughput on this machine: one process on 2 threads against 2 processes
(mpiexec) on 1 thread each, training the same character LSTM language model (2 x 256,
64 streams x 64 steps a batch, Python's own sources as text) for the same steps; tokens/s and
the allreduce's share of a step, so a reader can extrapolate to more machines.

    python benchmarks/mpi_throughput.py [--steps 60]

Needs mpi4py and mpiexec (pip install "rnnlab[mpi]"). Each configuration runs in processes of
its own; the machine line and the figures go to benchmarks/results/mpi_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
B, T, H, LAYERS = 64, 64, 256, 2


def worker(steps: int, run_dir: Path) -> None:
    from rnnlab.recipes.language_model import train_language_model
    from rnnlab.threads import limited, shared_pool
    from rnnlab.train import TrainConfig
    from rnnlab.train.distributed import local_threads, world
    comm = world()
    threads = local_threads(comm)
    with shared_pool(), limited(threads):
        t0 = time.perf_counter()
        r = train_language_model(None, run_dir, level="char", hidden_size=H, num_layers=LAYERS, batch_size=B,
                                 bptt=T, valid_fraction=0.002, progress=False, resume=False,
                                 train_config=TrainConfig(epochs=1, lr=2e-3, max_steps_per_epoch=steps))
        seconds = time.perf_counter() - t0
    if comm.is_root:
        step = r.history[-1]["seconds"] / steps if r.history else seconds / steps
        print(json.dumps({"processes": comm.size, "threads_per_process": threads, "steps": steps,
                          "wall_seconds": seconds, "step_ms": 1000 * step, "tokens_per_s": B * T / step,
                          "allreduce_ms_per_step": 1000 * r.allreduce_seconds / max(r.allreduce_steps, 1),
                          "allreduce_steps": r.allreduce_steps}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        worker(args.steps, args.worker)
        return
    exe = shutil.which("mpiexec")
    if exe is None:
        raise SystemExit("mpiexec is not on PATH: pip install 'rnnlab[mpi]'")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    from rnnlab.recipes.bench import _blas_kernels, _cores, _cpu_name, _vector_isa
    out = {"machine": f"{_cpu_name()}, {_cores()} cores, {_vector_isa()}; NumPy's BLAS: {_blas_kernels()}",
           "model": f"char LSTM {LAYERS} x {H}, {B} streams x {T} steps, Adam, clip 5", "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for label, prefix in (("1 process x 2 threads", []), ("2 processes x 1 thread", [exe, "-n", "2"])):
            cmd = [*prefix, sys.executable, str(Path(__file__).resolve()), "--steps", str(args.steps),
                   "--worker", str(Path(tmp) / label.replace(" ", "_"))]
            res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            row = json.loads(next(line for line in reversed(res.stdout.splitlines()) if line.startswith("{")))
            row["setting"] = label
            out["runs"].append(row)
            print(label, row, flush=True)
    one, two = out["runs"]
    out["speedup_2x1_over_1x2"] = two["tokens_per_s"] / one["tokens_per_s"]
    out["allreduce_share_of_step"] = two["allreduce_ms_per_step"] / two["step_ms"]
    (HERE / "results" / "mpi_throughput.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
