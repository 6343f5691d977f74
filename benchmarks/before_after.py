"""rnnlab against an earlier rnnlab, point by point on the bench grid, in one run.

    git worktree add ../before <commit>
    python benchmarks/before_after.py ../before . --out benchmarks/results/before_after.md

Or one tree against itself with loops skipped on one side (rnnlab.backends.without), e.g. the
plain compiled loops (NumPy's BLAS) against the packed ones:

    python benchmarks/before_after.py . . --skip-before packed --cells LSTM

Two worker processes, one importing each tree (PYTHONPATH), time the same calls as
`rnnlab bench` (recipes.bench: the same networks, inputs and shared_pool), in interleaved
rounds: a round times `calls` calls in one worker, then in the other, with a pause between
(the pools' threads spin for a while after a call). The table gives each median and after/before.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORKER = r"""
import json, sys, time
from rnnlab.recipes import bench
from rnnlab.threads import shared_pool
pool = shared_pool()
if {pool}:
    pool.__enter__()
if {skip!r}:
    from rnnlab import backends
    skipping = backends.without(*{skip!r})        # held: a collected block would end at once
    skipping.__enter__()
fns = {{}}
for line in sys.stdin:
    kind, H, B, T, mode, calls = json.loads(line)
    key = (kind, H, B, T, mode)
    if key not in fns:
        fns.clear()
        fns[key] = bench._functions(kind, H, B, T, mode, [], 1).get("rnnlab")
    fn = fns[key]
    if fn is None:
        print(json.dumps(None), flush=True)
        continue
    if calls == 0:                                   # warm up, then how many calls fill a round
        fn()
        print(json.dumps(bench._calls_per_round(fn)), flush=True)
        continue
    print(json.dumps(bench._timed(fn, calls)), flush=True)
"""


def _points(a):
    """The grid's points, or with --recheck the rows of an earlier table above --above."""
    if a.recheck:
        for line in a.recheck.read_text().splitlines():
            cols = [c.strip() for c in line.strip("|").split("|")]
            if len(cols) == 8 and cols[1].isdigit() and float(cols[7]) > a.above:
                yield cols[0], int(cols[1]), int(cols[2]), int(cols[3]), cols[4]
        return
    for kind in a.cells.split(","):
        for H in map(int, a.hidden_sizes.split(",")):
            for B in map(int, a.batch_sizes.split(",")):
                for T in map(int, a.steps.split(",")):
                    for mode in a.modes.split(","):
                        yield kind, H, B, T, mode


class Worker:
    def __init__(self, tree: Path, pool: bool, skip: tuple[str, ...] = ()) -> None:
        env = dict(os.environ, PYTHONPATH=str(tree.resolve()))
        code = WORKER.format(pool=pool, skip=skip)
        self.proc = subprocess.Popen([sys.executable, "-c", code], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=tree)

    def ask(self, *point) -> object:
        self.proc.stdin.write(json.dumps(point) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--cells", default="RNN,LSTM,GRU")
    ap.add_argument("--hidden-sizes", default="64,256,1024")
    ap.add_argument("--batch-sizes", default="1,32,128")
    ap.add_argument("--steps", default="50,200")
    ap.add_argument("--modes", default="inference,training,stream")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--gap", type=float, default=0.15, help="seconds between timings")
    ap.add_argument("--default-pool", action="store_true",
                    help="time outside shared_pool() (a default call) instead of inside it")
    ap.add_argument("--skip-before", default="", help="loops the before side skips, e.g. packed")
    ap.add_argument("--skip-after", default="", help="loops the after side skips")
    ap.add_argument("--recheck", type=Path, help="time again the rows of this earlier table ...")
    ap.add_argument("--above", type=float, default=1.05, help="... whose after/before is above this")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    sys.path.insert(0, str(a.after.resolve()))
    from rnnlab.recipes.bench import _blas_kernels, _cpu_name, _vector_isa
    pool = not a.default_pool
    skips = {k: tuple(v for v in getattr(a, f"skip_{k}").split(",") if v) for k in ("before", "after")}
    workers = {k: Worker(getattr(a, k), pool, skips[k]) for k in ("before", "after")}
    head = (f"Machine: {_cpu_name()}, {os.cpu_count()} cores, {_vector_isa()}; {_blas_kernels()}; "
            f"{'inside shared_pool()' if pool else 'default (no shared_pool)'}; median of "
            f"{a.rounds} interleaved rounds; before = {a.before}, after = {a.after}"
            + "".join(f"; {k} skips {', '.join(v)}" for k, v in skips.items() if v))
    lines = [head, "", "| cell | H | B | T | mode | before ms | after ms | after/before |",
             "|---|---|---|---|---|---|---|---|"]
    print(head, flush=True)
    ratios = []
    for point in _points(a):
        kind, H, B, T, mode = point
        calls = [w.ask(*point, 0) for w in workers.values()]
        if None in calls:
            continue
        n = min(calls)
        times = {k: [] for k in workers}
        for r in range(a.rounds):              # ABBA: neither side always goes first
            order = list(workers.items())
            for k, w in order if r % 2 == 0 else order[::-1]:
                time.sleep(a.gap)
                times[k].append(w.ask(*point, n) * 1e3)
        b, f = (statistics.median(times[k]) for k in ("before", "after"))
        ratios.append(f / b)
        row = f"| {kind} | {H} | {B} | {T} | {mode} | {b:.3f} | {f:.3f} | {f / b:.2f} |"
        lines.append(row)
        print(row, flush=True)
    for w in workers.values():
        w.close()
    worst = max(ratios)
    lines += ["", f"{len(ratios)} points: after/before median {statistics.median(ratios):.2f}, "
              f"max {worst:.2f}, {sum(r > 1.05 for r in ratios)} above 1.05"]
    print(lines[-1])
    if a.out:
        a.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
