"""`rnnlab bench --models`: whole models' training and evaluation steps against the same models
written in PyTorch, in one process.

Each case builds one rnnlab model the way its recipe does, the same architecture in torch, one
batch of synthetic data of realistic shape, and four zero-argument steps: rnnlab's and torch's
training step (forward, backward, global-norm clip 5, Adam, as the trainer runs it) and
evaluation step (forward and loss, no cache kept; torch under `inference_mode`). Steps run in
interleaved rounds (ABBA, an idle gap between libraries, as the layer bench) after two warm-up
steps each; the figure is the median. rnnlab runs inside `shared_pool()`, as its commands do.

Where rnnlab's training step goes comes from one profiled run of a few steps (cProfile): the
time spent inside each part of the package, entered from outside it: recurrent layers
(networks, kernels), embedding, attention, head (the dense layer), loss, clip, optimizer; the rest
(dropout, gathering, the model's glue) is "other".

Memory: peak resident memory of one step over the resident memory before it (Linux: the peak
is reset through /proc/self/clear_refs), for both libraries, beside what a step must hold:
rnnlab's parameters, gradients and optimizer state.
"""

from __future__ import annotations

import cProfile
import importlib.util
import pstats
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.vocab import Vocab
from ..errors import ConfigError
from ..models.base import RecurrentConfig
from ..optim import Adam, clip_grad_norm
from ..threads import shared_pool

GAP_S = 0.1
CLIP = 5.0
Step = Callable[[], object]


@dataclass
class Case:
    """One model: rnnlab's steps, torch's (None without torch) and what rnnlab's step holds."""
    shape: str                                   # "B x T" as the table prints it
    ours_train: Step
    ours_eval: Step
    theirs_train: Step | None
    theirs_eval: Step | None
    state_bytes: int                             # gradients + optimizer state
    parameters: tuple[int, int | None]           # rnnlab's and torch's parameter counts


@dataclass
class CaseResult:
    name: str
    shape: str
    train_ms: dict[str, float]                   # library -> median ms
    eval_ms: dict[str, float]
    shares: dict[str, float]                     # part of rnnlab's training step -> fraction
    state_mb: float
    peak_mb: dict[str, float] = field(default_factory=dict)   # "rnnlab train", "torch eval", ...


def _trainer_step(model, opt: Adam, batch) -> Step:
    """The trainer's step (train/loop.py): forward_backward, clip, Adam."""
    def step():
        model.forward_backward(batch)
        grads = dict(model.named_grads())
        clip_grad_norm(grads, CLIP)
        opt.step(grads)
    return step


def _eval_step(model, batch) -> Step:
    def step():
        model.eval()
        try:
            model.evaluate_batch(batch)
        finally:
            model.train()
    return step


def _torch_steps(torch, modules, loss_of) -> tuple[Step, Step, int]:
    """torch's training step (zero_grad, loss, backward, clip, Adam), evaluation step
    (inference_mode, eval mode) for `loss_of()` over `modules`, and its parameter count.
    `loss_of()` returns the loss, or (loss, logits, targets) where rnnlab's evaluate_batch
    also counts the right argmaxes (so torch's evaluation does that too)."""
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)

    def train():
        opt.zero_grad(set_to_none=True)
        out = loss_of()
        (out[0] if isinstance(out, tuple) else out).backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()

    def evaluate():
        for m in modules:
            m.eval()
        with torch.inference_mode():
            out = loss_of()
            if isinstance(out, tuple):
                (out[1].argmax(-1) == out[2]).sum().item()
        for m in modules:
            m.train()
    return train, evaluate, sum(p.numel() for p in params)


def _case(shape: str, model, opt: Adam, batch, theirs) -> Case:
    """rnnlab's steps for `model` on `batch` beside torch's (train, eval, parameters) or Nones."""
    grads = sum(a.nbytes for _, a in model.named_parameters())         # one gradient each
    return Case(shape, _trainer_step(model, opt, batch), _eval_step(model, batch), theirs[0], theirs[1],
                grads + sum(a.nbytes for slot in opt.state.values() for a in slot.values()),
                (model.num_parameters(), theirs[2]))


def _words(V: int) -> Vocab:
    return Vocab(["<pad>", "<unk>"] + [f"w{i}" for i in range(V - 2)])


