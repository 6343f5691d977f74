"""UD English EWT UPOS tagging with a BiLSTM over word embeddings and a character BiLSTM:
test accuracy (target >= 94%; UDPipe 1.2 about 94.4%, Plank et al. 2016 about 95%)."""

from _common import RESULTS, Timer, need, report

from rnnlab.recipes import evaluate_checkpoint
from rnnlab.recipes.tagger import train_tagger
from rnnlab.train import TrainConfig

SETTINGS = dict(cell="lstm", hidden_size=128, num_layers=1, word_dim=100, char_dim=32, char_hidden=32,
                dropout=0.25, min_freq=2, batch_size=32)
TRAIN = TrainConfig(epochs=8, optimizer="adam", lr=2e-3, clip=5.0, patience=2, seed=0)

if __name__ == "__main__":
    ewt = need("ud_english_ewt")
    with Timer() as t:
        r = train_tagger(ewt / "en_ewt-ud-train.conllu", ewt / "en_ewt-ud-dev.conllu",
                         RESULTS / "runs" / "ewt_tagger", train_config=TRAIN, resume=False, progress=False,
                         **SETTINGS)
    test = evaluate_checkpoint(r.best_checkpoint, ewt / "en_ewt-ud-test.conllu")
    report("ewt_upos_tagger", {"settings": SETTINGS, "train": TRAIN.__dict__, "epochs_run": r.epochs_run,
                               "dev_accuracy": max(h["val_accuracy"] for h in r.history),
                               "test_accuracy": test["accuracy"], "wall_seconds": t.seconds})
