"""Whole models against the same models in PyTorch (rnnlab.recipes.bench_models, the library
behind `rnnlab bench --models`): training and evaluation steps, where rnnlab's step goes, and
peak memory; the table goes to benchmarks/results/bench_models[_<threads>thread].md.

    python benchmarks/bench_models.py                      # every model, torch on 2 threads
    python benchmarks/bench_models.py "word small,tagger"  # some of them
    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/bench_models.py "" 1
"""
import sys
from pathlib import Path

from rnnlab.recipes.bench_models import CASES, HEADER, format_models, format_result, run_models

names = tuple(n.strip() for n in sys.argv[1].split(",")) if len(sys.argv) > 1 and sys.argv[1] else tuple(CASES)
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
rounds = 7
print(HEADER + "\n|" + "---|" * (HEADER.count("|") - 1), flush=True)
results = run_models(names, rounds, threads, on_result=lambda r: print(format_result(r), flush=True))
text = format_models(results, rounds, threads)
print("\n" + text)
out = Path(__file__).parent / "results" / ("bench_models.md" if threads == 2 else f"bench_models_{threads}thread.md")
out.write_text(text + "\n")
print(f"table: {out}")
