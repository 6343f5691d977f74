"""The PyTorch tutorial's translation task, French -> English, in rnnlab and in PyTorch: the same
architecture, data, split, batches, optimiser and wall-clock budget; BLEU and chrF (sacrebleu)
on the held-out pairs, greedy decoding, and sample translations.

Data: ../shared/data/tatoeba_eng_fra_full/eng-fra.txt filtered as the tutorial ("translation with
a sequence to sequence network and attention": both sides under 10 of its tokens, English
starting "i am", "he is", ...): 10,599 pairs. The split (declared before any test score): 10% of
the English sentences, with all their translations, for test, 5% for validation (unused here),
seed 0 (rnnlab.data.pairs.split_pairs).

Model (both libraries): embeddings 256; encoder a bidirectional GRU of 128 units a direction
(256 wide); decoder a GRU of 256 units starting from the encoder's final states side by side,
reading the previous attentional state (input feeding); Luong "general" attention with source
padding masked; ht = tanh(W_c [context; h]); a dense layer over the English vocabulary; dropout
0.1 on embeddings and ht; cross-entropy with label smoothing 0.1; Adam lr 1e-3, global-norm clip
5, batches of 32 pairs bucketed by source length, the same batches in the same order for both.

    python benchmarks/translate_tutorial.py --minutes 10 [--seeds 0 1 2] [--threads 2] [--pairs FILE]

Each library trains for the budget (checked after every batch, whole epochs not required),
measuring its validation loss (NLL, no smoothing) after each epoch and when the budget runs out,
and keeps the weights of the best one (the budget includes these measurements); then it
translates the test sources greedily with those weights. Each seed sets both libraries' initial
weights and dropout and the batches' order (the same batches for both); each run reports its
validation-loss curve against wall time, so the time each library takes to reach a loss can
be read off. rnnlab runs inside shared_pool() (as its commands
do); torch on --threads threads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from rnnlab.data import pad_sequences
from rnnlab.data.pairs import bucketed_batches, detokenize, encode_pairs, pair_vocabs, split_pairs, tokenize
from rnnlab.models.base import RecurrentConfig
from rnnlab.models.translator import BOS, EOS, Translator, TranslatorConfig
from rnnlab.optim import Adam, clip_grad_norm
from rnnlab.recipes.bench import _blas_kernels, _cores, _cpu_name, _vector_isa
from rnnlab.recipes.bench_models import torch_translator
from rnnlab.recipes.translator import load_pairs, recased, score_translations
from rnnlab.threads import shared_pool

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tatoeba_eng_fra_full" / "eng-fra.txt"
E, H, BATCH, LR, CLIP, DROPOUT, SMOOTHING = 256, 128, 32, 1e-3, 5.0, 0.1, 0.1


def data(path: Path):
    pairs = load_pairs(path, reverse=True, tutorial=True)                 # French -> English
    train, valid, test = split_pairs(pairs, (0.05, 0.1), seed=0)
    tok = [(tokenize(p.source), tokenize(p.target)) for p in train]
    src, tgt = pair_vocabs(tok)
    ids = encode_pairs(tok, src, tgt)
    valid_ids = encode_pairs([(tokenize(p.source), tokenize(p.target)) for p in valid], src, tgt)
    return pairs, train, test, src, tgt, ids, valid_ids


def batches(ids, tgt, epoch: int, seed: int = 0):
    return bucketed_batches(ids, tgt.stoi[BOS], tgt.stoi[EOS], BATCH, np.random.default_rng([seed, epoch]))


def budgeted(step, keep_best, ids, tgt, minutes: float, seed: int):
    """Training steps over the epochs' batches until `minutes` run out (checked after every
    step), `keep_best()` (-> the validation loss) after each epoch and at the end;
    -> (steps, seconds, [(seconds, steps, validation loss), ...])."""
    steps, epoch, t0, curve = 0, 0, time.perf_counter(), []
    while time.perf_counter() - t0 < minutes * 60:
        for b in batches(ids, tgt, epoch, seed):
            step(b)
            steps += 1
            if time.perf_counter() - t0 >= minutes * 60:
                break
        else:
            epoch += 1
        curve.append((round(time.perf_counter() - t0, 1), steps, keep_best()))
    return steps, time.perf_counter() - t0, curve


def run_rnnlab(src, tgt, ids, valid_ids, minutes: float, test_sources: list[str], seed: int):
    from rnnlab.train import evaluate
    cfg = TranslatorConfig(E, RecurrentConfig("gru", H, 1, bidirectional=True), 0, "general", 0, True, False,
                           DROPOUT, SMOOTHING)
    model = Translator(src, tgt, cfg, rng=seed)
    opt = Adam(model.named_parameters(), lr=LR)
    valid = batches(valid_ids, tgt, 0)
    best, kept = float("inf"), None

    def keep_best():
        nonlocal best, kept
        loss = evaluate(model, valid)["loss"]
        if loss < best:
            best, kept = loss, {k: a.copy() for k, a in model.named_parameters()}
        return loss
    def step(b):
        model.forward_backward(b)
        g = dict(model.named_grads())
        clip_grad_norm(g, CLIP)
        opt.step(g)
    with shared_pool():
        steps, train_s, curve = budgeted(step, keep_best, ids, tgt, minutes, seed)
        for k, a in model.named_parameters():
            a[...] = kept[k]
        from rnnlab.recipes.translator import translate
        t1 = time.perf_counter()
        hyps = translate(model, test_sources, batch_size=256)
        decode_s = time.perf_counter() - t1
    return hyps, {"steps": steps, "epochs": steps / len(batches(ids, tgt, 0, seed)), "train_s": train_s,
                  "decode_s": decode_s, "best_valid_loss": best, "curve": curve}


def run_torch(src, tgt, ids, valid_ids, minutes: float, test_sources: list[str], threads: int, seed: int):
    import torch
    from torch import nn
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    Vs, Vt, Hd = len(src), len(tgt), 2 * H

    model = torch_translator(torch, Vs, Vt, E, H, DROPOUT)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    as_torch = lambda b: [torch.from_numpy(a) for a in (b.src, b.src_lengths, b.tgt_in, b.tgt_out)]
    valid = [(as_torch(b), int(b.tgt_lengths.sum())) for b in batches(valid_ids, tgt, 0)]
    best, kept = float("inf"), None

    def keep_best():
        nonlocal best, kept
        model.eval()
        with torch.inference_mode():
            loss = sum(model.loss(*b, 0.0).item() * n for b, n in valid) / sum(n for _, n in valid)
        model.train()
        if loss < best:
            best, kept = loss, {k: v.detach().clone() for k, v in model.state_dict().items()}
        return loss
    def step(b):
        opt.zero_grad(set_to_none=True)
        model.loss(*as_torch(b), SMOOTHING).backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
    steps, train_s, curve = budgeted(step, keep_best, ids, tgt, minutes, seed)
    model.load_state_dict(kept)
    model.eval()
    t1 = time.perf_counter()
    hyps = []
    bos, eos = tgt.stoi[BOS], tgt.stoi[EOS]
    with torch.inference_mode():
        for i in range(0, len(test_sources), 256):
            toks = [tokenize(s) for s in test_sources[i:i + 256]]
            sid, lens = pad_sequences([src.encode(t, "source") for t in toks])
            S, lens = torch.from_numpy(sid), torch.from_numpy(lens)
            mem, mask, h = model.encode(S, lens)
            ht, y = torch.zeros(len(toks), Hd), torch.full((len(toks),), bos)
            out = [[] for _ in toks]
            live = torch.ones(len(toks), dtype=torch.bool)
            limits = torch.ceil(1.5 * lens).long() + 5                     # as rnnlab's search
            for t in range(int(limits.max())):
                ht, h = model.step(model.tgt_emb(y), ht, h, mem, mask)
                logits = model.head(ht)
                logits[:, [0, bos]] = float("-inf")
                y = logits.argmax(1)
                for n in torch.nonzero(live).flatten().tolist():
                    if y[n] == eos:
                        live[n] = False
                    else:
                        out[n].append(tgt.itos[int(y[n])])
                        live[n] = t + 1 < limits[n]
                if not live.any():
                    break
            hyps += [recased(detokenize(words), english=True) for words in out]
    decode_s = time.perf_counter() - t1
    return hyps, {"steps": steps, "epochs": steps / len(batches(ids, tgt, 0, seed)), "train_s": train_s,
                  "decode_s": decode_s, "best_valid_loss": best, "curve": curve}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget per library")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=2, help="torch's threads")
    ap.add_argument("--pairs", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "translate_tutorial.json")
    args = ap.parse_args()
    if not args.pairs.exists():
        raise SystemExit(f"--pairs: {args.pairs} is not here (../shared/data/tatoeba_eng_fra_full)")
    pairs, train, test, src, tgt, ids, valid_ids = data(args.pairs)
    sources = [p.source for p in test]
    refs = [p.target for p in test]
    unique = list(dict.fromkeys(sources))
    machine = f"{_cpu_name()}, {_cores()} cores, {_vector_isa()}; NumPy's BLAS: {_blas_kernels()}"
    report = {"machine": machine, "pairs": len(pairs), "train_pairs": len(train), "test_pairs": len(test),
              "test_sources": len(unique), "vocab": [len(src), len(tgt)], "minutes": args.minutes}
    print(json.dumps(report), flush=True)
    for seed in args.seeds:
        for name in ("rnnlab", "torch"):
            if name == "rnnlab":
                hyps, info = run_rnnlab(src, tgt, ids, valid_ids, args.minutes, unique, seed)
            else:
                import torch
                hyps, info = run_torch(src, tgt, ids, valid_ids, args.minutes, unique, args.threads, seed)
                info["torch"] = torch.__version__
            by = dict(zip(unique, hyps))
            info.update(score_translations([by[s] for s in sources], sources, refs))
            info["samples"] = [[s, by[s]] for s in unique[:8]]
            report.setdefault("runs", {}).setdefault(f"seed{seed}", {})[name] = info
            print(seed, name, json.dumps({k: v for k, v in info.items() if k != "curve"}, ensure_ascii=False),
                  flush=True)
    runs = report["runs"].values()
    report["summary"] = {name: {k: statistics.mean(r[name][k] for r in runs) for k in ("bleu", "chrf", "steps")}
                         for name in ("rnnlab", "torch")}
    report["summary"]["bleu_rnnlab_minus_torch"] = [r["rnnlab"]["bleu"] - r["torch"]["bleu"] for r in runs]
    report["summary"]["steps_ratio"] = [r["rnnlab"]["steps"] / r["torch"]["steps"] for r in runs]
    print(json.dumps(report["summary"]), flush=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
