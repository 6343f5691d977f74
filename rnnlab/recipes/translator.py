"""Translation: train an encoder-decoder with attention on sentence pairs, translate, score
with BLEU and chrF (sacrebleu), draw attention.

The held-out split keeps every translation of one English sentence on one side
(data.pairs.split_pairs) and is written into the run directory (`valid.tsv`, `test.tsv`, in
the pairs file's own column order), so `rnnlab evaluate RUN/best.safetensors RUN/test.tsv`
scores exactly the pairs training never saw. Unknown words: a word-level model writes <unk>
where the target vocabulary has no word; `translate` replaces each with the source word it
attended to most (Luong et al. 2015's copy), which is right for names and numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _checks as check
from ..data import DataError, pad_sequences
from ..data.pairs import (Pair, bucketed_batches, detokenize, encode_pairs, pair_vocabs, read_pairs,
                          split_pairs, tokenize, tutorial_filter)
from ..models.base import RecurrentConfig
from ..models.translator import BOS, EOS, Translator, TranslatorConfig
from ..train import TrainConfig, TrainResult, evaluate, train


@dataclass
class TranslationTask:
    model: Translator
    train_ids: list
    valid_ids: list
    batch_size: int
    carries_state: bool = False

    def _batches(self, ids, size, rng=None):
        return bucketed_batches(ids, self.model.target.stoi[BOS], self.model.target.stoi[EOS], size, rng)

    def train_batches(self, rng):
        return self._batches(self.train_ids, self.batch_size, rng)

    def valid_batches(self):
        return self._batches(self.valid_ids, 256)


def load_pairs(path: str | Path, reverse: bool = False, tutorial: bool = False, max_tokens: int = 15,
               limit: int | None = None) -> list[Pair]:
    """Pairs of a file in the model's direction, filtered: the tutorial's filter (both sides
    under 10 of its tokens, English starting "i am", "he is", ...) or both sides at most
    `max_tokens` of ours."""
    pairs = read_pairs(path, reverse, limit)
    if tutorial:
        return tutorial_filter(pairs, 10, "target" if reverse else "source")
    return [p for p in pairs if len(tokenize(p.source)) <= max_tokens and len(tokenize(p.target)) <= max_tokens]


def write_pairs(pairs: list[Pair], path: Path, reverse: bool) -> None:
    """In the pairs file's own column order (so `evaluate` reads them as that file)."""
    rows = [(p.target, p.source) if reverse else (p.source, p.target) for p in pairs]
    path.write_text("".join(f"{a}\t{b}\n" for a, b in rows), encoding="utf-8")


def train_translator(pairs_path: str | Path, run_dir: str | Path = "runs/translator", *,
                     reverse: bool = False, tutorial: bool = False, max_tokens: int = 15,
                     min_freq: int = 1, max_vocab: int | None = None, cell: str = "gru",
                     hidden_size: int = 256, num_layers: int = 1, bidirectional: bool = True,
                     embedding_dim: int = 256, decoder_hidden: int = 0, attention: str = "general",
                     input_feeding: bool = True, tie_embeddings: bool = False, dropout: float = 0.1,
                     label_smoothing: float = 0.1, batch_size: int = 64, valid_fraction: float = 0.05,
                     test_fraction: float = 0.1, split_seed: int = 0, limit: int | None = None,
                     train_config: TrainConfig | None = None, resume: bool = True,
                     progress: bool = True) -> TrainResult:
    """Train on a `source<TAB>target` pairs file (`reverse`: the other direction)."""
    check.positive_int(batch_size, "batch_size")
    check.positive_int(max_tokens, "max_tokens")
    check.positive_int(min_freq, "min_freq")
    for name, f in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        check.number(f, name, 0.0, open_min=True, maximum=0.5)
    pairs = load_pairs(pairs_path, reverse, tutorial, max_tokens, limit)
    train_pairs, valid_pairs, test_pairs = split_pairs(pairs, (valid_fraction, test_fraction), split_seed)
    if not train_pairs or not valid_pairs:
        raise DataError(f"pairs: {len(pairs)} pairs after filtering are too few to split "
                        f"(valid_fraction={valid_fraction}, test_fraction={test_fraction})")
    tok = [(tokenize(p.source), tokenize(p.target)) for p in train_pairs]
    src_vocab, tgt_vocab = pair_vocabs(tok, min_freq, max_vocab)
    cfg = TranslatorConfig(embedding_dim, RecurrentConfig(cell, hidden_size, num_layers, bidirectional=bidirectional),
                           decoder_hidden, attention, 0, input_feeding, tie_embeddings, dropout,
                           label_smoothing, reverse)
    tc = train_config or TrainConfig(epochs=10, lr=1e-3, clip=5.0)
    model = Translator(src_vocab, tgt_vocab, cfg, rng=tc.seed)
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    write_pairs(valid_pairs, run / "valid.tsv", reverse)
    write_pairs(test_pairs, run / "test.tsv", reverse)
    valid_tok = [(tokenize(p.source), tokenize(p.target)) for p in valid_pairs]
    task = TranslationTask(model, encode_pairs(tok, src_vocab, tgt_vocab),
                           encode_pairs(valid_tok, src_vocab, tgt_vocab), batch_size)
    return train(model, task, tc, run, resume=resume, progress=progress)


