"""Chinese word segmentation on UD Chinese GSDSimp: a character BiLSTM-CRF with B/M/E/S tags
(and character bigram embeddings), word F1 on test with gold sentence boundaries (the SIGHAN
definition: a word is right when both its boundaries are), and the recall of test words never
seen in training (OOV recall).

Data: ../shared/data/ud_chinese_gsdsimp: the training sentences' words
(`zh_gsdsimp-ud-train.iob2`, 3,997 sentences), dev (picks the epoch: highest dev word F1) and test
(.conllu, 500 each). Published end-to-end systems on raw text: UDPipe 2 90.3, Stanza 92.1.
Target: 93.

    python benchmarks/train_chinese_segmentation.py [--minutes 20] [--seed 0 [1 2]] [--no-crf] [--bigram-dim 0]
        [--dropout 0.5] [--hidden-size 256] [--num-layers 2] [--min-freq 2] [--word-dropout 0.05]
        [--embedding-init-std 0.05] [--lr 2e-3] [--cosine] [--epochs 30]

--cosine anneals the learning rate to 0 over the epochs (patience then off). The best recorded
recipe (docs/benchmarks.md): --num-layers 2 --dropout 0.5 --min-freq 2 --lr 2e-3 --cosine
--seed 0 1 2: 93.0, 90.3 and 93.2 alone, 93.5 as an ensemble (their emissions and CRF scores
averaged; `evaluate_tagger_ensemble`); --seed 3 4 5: 92.1, 92.9, 94.0 alone, 94.6 together. All
30 epochs take 18-19 minutes a seed on a 2-core AVX2 EPYC. Several seeds train in turn, each resuming its own run directory, and their ensemble is
scored into `<name>_ensemble_seeds<seeds>.json`.

Settings other than the defaults below go into the result's name.
"""

from __future__ import annotations

import argparse

from _common import RESULTS, Timer, annealed, need, report

from rnnlab.data.segmentation import read_segmented
from rnnlab.recipes.common import load_model
from rnnlab.recipes.tagger import evaluate_tagger, evaluate_tagger_ensemble, train_tagger
from rnnlab.train import TrainConfig, load_checkpoint

SETTINGS = dict(scheme="bmes", cell="lstm", hidden_size=200, num_layers=1, word_dim=100, char_hidden=0,
                bigram_dim=50, dropout=0.3, min_freq=1, word_dropout=0.0, embedding_init_std=1.0, batch_size=16)
TRAIN = dict(epochs=30, optimizer="adam", lr=1e-3, clip=5.0, patience=4, monitor="word_f1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=None, help="the training budget")
    ap.add_argument("--seed", type=int, nargs="+", default=[0],
                    help="one run per seed; with several, their models' ensemble is scored too")
    ap.add_argument("--no-crf", action="store_true", help="a softmax per character instead of the CRF")
    ap.add_argument("--bigram-dim", type=int, default=SETTINGS["bigram_dim"])
    ap.add_argument("--dropout", type=float, default=SETTINGS["dropout"])
    ap.add_argument("--hidden-size", type=int, default=SETTINGS["hidden_size"])
    ap.add_argument("--num-layers", type=int, default=SETTINGS["num_layers"])
    ap.add_argument("--min-freq", type=int, default=SETTINGS["min_freq"])
    ap.add_argument("--word-dropout", type=float, default=SETTINGS["word_dropout"], help="characters made <unk>")
    ap.add_argument("--embedding-init-std", type=float, default=SETTINGS["embedding_init_std"],
                    help="the embeddings start at N(0, std^2)")
    ap.add_argument("--lr", type=float, default=TRAIN["lr"])
    ap.add_argument("--cosine", action="store_true", help="anneal the rate to 0 over the epochs")
    ap.add_argument("--epochs", type=int, default=TRAIN["epochs"], help="the most epochs (with --cosine: all of them)")
    args = ap.parse_args()
    ud = need("ud_chinese_gsdsimp")
    settings = {**SETTINGS, "bigram_dim": args.bigram_dim, "crf": not args.no_crf, "dropout": args.dropout,
                "hidden_size": args.hidden_size, "num_layers": args.num_layers, "min_freq": args.min_freq,
                "word_dropout": args.word_dropout, "embedding_init_std": args.embedding_init_std}
    train_settings = {**TRAIN, "lr": args.lr, "epochs": args.epochs}
    if args.cosine:
        train_settings = annealed(train_settings, args.epochs)
    name = f"zh_gsdsimp_segmentation_{'crf' if settings['crf'] else 'softmax'}_bigram{args.bigram_dim}"
    name += "".join(f"_{k}{settings[k]}" for k in ("dropout", "hidden_size", "num_layers", "min_freq", "word_dropout",
                                                        "embedding_init_std")
                    if settings[k] != SETTINGS[k])
    name += (f"_lr{args.lr:g}" if args.lr != TRAIN["lr"] else "") + ("_cosine" if args.cosine else "")
    name += f"_epochs{args.epochs}" if args.epochs != TRAIN["epochs"] else ""
    train, dev, test = (ud / f"zh_gsdsimp-ud-{part}" for part in ("train.iob2", "dev.conllu", "test.conllu"))
    known = {w for s in read_segmented(train) for w in s}
    models = []
    for seed in args.seed:
        run, result = RESULTS / "runs" / f"{name}_seed{seed}", name + (f"_seed{seed}" if seed else "")
        finished = (run / "last.safetensors").exists() and \
            load_checkpoint(run / "last.safetensors")[1]["trainer"]["epoch"] >= train_settings["epochs"]
        with Timer() as t:
            r = train_tagger(train, dev, run,
                             train_config=TrainConfig(**train_settings, seed=seed, max_minutes=args.minutes),
                             progress=False, **settings)
        model, _ = load_model(r.best_checkpoint)
        models.append(model)
        if finished and (RESULTS / f"{result}.json").exists():             # reported when it trained
            continue
        report(result,                                                   # seed 0: the name alone
               {"settings": settings, "train": {**train_settings, "seed": seed, "max_minutes": args.minutes},
                "epochs_run": r.epochs_run, "stopped": r.stopped, "wall_seconds": t.seconds,
                "history": r.history,
                "dev": evaluate_tagger(model, dev, known=known), "test": evaluate_tagger(model, test, known=known)})
    if len(models) > 1:                                                  # the seeds' models together
        report(f"{name}_ensemble_seeds{'_'.join(map(str, args.seed))}",
               {"settings": settings, "train": train_settings, "seeds": args.seed,
                "dev": evaluate_tagger_ensemble(models, dev, known=known),
                "test": evaluate_tagger_ensemble(models, test, known=known)})


if __name__ == "__main__":
    main()
