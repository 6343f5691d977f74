"""Forecaster on the monthly sunspots series: MAE against a naive last-value baseline."""

from _common import RESULTS, Timer, need, report

from rnnlab.recipes.series import train_forecaster
from rnnlab.train import TrainConfig

SETTINGS = dict(window=48, horizon=6, cell="lstm", hidden_size=32, num_layers=1, batch_size=32,
                test_fraction=0.2)
TRAIN = TrainConfig(epochs=40, optimizer="adam", lr=3e-3, clip=5.0, schedule="plateau",
                    schedule_args={"factor": 0.5, "patience": 3}, patience=10, seed=0)

if __name__ == "__main__":
    csv = need("timeseries", "monthly-sunspots.csv")
    with Timer() as t:
        r = train_forecaster(csv, RESULTS / "runs" / "sunspots", train_config=TRAIN, resume=False,
                             progress=False, **SETTINGS)
    best = min(r.history, key=lambda h: h["val_loss"])
    report("sunspots_forecaster", {
        "settings": SETTINGS, "train": TRAIN.__dict__, "epochs_run": r.epochs_run,
        "val_mae": best["val_mae"], "naive_last_value_mae": best["val_naive_mae"],
        "mae_ratio_to_naive": best["val_mae"] / best["val_naive_mae"], "wall_seconds": t.seconds})