def recased(text: str, english: bool) -> str:
    """A lower-cased translation with its first letter (and English "i") upper-cased, as the
    references are written."""
    if english:
        text = " ".join("I" if w == "i" else "I'" + w[2:] if w.startswith("i'") else w for w in text.split(" "))
    return text[:1].upper() + text[1:]


def translate(model: Translator, sentences: list[str], *, beam: int = 1, batch_size: int = 64,
              length_penalty: float = 1.0, recase: bool = True, english: bool | None = None) -> list[str]:
    """Translations of raw sentences; unknown target words copied from the attended source word."""
    if not sentences:
        raise DataError("sentences: expected at least one sentence to translate, got none")
    check.positive_int(beam, "beam")
    if english is None:
        english = _target_is_english(model)
    toks = [tokenize(s) for s in sentences]
    out: list[str] = [""] * len(toks)
    unk = model.target.unk_id
    order = np.argsort([len(t) for t in toks], kind="stable")
    for i in range(0, len(order), batch_size):
        idx = [j for j in order[i:i + batch_size] if toks[j]]
        if not idx:
            continue
        src, lens = pad_sequences([model.source.encode(toks[j], "source tokens") for j in idx])
        for j, h in zip(idx, model.search(src, lens, beam=beam, length_penalty=length_penalty)):
            words = [toks[j][a] if t == unk and 0 <= a < len(toks[j]) else model.target.itos[t]
                     for t, a in zip(h.tokens, h.align)]
            text = detokenize(words)
            out[j] = recased(text, english) if recase else text
    return out


def _target_is_english(model: Translator) -> bool:
    return all(w in model.target for w in ("the", "is", "you"))


def score_translations(hypotheses: list[str], sources: list[str], references: list[str]) -> dict[str, float]:
    """Corpus BLEU (sacrebleu's defaults: 13a tokenization, cased) and chrF, every reference of
    one source sentence used together; also BLEU lower-cased."""
    try:
        from sacrebleu.metrics import BLEU, CHRF
    except ImportError:
        raise DataError("BLEU and chrF need sacrebleu: pip install 'rnnlab[translate]'") from None
    by_source: dict[str, list[str]] = {}
    first: dict[str, str] = {}
    for s, h, r in zip(sources, hypotheses, references):
        by_source.setdefault(s, []).append(r)
        first.setdefault(s, h)
    srcs = list(by_source)
    hyps = [first[s] for s in srcs]
    n = max(len(v) for v in by_source.values())
    streams = [[by_source[s][k] if k < len(by_source[s]) else None for s in srcs] for k in range(n)]
    bleu = BLEU().corpus_score(hyps, streams)
    return {"bleu": bleu.score, "bleu_lowercase": BLEU(lowercase=True).corpus_score(hyps, streams).score,
            "chrf": CHRF().corpus_score(hyps, streams).score, "sentences": len(hyps), "references": n}


