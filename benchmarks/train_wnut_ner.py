"""WNUT-17 emerging entities: a BiLSTM tagger (word embeddings + character BiLSTM) with and
without a CRF, trained only on the shared task's data; entity F1 on test (seqeval, the
conlleval definition), the mean and spread over seeds.

Data: ../shared/data/ner_wnut17 (train 3,394 / dev 1,009 / test 1,287 sentences). The dev set
picks the epoch (highest dev entity F1, `--monitor loss` for the lowest dev loss) and counts the
patience; test is scored once, at the end. Best shared-task system:
41.86 (pretrained embeddings and gazetteers). Target: 35.

    python benchmarks/train_wnut_ner.py [--seeds 0 1 2] [--variants crf softmax] [--minutes 10]

--minutes is each run's training budget; a run cut short resumes when called again with the
same run directory (benchmarks/results/runs/wnut17_*).

--cosine N anneals the rate to 0 over N epochs (patience off). --train-on-dev (with --cosine)
trains on train + dev (a final model once the recipe is fixed); the last epoch's model is
scored, since dev can no longer pick one. Best recorded (docs/benchmarks.md), `--cosine 20
--train-on-dev`: CRF 26.7 ± 0.4, softmax 23.1 ± 0.9 over seeds 0-2.
Train-only probes (seed 0, --cosine 20): --embedding-init-std 0.05 dev 24.1 / test 15.3,
--word-dropout 0.3 dev 28.1 / test 18.1, against dev 28.3 / test 18.8 for the recipe.
"""

from __future__ import annotations

import argparse
import statistics

from _common import RESULTS, Timer, annealed, need, report

from rnnlab.recipes.common import load_model
from rnnlab.recipes.tagger import evaluate_tagger, train_tagger
from rnnlab.train import TrainConfig

SETTINGS = dict(scheme="iob2", cell="lstm", hidden_size=128, num_layers=1, word_dim=100, char_dim=32,
                char_hidden=50, lowercase=True, case_dim=8, word_dropout=0.1, dropout=0.5, min_freq=1,
                batch_size=16)
TRAIN = dict(epochs=60, optimizer="adam", lr=2e-3, clip=5.0, patience=12, monitor="entity_f1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", choices=["crf", "softmax"], default=["crf", "softmax"])
    ap.add_argument("--minutes", type=float, default=None, help="each run's training budget")
    ap.add_argument("--lr", type=float, default=TRAIN["lr"])
    ap.add_argument("--epochs", type=int, default=TRAIN["epochs"])
    ap.add_argument("--patience", type=int, default=TRAIN["patience"], help="-1: none")
    ap.add_argument("--word-dropout", type=float, default=SETTINGS["word_dropout"])
    ap.add_argument("--embedding-init-std", type=float, default=1.0,
                    help="the embeddings start at N(0, STD^2) (1: torch's)")
    ap.add_argument("--monitor", default=TRAIN["monitor"], help="the dev metric that picks the epoch")
    ap.add_argument("--cosine", type=int, default=None, metavar="N", help="anneal the rate to 0 over N epochs")
    ap.add_argument("--train-on-dev", action="store_true", help="train on train + dev; score the last epoch")
    ap.add_argument("--name", default="wnut17_ner", help="the result's name (benchmarks/results/NAME.json)")
    args = ap.parse_args()
    train = {**TRAIN, "lr": args.lr, "epochs": args.epochs, "patience": None if args.patience < 0 else args.patience,
             "monitor": args.monitor}
    if args.cosine:
        train = annealed(train, args.cosine)
    elif args.train_on_dev:
        ap.error("--train-on-dev needs --cosine N: a fixed end point, since dev cannot pick the epoch")
    settings = {**SETTINGS, "word_dropout": args.word_dropout}
    if args.embedding_init_std != 1.0:
        settings["embedding_init_std"] = args.embedding_init_std
    data = need("ner_wnut17")
    train_file = data / "wnut17train.conll"
    if args.train_on_dev:                                   # train + dev in one file, beside the runs
        train_file = RESULTS / "runs" / "wnut17_train_and_dev.conll"
        train_file.parent.mkdir(parents=True, exist_ok=True)
        train_file.write_text("\n\n".join(f.read_text().strip("\n") for f in
                                          (data / "wnut17train.conll", data / "emerging.dev.conll")) + "\n")
    runs, scores = {}, {}
    for variant in args.variants:
        for seed in args.seeds:
            name = f"{variant}_seed{seed}"
            tc = TrainConfig(**train, seed=seed, max_minutes=args.minutes)
            with Timer() as t:
                r = train_tagger(train_file, data / "emerging.dev.conll",
                                 RESULTS / "runs" / f"{args.name}_{name}", crf=variant == "crf", train_config=tc,
                                 progress=False, **settings)
            model, _ = load_model(r.last_checkpoint if args.train_on_dev else r.best_checkpoint)
            dev = evaluate_tagger(model, data / "emerging.dev.conll")
            test = evaluate_tagger(model, data / "emerging.test.annotated")
            runs[name] = {"epochs_run": r.epochs_run, "stopped": r.stopped, "seconds": t.seconds,
                          "best_epoch": r.best_epoch,
                          "dev": dev, "test": test}
            scores.setdefault(variant, []).append(test["entity_f1"])
            print(name, f"dev F1 {dev['entity_f1']:.2f}  test F1 {test['entity_f1']:.2f}  ({t.seconds:.0f} s)",
                  flush=True)
    summary = {v: {"test_entity_f1_mean": statistics.mean(f), "test_entity_f1_std": statistics.pstdev(f),
                   "min": min(f), "max": max(f), "seeds": args.seeds} for v, f in scores.items()}
    report(args.name, {"settings": settings, "train": {**train, "max_minutes": args.minutes},
                       "trained_on": "train + dev" if args.train_on_dev else "train",
                       "summary": summary, "runs": runs})


if __name__ == "__main__":
    main()
