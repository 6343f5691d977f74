"""Issue 7's regularisers and normalised cells against the plain cell on Tiny Shakespeare.

Each variant trains the same character language model (first 90% train / last 10% validation)
for the same epochs and reports its best validation loss (nats/char) and seconds per epoch:

    python benchmarks/cell_variants_shakespeare.py                 # every variant
    python benchmarks/cell_variants_shakespeare.py lstm lstm_ln    # some
"""

import sys

from _common import RESULTS, Timer, need, report

from rnnlab.models.base import Regularisers
from rnnlab.recipes.language_model import train_language_model
from rnnlab.train import TrainConfig

BASE = dict(level="char", hidden_size=256, num_layers=2, embedding_dim=64, dropout=0.1,
            batch_size=64, bptt=100, valid_fraction=0.1)
VARIANTS = {                       # name -> settings that differ from BASE
    "lstm": dict(cell="lstm"),
    "lstm_ln": dict(cell="lstm_ln"),
    "gru": dict(cell="gru"),
    "gru_ln": dict(cell="gru_ln"),
    "lstm_zoneout": dict(cell="lstm", regularisers=Regularisers(zoneout=0.1)),
    "lstm_variational": dict(cell="lstm", regularisers=Regularisers(input_dropout=0.1, recurrent_dropout=0.1)),
    "lstm_3x192": dict(cell="lstm", num_layers=3, hidden_size=192, dropout=0.0),
    "dg_lstm_3x192": dict(cell="dg_lstm", num_layers=3, hidden_size=192, dropout=0.0),
}
TRAIN = TrainConfig(epochs=2, optimizer="adam", lr=3e-3, clip=5.0, seed=0, checkpoint_every=50)

if __name__ == "__main__":
    text = need("tinyshakespeare", "input.txt")
    names = sys.argv[1:] or list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variants {unknown}; expected some of {list(VARIANTS)}")
    for name in names:
        settings = {**BASE, **VARIANTS[name]}
        with Timer() as t:
            r = train_language_model(text, RESULTS / "runs" / f"variants_{name}", train_config=TRAIN,
                                     progress=False, resume=False, **settings)
        report(f"shakespeare_variant_{name}", {
            "settings": {k: (v.__dict__ if isinstance(v, Regularisers) else v) for k, v in settings.items()}, "train": TRAIN.__dict__, "valid_loss_nats_per_char": r.best_val_loss,
            "per_epoch": [{k: h[k] for k in ("epoch", "train_loss", "val_loss", "seconds")} for h in r.history],
            "wall_seconds": t.seconds})
