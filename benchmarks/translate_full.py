"""English -> French on every Tatoeba pair of up to 15 tokens a side, within a wall-clock budget:
the recipe of `rnnlab train-translator` at the settings below, then BLEU and chrF (sacrebleu,
13a tokenization) on the held-out split, greedy and beam 5.

Data: ../shared/data/tatoeba_eng_fra_full/eng-fra.txt (or --pairs), pairs with at most 15
tokens a side. The split (declared before any test score): 10% of the English sentences, with
all their translations, for test, 2% for validation, seed 0 (rnnlab.data.pairs.split_pairs).

Recipe: words seen at least three times (others <unk>, copied from the attended source word at
translation time); embeddings 256; a bidirectional 1-layer LSTM encoder of 256 units a
direction; a 1-layer LSTM decoder of 256 with input feeding and Luong "general" attention;
dropout 0.2; label smoothing 0.1; Adam lr 1e-3 halved when the validation loss stops falling
(plateau); batches of 128 bucketed by length; global-norm clip 5. Small on purpose: on two
cores the output layer over ~10k French words is most of a step, and a model this size sees
about 20 epochs in two hours, where the 2x256/512x2 model of the first try saw fewer than 5.

    python benchmarks/translate_full.py --minutes 120 [--run-dir runs/translate_full]

Run it again with the same run directory to continue a run cut short (the trainer resumes
exactly); --score-only scores the run's best checkpoint without training.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rnnlab.recipes.bench import _blas_kernels, _cores, _cpu_name, _vector_isa
from rnnlab.recipes.common import load_model
from rnnlab.recipes.translator import evaluate_translator, train_translator, translate
from rnnlab.threads import shared_pool
from rnnlab.train import TrainConfig

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tatoeba_eng_fra_full" / "eng-fra.txt"
SETTINGS = dict(max_tokens=15, min_freq=3, cell="lstm", hidden_size=256, num_layers=1, bidirectional=True,
                embedding_dim=256, decoder_hidden=256, attention="general", input_feeding=True, dropout=0.2,
                label_smoothing=0.1, batch_size=128, valid_fraction=0.02, test_fraction=0.1, split_seed=0)
SAMPLES = ["I am cold.", "He is my brother.", "Where is the station?", "We have to leave now.",
           "She doesn't like coffee.", "Tom bought a new car yesterday."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=120.0, help="training budget of this call")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--pairs", type=Path, default=DATA)
    ap.add_argument("--run-dir", type=Path, default=Path("runs/translate_full"))
    ap.add_argument("--score-only", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "translate_full.json")
    args = ap.parse_args()
    if not args.pairs.exists():
        raise SystemExit(f"--pairs: {args.pairs} is not here (../shared/data/tatoeba_eng_fra_full)")
    report = {"machine": f"{_cpu_name()}, {_cores()} cores, {_vector_isa()}; NumPy's BLAS: {_blas_kernels()}",
              "settings": SETTINGS, "minutes": args.minutes}
    t0 = time.perf_counter()
    with shared_pool():
        if not args.score_only:
            cfg = TrainConfig(epochs=args.epochs, lr=1e-3, clip=5.0, schedule="plateau",
                              schedule_args={"factor": 0.5, "patience": 0}, max_minutes=args.minutes)
            result = train_translator(args.pairs, args.run_dir, train_config=cfg, progress=True, **SETTINGS)
            report.update(train_s=time.perf_counter() - t0, stopped=result.stopped, epochs=result.epochs_run,
                          history=result.history)
        best = args.run_dir / "best.safetensors"
        model, _ = load_model(best if best.exists() else args.run_dir / "last.safetensors")
        test = args.run_dir / "test.tsv"
        for beam in (1, 5):
            t1 = time.perf_counter()
            report[f"beam{beam}"] = evaluate_translator(model, test, beam=beam)
            report[f"beam{beam}"]["seconds"] = time.perf_counter() - t1
            print(f"beam {beam}:", json.dumps(report[f"beam{beam}"]), flush=True)
        report["samples"] = list(zip(SAMPLES, translate(model, SAMPLES, beam=5)))
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
