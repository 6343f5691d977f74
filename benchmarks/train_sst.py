"""SST-2 sentence sentiment with randomly initialised embeddings: test accuracy (target >= 82%).

The model is an ensemble of ten bidirectional recurrent classifiers, five BiLSTMs and five BiGRUs
(seeds 0-4 each), all with the same recipe: small initial embeddings (N(0, 0.05^2); torch's
N(0, 1) moves too slowly under Adam and gave 71-74%), max pooling over time, word dropout 0.5,
dropout 0.5, Adam 1e-3, best epoch by validation loss. Its prediction is the average of the
members' class probabilities. The headline is the ten-member average, fixed before the run; the
per-cell averages and every member are reported beside it.

Single members land between about 77% and 82% depending on the seed (and on BLAS rounding:
the same seed differs between one and two threads), so one run says little; the average of
members is what is stable. Members train two at a time, one BLAS thread each.

`python benchmarks/train_sst.py` trains the recipe (writes sst2_classifier_lstm_gru_seeds0-4.json);
`... --first 5` the replication with new seeds; `... --cells gru --count 10 --first 10` the
GRU-only probe (sst2_classifier_gru_seeds10-19.json).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")      # before NumPy loads: one thread a member

import argparse
import multiprocessing
import statistics

from _common import RESULTS, Timer, need, report

from rnnlab.recipes.classifier import evaluate_ensemble, train_classifier
from rnnlab.recipes.common import load_model
from rnnlab.train import TrainConfig

SETTINGS = dict(hidden_size=100, num_layers=1, bidirectional=True, embedding_dim=100,
                embedding_init_std=0.05, pooling="max", dropout=0.5, word_dropout=0.5, min_freq=1,
                batch_size=32)


def train_config(seed: int) -> TrainConfig:
    return TrainConfig(epochs=15, optimizer="adam", lr=1e-3, weight_decay=0.0, clip=5.0, patience=6, seed=seed)


def train_member(member: tuple[str, int]) -> dict:
    cell, seed = member
    train, dev = need("sst", "stsa.binary.train"), need("sst", "stsa.binary.dev")
    r = train_classifier(train, dev, RESULTS / "runs" / f"sst2_{cell}_seed{seed}", cell=cell,
                         train_config=train_config(seed), resume=False, progress=False, **SETTINGS)
    return {"cell": cell, "seed": seed, "checkpoint": str(r.best_checkpoint), "epochs_run": r.epochs_run,
            "dev_accuracy_best_epoch": max(h["val_accuracy"] for h in r.history)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", choices=("lstm", "gru"), default=["lstm", "gru"])
    parser.add_argument("--first", type=int, default=0, help="first seed")
    parser.add_argument("--count", type=int, default=5, help="members per cell")
    args = parser.parse_args()
    seeds = range(args.first, args.first + args.count)
    MEMBERS = [(cell, seed) for cell in args.cells for seed in seeds]
    NAME = f"sst2_classifier_{'_'.join(args.cells)}_seeds{seeds[0]}-{seeds[-1]}"
    need("sst", "stsa.binary.train")
    dev, test = need("sst", "stsa.binary.dev"), need("sst", "stsa.binary.test")
    with Timer() as t:
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            runs = pool.map(train_member, MEMBERS, chunksize=1)
    models = [load_model(r["checkpoint"])[0] for r in runs]
    scored = evaluate_ensemble(models, test)
    for r, acc in zip(runs, scored["members"]):
        r["test_accuracy"] = acc
    by_cell = {c: [m for m, r in zip(models, runs) if r["cell"] == c] for c in args.cells}
    report(NAME, {
        "settings": SETTINGS, "members": [{k: v for k, v in r.items() if k != "checkpoint"} for r in runs],
        "train": {**train_config(0).__dict__, "seed": "per member"},
        "test_accuracy_member_mean": statistics.mean(scored["members"]),
        "test_accuracy_member_range": [min(scored["members"]), max(scored["members"])],
        "test_accuracy_ensemble": scored["accuracy"],
        "dev_accuracy_ensemble": evaluate_ensemble(models, dev)["accuracy"],
        **({f"test_accuracy_ensemble_{c}": evaluate_ensemble(ms, test)["accuracy"] for c, ms in by_cell.items()}
           if len(by_cell) > 1 else {}),
        "wall_seconds": t.seconds})
