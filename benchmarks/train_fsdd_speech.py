"""Free Spoken Digit Dataset with CTC: isolated digits, connected digits, and connected digits
from a speaker never heard in training.

Data: ../shared/data/fsdd (2,500 recordings, 5 speakers x 10 digits x 50 takes; the dataset's
own split: takes 0-4 test, 5-49 train). Every tenth training recording validates (picks the
epoch). Targets: isolated test accuracy >= 98%; connected digits (3-7 digits of one speaker,
50-300 ms of low noise between them, 1,000 test utterances joined from test takes with seed 0)
digit error rate <= 3% greedy, beam reported; speaker-independent (train on four speakers'
recordings, test on 1,000 utterances joined from the fifth's) mean and worst <= 10%.

    python benchmarks/train_fsdd_speech.py isolated|connected|speakers [--minutes 20] [--seed 0 [1 2]]
        [--speakers jackson lucas] [--features logmel] [--cosine 20] [--dropout 0.5]
        [--preemphasis 0.97] [--gain-db -15 15] [--vtlp 0.9 1.1] [--vtln]

--minutes is each training run's budget; a run cut short resumes from its run directory
(benchmarks/results/runs/fsdd_*) when called again. The best speaker-independent result so far
(docs/benchmarks.md: mean 8.9%, worst 13.2%): `speakers --cosine 20`, no budget. Probes on the
worst voices, each one change to that (`--dropout 0.5`, `--preemphasis 0.97`, `--gain-db -15 15`),
left jackson at 13.9-18.1 (results fsdd_speakers_dropout0.5_*, *_preemphasis0.97_*, *_probes_*);
`--vtlp 0.9 1.1` all 20 epochs 23.1 (*_vtlp0.9_1.1_*).

speakers with several seeds: each voice's runs train in turn (each resumes its own run
directory) and are scored alone and as an ensemble (`evaluate_speech_ensemble`: the proposal of
any member with the highest sum of the members' CTC log-likelihoods) into
`..._ensemble_seeds<seeds>.json`. `speakers --speakers jackson nicolas --cosine 20 --seed 0 1 2`:
jackson 16.5 (alone 19.3, 21.8, 19.4), nicolas 10.1 (alone 12.5, 15.2, 10.7).

speakers --vtln: each held-out voice is also scored with test-time vocal tract length
normalisation (`evaluate_speech(..., vtln=True)`: its utterances decoded at the warp, of nine
from 0.80 to 1.20, at which the models are surest of their own decodings; no labels), under
"greedy_vtln", into `..._vtln...json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

from _common import RESULTS, Timer, annealed, need, report

from rnnlab.recipes.common import load_model
from rnnlab.recipes.speech import Augment, evaluate_speech, evaluate_speech_ensemble, train_speech
from rnnlab.train import TrainConfig

SETTINGS = dict(feature="mfcc", stack=2, cell="lstm", hidden_size=128, num_layers=2, dropout=0.2, batch_size=32)
AUGMENT = Augment(noise_snr=(15.0, 40.0), speed=(0.9, 1.1), spec_augment=True)
TRAIN = dict(epochs=40, optimizer="adam", lr=2e-3, clip=5.0, patience=6)
SPEAKERS = ["jackson", "lucas", "nicolas", "theo", "yweweler"]
# A new voice: each utterance normalised by its own mean and variance (cepstral mean and variance
# normalisation removes much of a speaker's and microphone's constant colouring), and wider speed
# changes (resampling moves the formants as a longer or shorter vocal tract would). Chosen after
# the first held-out run with the settings above (jackson: 21.9% digit errors, 5 epochs).
SPEAKER_SETTINGS = dict(per_utterance_norm=True)
SPEAKER_AUGMENT = Augment(noise_snr=(15.0, 40.0), speed=(0.8, 1.25), spec_augment=True)


def run(name: str, data, minutes, seed, augment=AUGMENT, train=None, **kw):
    tc = TrainConfig(**(train or TRAIN), seed=seed, max_minutes=minutes)
    with Timer() as t:
        r = train_speech(data, RESULTS / "runs" / f"fsdd_{name}_seed{seed}", augment=augment, train_config=tc,
                         progress=False, **{**SETTINGS, **kw})
    model, _ = load_model(r.best_checkpoint)
    return model, {"epochs_run": r.epochs_run, "stopped": r.stopped, "train_seconds": t.seconds,
                   "history": r.history}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("task", choices=["isolated", "connected", "speakers"])
    ap.add_argument("--minutes", type=float, default=None, help="each training run's budget")
    ap.add_argument("--seed", type=int, nargs="+", default=[0],
                    help="one run per seed; speakers: with several, each voice is scored by their ensemble too")
    ap.add_argument("--connected", type=int, default=3000, help="connected utterances an epoch")
    ap.add_argument("--speakers", nargs="+", choices=SPEAKERS, default=SPEAKERS, help="speakers: those held out in turn")
    ap.add_argument("--features", choices=["mfcc", "logmel"], default=SETTINGS["feature"],
                    help="speakers: the features (not mfcc: named in the runs and the result)")
    ap.add_argument("--cosine", type=int, default=0, metavar="EPOCHS",
                    help="speakers: train EPOCHS epochs, the rate annealed to 0 (cosine), no patience")
    ap.add_argument("--dropout", type=float, default=SETTINGS["dropout"],
                    help="speakers: the dropout (not 0.2: named in the runs and the result)")
    ap.add_argument("--preemphasis", type=float, default=0.0,
                    help="speakers: y[n] - A y[n-1] before the features (not 0: named in the runs and the result)")
    ap.add_argument("--gain-db", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                    help="speakers: augment with recordings louder or quieter by LOW..HIGH dB (named in the runs)")
    ap.add_argument("--vtlp", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                    help="speakers: augment with vocal tract length warps drawn from LOW..HIGH (named in the runs)")
    ap.add_argument("--vtln", action="store_true",
                    help="speakers: also score each held-out voice decoded at the warp estimated from its "
                         "recordings (`evaluate_speech(..., vtln=True)`; named in the result)")
    args = ap.parse_args()
    if len(args.seed) > 1 and args.task != "speakers":
        ap.error("several --seed values: only for the speakers task")
    fsdd = need("fsdd")
    out = {"settings": {**SETTINGS, "augment": AUGMENT.__dict__}, "train": TRAIN,
           "seed": args.seed[0] if len(args.seed) == 1 else args.seed, "minutes": args.minutes}
    if args.task in ("isolated", "connected"):
        connected = args.connected if args.task == "connected" else 0
        model, out["run"] = run(args.task, fsdd / "splits" / "train.txt", args.minutes, args.seed[0],
                                exclude=fsdd / "splits" / "test.txt", connected=connected)
        out["greedy"] = evaluate_speech(model, fsdd / "splits" / "test.txt", connected=1000, seed=0)
        out["beam8"] = evaluate_speech(model, fsdd / "splits" / "test.txt", connected=1000, seed=0, beam=8)
    else:
        per = {}
        variant = "" if args.features == SETTINGS["feature"] else f"_{args.features}"
        train = TRAIN
        if args.dropout != SETTINGS["dropout"]:
            variant += f"_dropout{args.dropout:g}"
        if args.preemphasis:
            variant += f"_preemphasis{args.preemphasis:g}"
        augment = SPEAKER_AUGMENT
        if args.gain_db:
            variant += f"_gain{args.gain_db[0]:g}_{args.gain_db[1]:g}"
            augment = dataclasses.replace(SPEAKER_AUGMENT, gain_db=tuple(args.gain_db))
        if args.vtlp:
            variant += f"_vtlp{args.vtlp[0]:g}_{args.vtlp[1]:g}"
            augment = dataclasses.replace(augment, vtlp=tuple(args.vtlp))
        if args.cosine:
            variant += f"_cosine{args.cosine}"
            train = annealed(TRAIN, args.cosine)
            out["train"] = train
        chosen = {**SPEAKER_SETTINGS, "feature": args.features, "dropout": args.dropout,
                  "preemphasis": args.preemphasis}
        for speaker in args.speakers:
            listing = RESULTS / "runs" / f"fsdd_{speaker}.txt"
            listing.write_text("".join(f"{p}\n" for p in sorted((fsdd / "recordings").glob(f"*_{speaker}_*.wav"))))
            models, infos = zip(*(run(f"cmvn{variant}_without_{speaker}", fsdd / "recordings", args.minutes, seed,
                                      augment, train, held_out_speaker=speaker, connected=args.connected, **chosen)
                                  for seed in args.seed))
            per[speaker] = {}
            for key, vtln in (("greedy", False), ("greedy_vtln", True))[:1 + args.vtln]:
                with Timer() as t:
                    scores = evaluate_speech_ensemble(list(models), listing, connected=1000, seed=0, vtln=vtln)
                if len(models) == 1:
                    per[speaker].update({**infos[0], key: {**scores["members"][0],
                                                       **({"vtln_warps": scores["vtln_warps"]} if vtln else {})}})
                else:                               # the seeds' models together, and each alone
                    per[speaker][key] = {k: v for k, v in scores.items() if k != "members"}
                    per[speaker].setdefault("seeds", {s: dict(i) for s, i in zip(args.seed, infos)})
                    for s, g in zip(args.seed, scores["members"]):
                        per[speaker]["seeds"][s][key] = g
                per[speaker][key]["seconds"] = t.seconds
                print(speaker, key, per[speaker][key], flush=True)
        out["speakers"] = per
        out["speaker_settings"] = {**chosen, "augment": augment.__dict__}
        for key in ("greedy", "greedy_vtln")[:1 + args.vtln]:
            rates = [v[key]["connected_error_rate"] for v in per.values()]
            tail = key.removeprefix("greedy")
            out[f"connected_error_rate_mean{tail}"], out[f"connected_error_rate_worst{tail}"] = (statistics.mean(rates),
                                                                                               max(rates))
        if args.vtln:
            variant += "_vtln"
        if args.speakers != SPEAKERS:
            variant += "_" + "_".join(args.speakers)
    seed = (f"_ensemble_seeds{'_'.join(map(str, args.seed))}" if len(args.seed) > 1
            else f"_seed{args.seed[0]}" if args.seed[0] else "")     # seed 0: the name alone
    report(f"fsdd_{args.task}" + (variant if args.task == "speakers" else "") + seed, out)


if __name__ == "__main__":
    main()
