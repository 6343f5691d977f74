"""SST-2 sentence sentiment with randomly initialised embeddings: test accuracy (target >= 82%)."""

from _common import RESULTS, Timer, need, report

from rnnlab.recipes import evaluate_checkpoint
from rnnlab.recipes.classifier import train_classifier
from rnnlab.train import TrainConfig

SETTINGS = dict(cell="lstm", hidden_size=150, num_layers=1, bidirectional=True, embedding_dim=150,
                pooling="max", dropout=0.5, min_freq=1, batch_size=32)
TRAIN = TrainConfig(epochs=10, optimizer="adam", lr=1e-3, weight_decay=0.0, clip=5.0, patience=3, seed=0)

if __name__ == "__main__":
    train = need("sst", "stsa.binary.train")
    with Timer() as t:
        r = train_classifier(train, need("sst", "stsa.binary.dev"), RESULTS / "runs" / "sst2",
                             train_config=TRAIN, resume=False, progress=False, **SETTINGS)
    test = evaluate_checkpoint(r.best_checkpoint, need("sst", "stsa.binary.test"))
    report("sst2_classifier", {"settings": SETTINGS, "train": TRAIN.__dict__, "epochs_run": r.epochs_run,
                               "dev_accuracy": max(h["val_accuracy"] for h in r.history),
                               "test_accuracy": test["accuracy"], "wall_seconds": t.seconds})
