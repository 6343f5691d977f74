"""The classic long-dependency results (issue 4), recorded with their settings:

* adding problem, T = 100 (Le et al. 2015 form): LSTM and GRU reach test MSE < 0.01 while the
  tanh RNN stays above 0.1 (always predicting the mean scores about 0.167);
* embedded Reber grammar: LSTM gets 100% of next-symbol predictions right;
* the gradient norm against distance decays by orders of magnitude over 50 steps for the RNN
  and not for the trained LSTM (plots in benchmarks/results/long_dependency_*).

    python benchmarks/long_dependency.py [adding|reber|all]
"""

import sys

from _common import RESULTS, Timer, report

from rnnlab.recipes.compare import compare_cells
from rnnlab.train import TrainConfig

RUNS = {
    "adding": dict(task="adding", length=100, cells=("rnn", "lstm", "gru"), seeds=2, hidden_size=64,
                   n_train=10_000, n_test=1_000, batch_size=50,
                   train_config=TrainConfig(epochs=30, optimizer="adam", lr=2e-3, clip=1.0, patience=None)),
    "reber": dict(task="reber", length=0, cells=("rnn", "lstm", "gru"), seeds=2, hidden_size=16,
                  n_train=2_000, n_test=500, batch_size=20,
                  train_config=TrainConfig(epochs=30, optimizer="adam", lr=1e-2, clip=1.0)),
}

if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    for name, kw in RUNS.items():
        if which not in ("all", name):
            continue
        with Timer() as t:
            res = compare_cells(run_dir=RESULTS / f"long_dependency_{name}", progress=False, **kw)
        settings = {k: (v.__dict__ if isinstance(v, TrainConfig) else v) for k, v in kw.items()}
        report(f"long_dependency_{name}", {"settings": settings, "rows": res.rows,
                                           "table": res.table.read_text(), "wall_seconds": t.seconds})
