"""A whole model's training step against the same model in PyTorch, in one process: float32,
torch on 2 threads (or the second argument), rnnlab inside shared_pool() (as its commands run);
the trainer's global-norm clip 5 and Adam; median of 7 interleaved rounds (ABBA).

- language models: embedding -> 2-layer LSTM/GRU -> dense softmax over V, cross-entropy;
- "sentiment": a BiLSTM sentence classifier (V 16k, emb 128, H 128, lengths 5-40, B 32),
  pooled by the last layer's final states of both directions, as `train-classifier`.

    python benchmarks/bench_models.py ["word small,word medium,char gru,char lstm,sentiment"]
    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/bench_models.py "" 1
"""
import statistics
import sys
import time

import numpy as np
import torch

from rnnlab.threads import shared_pool
from rnnlab.data.vocab import Vocab
from rnnlab.models.language_model import LanguageModel, LanguageModelConfig
from rnnlab.models.base import RecurrentConfig
from rnnlab.optim import Adam, clip_grad_norm
from rnnlab.recipes.bench import _blas_kernels, _cpu_name, _vector_isa

THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 2      # torch's; rnnlab's: the env
torch.set_num_threads(THREADS)


def _timed_pair(ours, theirs, rounds: int = 7) -> tuple[float, float]:
    """Median ms of each step over interleaved rounds (ABBA), after two warm-up steps each."""
    for f in (ours, theirs, ours, theirs):
        f()
    ts = {"rnnlab": [], "torch": []}
    for r in range(rounds):
        for k, f in (("rnnlab", ours), ("torch", theirs)) if r % 2 == 0 else (("torch", theirs), ("rnnlab", ours)):
            time.sleep(0.1)
            t0 = time.perf_counter()
            f()
            ts[k].append(time.perf_counter() - t0)
    return tuple(statistics.median(ts[k]) * 1e3 for k in ("rnnlab", "torch"))


def _breakdown(m, opt, x, y, rounds: int = 5) -> dict[str, float]:
    """Where rnnlab's step goes: LanguageModel.forward_backward's parts timed one by one
    (medians of `rounds` steps), then clipping and the optimizer."""
    from rnnlab.losses import softmax_cross_entropy
    times: dict[str, list[float]] = {k: [] for k in ("recurrent", "embedding", "head + loss",
                                                     "clip", "optimizer")}
    for _ in range(rounds):
        t = [time.perf_counter()]
        e = m.embedding(x)
        t.append(time.perf_counter())
        out, _ = m.rnn.forward(e)
        t.append(time.perf_counter())
        loss, dlogits = softmax_cross_entropy(m.head(out), y)
        dout = m.head.backward(dlogits)
        t.append(time.perf_counter())
        de, _ = m.rnn.backward(dout)
        t.append(time.perf_counter())
        m.embedding.backward(de)
        t.append(time.perf_counter())
        g = dict(m.named_grads())
        clip_grad_norm(g, 5.0)
        t.append(time.perf_counter())
        opt.step(g)
        t.append(time.perf_counter())
        d = [b - a for a, b in zip(t, t[1:])]
        for k, v in zip(times, (d[1] + d[3], d[0] + d[4], d[2], d[5], d[6])):
            times[k].append(v)
    return {k: statistics.median(v) for k, v in times.items()}


def _machine() -> str:
    import os
    return (f"Machine: {_cpu_name()}, {os.cpu_count()} cores, {_vector_isa()}; {_blas_kernels()}; "
            f"torch {torch.__version__}, {THREADS} threads")


CONFIGS = {"word small": (10000, 200, "lstm", 200, 20, 20), "word medium": (10000, 650, "lstm", 650, 20, 35),
           "char lstm": (65, 64, "lstm", 512, 64, 100), "char gru": (65, 64, "gru", 256, 32, 100),
           "sentiment": (16000, 128, "lstm", 128, 32, 40)}