def _padded(rng: np.random.Generator, V: int, B: int, T: int, shortest: int):
    """(T, B) ids in 2..V-1 with lengths in shortest..T, longest first; padding id 0."""
    lengths = np.sort(rng.integers(shortest, T + 1, B))[::-1].copy()
    lengths[0] = T
    x = rng.integers(2, V, (T, B))
    x[np.arange(T)[:, None] >= lengths[None, :]] = 0
    return x, lengths


def language_model(torch, cell: str, level: str, V: int, E: int, H: int, B: int, T: int) -> Case:
    """embedding -> 2-layer LSTM/GRU -> dense softmax over V, cross-entropy (train-lm)."""
    from ..models.language_model import LanguageModel, LanguageModelConfig
    m = LanguageModel(Vocab([f"w{i}" for i in range(V)]), LanguageModelConfig(level, E, RecurrentConfig(cell, H, 2)), rng=0)
    opt = Adam(m.named_parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    batch = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
    theirs = (None, None, None)
    if torch is not None:
        emb, rnn, head = torch.nn.Embedding(V, E), getattr(torch.nn, cell.upper())(E, H, 2), torch.nn.Linear(H, V)
        xt, yt = (torch.from_numpy(a) for a in batch)

        def loss():
            out, _ = rnn(emb(xt))
            logits = head(out).reshape(-1, V)
            return torch.nn.functional.cross_entropy(logits, yt.reshape(-1)), logits, yt.reshape(-1)
        theirs = _torch_steps(torch, (emb, rnn, head), loss)
    return _case(f"{B} x {T}", m, opt, batch, theirs)


def classifier(torch, V: int = 16000, E: int = 128, H: int = 128, B: int = 32, T: int = 40) -> Case:
    """A BiLSTM sentence classifier over padded sentences with lengths, pooled by the last
    layer's final states of both directions (train-classifier)."""
    from ..models.classifier import ClassifierConfig, SequenceClassifier
    rng = np.random.default_rng(0)
    x, lengths = _padded(rng, V, B, T, 5)
    y = rng.integers(0, 2, B)
    m = SequenceClassifier(_words(V), ClassifierConfig(2, 0, E, RecurrentConfig("lstm", H, 1, bidirectional=True)),
                           ["neg", "pos"], rng=0)
    opt = Adam(m.named_parameters(), lr=1e-3)
    batch = (x, lengths, y)
    theirs = (None, None, None)
    if torch is not None:
        emb, rnn, head = torch.nn.Embedding(V, E, padding_idx=0), torch.nn.LSTM(E, H, bidirectional=True), torch.nn.Linear(2 * H, 2)
        xt, yt, lt = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(lengths)

        def loss():
            _, (h, _) = rnn(torch.nn.utils.rnn.pack_padded_sequence(emb(xt), lt))
            logits = head(torch.cat([h[-2], h[-1]], -1))
            return torch.nn.functional.cross_entropy(logits, yt), logits, yt
        theirs = _torch_steps(torch, (emb, rnn, head), loss)
    return _case(f"{B} x {T}", m, opt, batch, theirs)


def tagger(torch, V: int = 20000, K: int = 17, B: int = 32, T: int = 40) -> Case:
    """The POS tagger of train-tagger at its defaults: word embeddings 100 + a character BiLSTM
    (32 -> 2 x 32) over the batch's distinct words, a BiLSTM 128 over the sentence, dropout
    0.25, a softmax per word; sentences of 5-40 words of 2-12 letters."""
    from ..models.tagger import Tagger, TaggerConfig
    rng = np.random.default_rng(0)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    spelled = sorted({"".join(rng.choice(letters, rng.integers(2, 13))) for _ in range(V)})[:V - 2]
    words = Vocab(["<pad>", "<unk>"] + spelled)
    V = len(words)                                                       # spellings may repeat
    chars = Vocab(["<pad>", "<unk>"] + letters)
    tags = Vocab([f"T{i}" for i in range(K)])
    m = Tagger(words, chars, tags, TaggerConfig(), rng=0)
    ids, lengths = _padded(rng, V, B, T, 5)
    sentences = [[words.itos[i] for i in ids[:n, b]] for b, n in enumerate(lengths)]
    batch = m.make_batch(sentences, [[f"T{t}" for t in rng.integers(0, K, n)] for n in lengths])
    opt = Adam(m.named_parameters(), lr=1e-3)
    theirs = (None, None, None)
    if torch is not None:
        cfg = m.cfg
        wemb = torch.nn.Embedding(len(words), cfg.word_dim, padding_idx=0)
        cemb = torch.nn.Embedding(len(chars), cfg.char_dim, padding_idx=0)
        crnn = torch.nn.LSTM(cfg.char_dim, cfg.char_hidden, bidirectional=True)
        rnn = torch.nn.LSTM(cfg.word_dim + 2 * cfg.char_hidden, cfg.rnn.hidden_size, bidirectional=True)
        head = torch.nn.Linear(2 * cfg.rnn.hidden_size, K)
        drop = torch.nn.Dropout(cfg.dropout)
        wt, lt, yt = (torch.from_numpy(a) for a in (batch.words, batch.lengths, batch.tags))
        ct, clt, it = (torch.from_numpy(a) for a in (batch.chars, batch.char_lengths, batch.word_index))
        mask = torch.arange(T)[:, None] < lt[None, :]

        def loss():
            packed = torch.nn.utils.rnn.pack_padded_sequence(cemb(ct), clt, enforce_sorted=False)
            _, (h, _) = crnn(packed)
            per_word = torch.cat([h[0], h[1]], -1)[it]                   # (T, B, 2Hc)
            x = drop(torch.cat([wemb(wt), per_word], -1))
            out, _ = rnn(torch.nn.utils.rnn.pack_padded_sequence(x, lt))
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
            logits = head(drop(out))[mask]
            return torch.nn.functional.cross_entropy(logits, yt[mask]), logits, yt[mask]
        theirs = _torch_steps(torch, (wemb, cemb, crnn, rnn, head, drop), loss)
    return _case(f"{B} x {T}", m, opt, batch, theirs)


def forecaster(torch, window: int = 48, H: int = 32, B: int = 32) -> Case:
    """train-forecast at its defaults: a window of 48 values -> LSTM 32 -> the next value, MSE."""
    from ..models.sequence_regression import Forecaster, ForecasterConfig
    m = Forecaster(ForecasterConfig(rnn=RecurrentConfig("lstm", H), window=window), rng=0)
    opt = Adam(m.named_parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((window, B)).astype(np.float32), rng.standard_normal((B, 1)).astype(np.float32)
    theirs = (None, None, None)
    if torch is not None:
        rnn, head = torch.nn.LSTM(1, H), torch.nn.Linear(H, 1)
        xt, yt = (torch.from_numpy(a) for a in batch)

        def loss():
            _, (h, _) = rnn(xt[..., None])
            return torch.nn.functional.mse_loss(head(h[-1]), yt)
        theirs = _torch_steps(torch, (rnn, head), loss)
    return _case(f"{B} x {window}", m, opt, batch, theirs)


def torch_translator(torch, Vs: int, Vt: int, E: int, H: int, dropout: float = 0.1):
    """The translator of the tutorial setting in torch: embeddings E, a bidirectional GRU of H
    a direction, a GRU decoder of 2H from the encoder's final states side by side, input
    feeding, Luong "general" attention with source padding masked, ht = tanh(W_c [context; h]),
    a dense layer over Vt; dropout on embeddings and ht. Time-major ids as TranslationBatch."""
    nn, F = torch.nn, torch.nn.functional
    Hd = 2 * H

    class TorchTranslator(nn.Module):
        def __init__(self):
            super().__init__()
            self.src_emb, self.tgt_emb = nn.Embedding(Vs, E, padding_idx=0), nn.Embedding(Vt, E, padding_idx=0)
            self.enc = nn.GRU(E, H, bidirectional=True)
            self.dec = nn.GRUCell(E + Hd, Hd)
            self.w = nn.Parameter(torch.empty(Hd, Hd).uniform_(-Hd ** -0.5, Hd ** -0.5))
            self.combine, self.head = nn.Linear(2 * Hd, Hd), nn.Linear(Hd, Vt)
            self.drop = nn.Dropout(dropout)

        def encode(self, s, lens):
            """-> memory (B, S, 2H), its mask (B, S), the decoder's first state (B, 2H)."""
            e = self.drop(self.src_emb(s))
            out, h = self.enc(nn.utils.rnn.pack_padded_sequence(e, lens, enforce_sorted=False))
            out, _ = nn.utils.rnn.pad_packed_sequence(out)
            mem = out.transpose(0, 1)
            mask = torch.arange(mem.shape[1])[None, :] < lens[:, None]
            return mem, mask, torch.cat([h[0], h[1]], -1)

        def step(self, e, ht, h, mem, mask):
            """One decoder step -> (attentional state ht, decoder state h)."""
            h = self.dec(torch.cat([e, ht], -1), h)
            scores = torch.bmm(mem, (h @ self.w)[:, :, None])[..., 0].masked_fill(~mask, float("-inf"))
            ctx = torch.bmm(torch.softmax(scores, 1)[:, None, :], mem)[:, 0]
            return torch.tanh(self.combine(torch.cat([ctx, h], -1))), h

        def logits(self, src, src_len, tgt_in):
            mem, mask, h = self.encode(src, src_len)
            et = self.drop(self.tgt_emb(tgt_in))
            ht, outs = torch.zeros(h.shape[0], Hd), []
            for t in range(et.shape[0]):
                ht, h = self.step(et[t], ht, h, mem, mask)
                outs.append(ht)
            return self.head(self.drop(torch.stack(outs)))             # (T, B, Vt)

        def loss(self, src, src_len, tgt_in, tgt_out, smoothing: float = 0.1):
            return F.cross_entropy(self.logits(src, src_len, tgt_in).reshape(-1, Vt), tgt_out.reshape(-1),
                                   ignore_index=0, label_smoothing=smoothing)

    return TorchTranslator()


def translator(torch, Vs: int = 4300, Vt: int = 2800, E: int = 256, H: int = 128, B: int = 32, T: int = 10) -> Case:
    """The tutorial setting of benchmarks/translate_tutorial.py: a bidirectional GRU encoder of
    128 a direction, a GRU decoder of 256 with input feeding and "general" attention, dropout
    0.1, label smoothing 0.1; sources and targets of 3-10 words (the vocabularies' sizes)."""
    from ..data.pairs import translation_batch
    from ..models.translator import BOS, EOS, Translator, TranslatorConfig
    rng = np.random.default_rng(0)
    src, tgt = _words(Vs), Vocab(["<pad>", "<unk>", BOS, EOS] + [f"w{i}" for i in range(Vt - 4)])
    pairs = [(rng.integers(4, Vs, rng.integers(3, T + 1)), rng.integers(4, Vt, rng.integers(3, T))) for _ in range(B)]
    batch = translation_batch(pairs, tgt.stoi[BOS], tgt.stoi[EOS])
    cfg = TranslatorConfig(E, RecurrentConfig("gru", H, 1, bidirectional=True), 0, "general", 0, True, False, 0.1, 0.1)
    m = Translator(src, tgt, cfg, rng=0)
    opt = Adam(m.named_parameters(), lr=1e-3)
    theirs = (None, None, None)
    if torch is not None:
        model = torch_translator(torch, Vs, Vt, E, H)
        args = [torch.from_numpy(a) for a in (batch.src, batch.src_lengths, batch.tgt_in)]
        yt = torch.from_numpy(batch.tgt_out)

        def loss():
            logits = model.logits(*args)
            keep = yt != 0
            return (torch.nn.functional.cross_entropy(logits[keep], yt[keep], label_smoothing=0.1),
                    logits[keep], yt[keep])
        theirs = _torch_steps(torch, (model,), loss)
    return _case(f"{B} x {batch.tgt_in.shape[0]}", m, opt, batch, theirs)


CASES: dict[str, Callable[[object], Case]] = {
    "char lstm": lambda torch: language_model(torch, "lstm", "char", 65, 64, 512, 64, 100),
    "char gru": lambda torch: language_model(torch, "gru", "char", 65, 64, 256, 32, 100),
    "word small": lambda torch: language_model(torch, "lstm", "word", 10000, 200, 200, 20, 20),
    "word medium": lambda torch: language_model(torch, "lstm", "word", 10000, 650, 650, 20, 35),
    "tagger": tagger,
    "classifier": classifier,
    "forecaster": forecaster,
    "translator": translator,
}
PARTS = {  # part of the step -> the package's modules whose time it counts
    "recurrent": ("networks", "recurrent", "kernels", "cells"),
    "embedding": ("layers.embedding",),
    "attention": ("layers.attention",),
    "head": ("layers.dense",),
    "loss": ("losses",),
    "clip": ("optim.clip",),
    "optimizer": ("optim.optimizers", "optim._fused"),
}


def _interleaved(steps: dict[str, Step], rounds: int) -> dict[str, float]:
    """Median ms per library over `rounds` interleaved rounds (the order reversed every other
    round), after two warm-up steps each."""
    for _ in range(2):
        for f in steps.values():
            f()
    times: dict[str, list[float]] = {k: [] for k in steps}
    order = list(steps)
    for r in range(rounds):
        for k in order if r % 2 == 0 else order[::-1]:
            time.sleep(GAP_S)
            t0 = time.perf_counter()
            steps[k]()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def _part(filename: str) -> str | None:
    """The PARTS key of a profiled function's file, or None outside those modules."""
    p = Path(filename)
    parts = p.with_suffix("").parts
    if "rnnlab" not in parts:
        return None
    dotted = ".".join(parts[len(parts) - parts[::-1].index("rnnlab"):])
    for name, prefixes in PARTS.items():
        if any(dotted == q or dotted.startswith(q + ".") for q in prefixes):
            return name
    return None


def step_shares(step: Step, steps: int = 3) -> dict[str, float]:
    """Fractions of `step`'s time spent in each PARTS entry (entered from outside it) and "other",
    from cProfile over `steps` calls."""
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    total = time.perf_counter() - t0
    spent = dict.fromkeys(PARTS, 0.0)
    for (file, _, _), (_, _, _, _, callers) in pstats.Stats(prof).stats.items():
        part = _part(file)
        if part is None:
            continue
        for (cfile, _, _), (_, _, _, ct) in callers.items():
            if _part(cfile) != part:                        # entered from outside the part
                spent[part] += ct
    shares = {k: v / total for k, v in spent.items()}
    shares["other"] = max(0.0, 1.0 - sum(shares.values()))
    return shares


def _resident_mb() -> tuple[float, float] | None:
    """(resident, peak resident) MB of this process (Linux), or None."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    rss, hwm = (re.search(rf"{k}:\s+(\d+)", text) for k in ("VmRSS", "VmHWM"))
    return (int(rss.group(1)) / 1024, int(hwm.group(1)) / 1024) if rss and hwm else None


def memory_child(name: str, lib: str, what: str, threads: int) -> float | None:
    """Run in a fresh process (`step_memory`): peak resident MB of 3 `what` steps ("train" or
    "eval") of `lib`'s model over the resident MB after the model was built. Compiled code and
    libraries load first on a copy of the case that is then freed (and the freed heap handed
    back to the system), so they are not counted; parameters are, before the steps."""
    import ctypes
    import gc
    torch = None
    if lib == "torch":
        import torch
        torch.set_num_threads(threads)
    with shared_pool():
        case = CASES[name](torch)
        steps = {("rnnlab", "train"): case.ours_train, ("rnnlab", "eval"): case.ours_eval,
                 ("torch", "train"): case.theirs_train, ("torch", "eval"): case.theirs_eval}
        steps[lib, what]()
        del case, steps
        gc.collect()
        try:
            ctypes.CDLL(None).malloc_trim(0)                   # glibc: return the freed heap
        except (OSError, AttributeError):
            pass
        case = CASES[name](torch)
        step = {("rnnlab", "train"): case.ours_train, ("rnnlab", "eval"): case.ours_eval,
                ("torch", "train"): case.theirs_train, ("torch", "eval"): case.theirs_eval}[lib, what]
        try:
            Path("/proc/self/clear_refs").write_text("5")      # resets the peak to the present
        except OSError:
            return None
        before = _resident_mb()
        for _ in range(3):
            step()
        after = _resident_mb()
    return None if before is None or after is None else after[1] - before[0]


def step_memory(name: str, lib: str, what: str, threads: int = 2) -> float | None:
    """memory_child in a fresh Python process (peak memory is a process's); None where the
    platform cannot say."""
    import json
    import subprocess
    import sys
    code = ("import json, sys; from rnnlab.recipes.bench_models import memory_child; "
            f"print(json.dumps(memory_child({name!r}, {lib!r}, {what!r}, {threads})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"memory of {name} ({lib} {what}) failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_case(name: str, rounds: int = 7, torch=None, profile: bool = True, memory: bool = True,
               threads: int = 2) -> CaseResult:
    """Time one CASES entry; torch None: rnnlab alone."""
    if name not in CASES:
        raise ConfigError(f"models: expected some of {', '.join(CASES)}, got {name!r}")
    with shared_pool():
        case = CASES[name](torch)
        train = {"rnnlab": case.ours_train}
        evaluate = {"rnnlab": case.ours_eval}
        if case.theirs_train is not None:
            train["torch"], evaluate["torch"] = case.theirs_train, case.theirs_eval
        result = CaseResult(name, case.shape, _interleaved(train, rounds), _interleaved(evaluate, rounds),
                            step_shares(case.ours_train) if profile else {}, case.state_bytes / 2 ** 20)
    if memory:
        for lib in train:
            for what in ("train", "eval"):
                peak = step_memory(name, lib, what, threads)
                if peak is not None:
                    result.peak_mb[f"{lib} {what}"] = peak
    return result


def run_models(names: tuple[str, ...] = tuple(CASES), rounds: int = 7, threads: int = 2, memory: bool = True,
               on_result: Callable[[CaseResult], None] | None = None) -> list[CaseResult]:
    """Bench each named model; torch (on `threads` threads) where it is installed."""
    for n in names:
        if n not in CASES:
            raise ConfigError(f"models: expected some of {', '.join(CASES)}, got {n!r}")
    torch = None
    if importlib.util.find_spec("torch") is not None:
        import torch
        torch.set_num_threads(threads)
        torch.manual_seed(0)
    results = []
    for n in names:
        results.append(bench_case(n, rounds, torch, memory=memory, threads=threads))
        if on_result is not None:
            on_result(results[-1])
    return results


def machine_line(threads: int) -> str:
    from .bench import _blas_kernels, _cores, _cpu_name, _vector_isa
    line = f"Machine: {_cpu_name()}, {_cores()} cores, {_vector_isa()}; NumPy's BLAS: {_blas_kernels()}"
    if importlib.util.find_spec("torch") is not None:
        import torch
        line += f"; torch {torch.__version__} on {threads} threads"
    from threadpoolctl import threadpool_info
    blas = sorted({i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"})
    return line + f"; rnnlab in shared_pool(), NumPy's BLAS on {'/'.join(map(str, blas)) or '?'} threads"


HEADER = ("| model | B x T | train ms | torch train ms | train ratio | eval ms | torch eval ms | eval ratio "
          "| rnnlab's training step |")


def format_result(r: CaseResult) -> str:
    def ratio(d):
        return f"{d['rnnlab'] / d['torch']:.2f}" if "torch" in d else "-"
    shares = ", ".join(f"{k} {v:.0%}" for k, v in r.shares.items() if v >= 0.005)
    return (f"| {r.name} | {r.shape} | {r.train_ms['rnnlab']:.1f} | {r.train_ms.get('torch', float('nan')):.1f} "
            f"| {ratio(r.train_ms)} | {r.eval_ms['rnnlab']:.1f} | {r.eval_ms.get('torch', float('nan')):.1f} "
            f"| {ratio(r.eval_ms)} | {shares} |")


def format_memory(results: list[CaseResult]) -> str:
    lines = ["| model | gradients + Adam state MB | rnnlab train peak MB | torch train peak MB "
             "| rnnlab eval peak MB | torch eval peak MB |", "|---|---|---|---|---|---|"]
    for r in results:
        cells = [f"{r.peak_mb[k]:.0f}" if k in r.peak_mb else "-"
                 for k in ("rnnlab train", "torch train", "rnnlab eval", "torch eval")]
        lines.append(f"| {r.name} | {r.state_mb:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_models(results: list[CaseResult], rounds: int, threads: int) -> str:
    return "\n".join([
        machine_line(threads) + f"; float32; median of {rounds} interleaved rounds.", "",
        HEADER, "|" + "---|" * 9, *(format_result(r) for r in results), "",
        "Peak resident memory of three steps in a fresh process over its resident memory with the model "
        "built (MB), beside what training must add to the parameters:", "",
        format_memory(results)])