def evaluate_translator(model: Translator, pairs_path: str | Path, *, beam: int = 1,
                        limit: int | None = None) -> dict[str, float]:
    """Loss, token accuracy, BLEU and chrF on a pairs file in the pairs file's column order
    (the model knows which column it reads)."""
    pairs = read_pairs(pairs_path, model.cfg.reverse, limit)
    sources = [p.source for p in pairs]
    tok = [(tokenize(p.source), tokenize(p.target)) for p in pairs]
    ids = encode_pairs(tok, model.source, model.target)
    metrics = evaluate(model, bucketed_batches(ids, model.target.stoi[BOS], model.target.stoi[EOS], 256), False)
    unique = list(dict.fromkeys(sources))
    hyp = dict(zip(unique, translate(model, unique, beam=beam)))
    metrics.update(score_translations([hyp[s] for s in sources], sources, [p.target for p in pairs]))
    metrics["beam"] = beam
    return metrics


def attention_figure(model: Translator, sentence: str) -> tuple[list[str], list[str], np.ndarray, bytes]:
    """The greedy translation of one sentence with its attention: (source tokens, translated
    tokens and <eos>, weights (T, S), a PNG heatmap of them drawn with matplotlib)."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..models.decoding import greedy, max_lengths
    if model.attention is None:
        raise DataError("attention: this model has none (attention='none')")
    toks = tokenize(sentence)
    if not toks:
        raise DataError("sentence: expected words to translate, got none")
    src = model.source.encode(toks, "source tokens")[:, None]
    model.eval()
    step, state = model.stepper(src, np.array([len(toks)]))
    h = greedy(step, state, model.target.stoi[BOS], model.target.stoi[EOS], max_lengths(np.array([len(toks)]), 1.5, 5))[0]
    words = [model.target.itos[t] for t in h.tokens] + [EOS]
    weights = np.stack([w[0] for w in step.weights[:len(words)]])      # (T, S)
    fig, ax = plt.subplots(figsize=(1 + 0.5 * len(toks), 1 + 0.4 * len(words)))
    ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0, vmax=1)
    ax.set_xticks(range(len(toks)), toks, rotation=60, ha="right")
    ax.set_yticks(range(len(words)), words)
    ax.set_xlabel("source")
    ax.set_ylabel("translation")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return toks, words, weights, buf.getvalue()


def attention_heatmap(model: Translator, sentence: str, path: str | Path) -> list[str]:
    """Draw the attention weights of the greedy translation of one sentence into a PNG file;
    returns the translation's tokens."""
    from ..train.checkpoint import atomic_write_bytes
    _, words, _, png = attention_figure(model, sentence)
    atomic_write_bytes(Path(path), png)
    return words[:-1]


def translation_report(checkpoint: str | Path, sentences: list[str], out: str | Path, *, beam: int = 5) -> Path:
    """An HTML report (rnnlab.diagnostics.report): each sentence's greedy and beam translations,
    its attention drawn as a heatmap, and the weights as a table."""
    from ..diagnostics.report import Report
    from .common import load_model
    model, _ = load_model(checkpoint, expect_kind="translator")
    sentences = [s for s in sentences if s.strip()]
    if not sentences:
        raise DataError("text: expected at least one sentence to translate, got none")
    rep = Report(f"rnnlab: translations of {Path(checkpoint).name}")
    greedy_out, beam_out = translate(model, sentences), translate(model, sentences, beam=beam)
    for s, g, b in zip(sentences, greedy_out, beam_out):
        rep.heading(s)
        rep.table(["search", "translation"], [["greedy", g], [f"beam {beam}", b]])
        if model.attention is not None:
            toks, words, weights, png = attention_figure(model, s)
            rep.image(png, "attention of the greedy translation: a row per translated token")
            rep.table(["", *toks], [[w, *row] for w, row in zip(words, weights.tolist())])
    return rep.save(out)
