"""Tiny Shakespeare character LSTM, first 90% train / last 10% validation: validation loss in
nats per character (target <= 1.55) and the wall time it took."""

from _common import RESULTS, Timer, need, report

from rnnlab.recipes.language_model import train_language_model
from rnnlab.train import TrainConfig

SETTINGS = dict(level="char", cell="lstm", hidden_size=384, num_layers=2, embedding_dim=64, dropout=0.1,
                batch_size=64, bptt=100, valid_fraction=0.1)
TRAIN = TrainConfig(epochs=5, optimizer="adam", lr=3e-3, clip=5.0, schedule="step",
                    schedule_args={"gamma": 0.5, "start": 3}, seed=0, checkpoint_every=50)

if __name__ == "__main__":
    text = need("tinyshakespeare", "input.txt")
    with Timer() as t:
        r = train_language_model(text, RESULTS / "runs" / "shakespeare", train_config=TRAIN,
                                 progress=False, **SETTINGS)
    report("tinyshakespeare_char_lstm", {"settings": SETTINGS, "train": TRAIN.__dict__, "epochs_run": r.epochs_run,
                                         "valid_loss_nats_per_char": r.best_val_loss,
                                         "per_epoch": [{k: h[k] for k in ("epoch", "train_loss", "val_loss", "seconds")}
                                                       for h in r.history],
                                         "wall_seconds_this_process": t.seconds})
