"""JSB Chorales (quarter notes): test NLL per time step summed over 88 keys (Chung et al.
2014: tanh RNN 9.10, LSTM 8.67, GRU 8.54; target here <= 8.7)."""

import sys

from _common import RESULTS, Timer, need, report

from rnnlab.recipes import evaluate_checkpoint
from rnnlab.recipes.series import train_music
from rnnlab.train import TrainConfig

CELL = sys.argv[1] if len(sys.argv) > 1 else "lstm"
SETTINGS = dict(cell=CELL, hidden_size=96, num_layers=1, batch_size=8)
TRAIN = TrainConfig(epochs=120, optimizer="adam", lr=3e-3, clip=1.0, schedule="plateau",
                    schedule_args={"factor": 0.5, "patience": 3}, patience=8, seed=0)

if __name__ == "__main__":
    data = need("jsb_chorales", "jsb-chorales-quarter.json")
    with Timer() as t:
        r = train_music(data, RESULTS / "runs" / f"jsb_{CELL}", train_config=TRAIN, resume=False,
                        progress=False, **SETTINGS)
    test = evaluate_checkpoint(r.best_checkpoint, data)
    report(f"jsb_chorales_{CELL}", {"settings": SETTINGS, "train": TRAIN.__dict__, "epochs_run": r.epochs_run,
                                    "best_valid_nll": r.best_val_loss, "test_nll_per_step": test["loss"],
                                    "wall_seconds": t.seconds})