def classifier_pair(V, E, H, B, T):
    """(rnnlab step, torch step) of the BiLSTM classifier on one padded batch with lengths."""
    from rnnlab.models.classifier import ClassifierConfig, SequenceClassifier
    rng = np.random.default_rng(0)
    lengths = np.sort(rng.integers(5, T + 1, B))[::-1].copy()
    x = rng.integers(2, V, (T, B))
    x[np.arange(T)[:, None] >= lengths[None, :]] = 0                   # padding id 0
    y = rng.integers(0, 2, B)
    vocab = Vocab(["<pad>", "<unk>"] + [f"w{i}" for i in range(V - 2)])
    m = SequenceClassifier(vocab, ClassifierConfig(2, 0, E, RecurrentConfig("lstm", H, 1, bidirectional=True)),
                           ["neg", "pos"], rng=0)
    opt = Adam(m.named_parameters(), lr=1e-3)

    def ours():
        m.forward_backward((x, lengths, y)); g = dict(m.named_grads()); clip_grad_norm(g, 5.0); opt.step(g)
    emb, rnn, head = torch.nn.Embedding(V, E, padding_idx=0), torch.nn.LSTM(E, H, bidirectional=True), torch.nn.Linear(2 * H, 2)
    params = list(emb.parameters()) + list(rnn.parameters()) + list(head.parameters())
    topt = torch.optim.Adam(params, lr=1e-3)
    xt, yt, lt = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(lengths)

    def theirs():
        topt.zero_grad(set_to_none=True)
        _, (h, _) = rnn(torch.nn.utils.rnn.pack_padded_sequence(emb(xt), lt))
        loss = torch.nn.functional.cross_entropy(head(torch.cat([h[-2], h[-1]], -1)), yt)
        loss.backward(); torch.nn.utils.clip_grad_norm_(params, 5.0); topt.step()
    return ours, theirs
with shared_pool():
    names = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else ",".join(CONFIGS)
    print(_machine())
    print("| model | B x T | rnnlab ms | torch ms | rnnlab/torch | rnnlab's step |\n|---|---|---|---|---|---|")
    for name in names.split(","):
        V, E, cell, H, B, T = CONFIGS[name]
        if name == "sentiment":
            ours, theirs = classifier_pair(V, E, H, B, T)
            a, b = _timed_pair(ours, theirs)
            print(f"| {name} | {B} x {T} | {a:.1f} | {b:.1f} | {a / b:.2f} | - |", flush=True)
            continue
        m = LanguageModel(Vocab([f"w{i}" for i in range(V)]), LanguageModelConfig("word", E, RecurrentConfig(cell, H, 2)), rng=0)
        opt = Adam(m.named_parameters(), lr=1e-3)
        rng = np.random.default_rng(0); x, y = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
        def ours():
            m.forward_backward((x, y)); g = dict(m.named_grads()); clip_grad_norm(g, 5.0); opt.step(g)
        emb, rnn, head = torch.nn.Embedding(V, E), getattr(torch.nn, cell.upper())(E, H, 2), torch.nn.Linear(H, V)
        params = list(emb.parameters()) + list(rnn.parameters()) + list(head.parameters())
        topt = torch.optim.Adam(params, lr=1e-3)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        def theirs():
            topt.zero_grad(set_to_none=True)
            out, _ = rnn(emb(xt)); loss = torch.nn.functional.cross_entropy(head(out).reshape(-1, V), yt.reshape(-1))
            loss.backward(); torch.nn.utils.clip_grad_norm_(params, 5.0); topt.step()
        a, b = _timed_pair(ours, theirs)
        parts = _breakdown(m, opt, x, y)
        shares = ", ".join(f"{k} {v / sum(parts.values()):.0%}" for k, v in parts.items())
        print(f"| {name} | {B} x {T} | {a:.1f} | {b:.1f} | {a / b:.2f} | {shares} |", flush=True)
