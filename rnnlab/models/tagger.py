"""Sequence tagger (one label per token): word embeddings plus a character-level BiLSTM over
each word's letters (so unknown words still get a representation; Plank et al. 2016), then a
bidirectional recurrent net over the sentence and either a softmax per token or a linear-chain
CRF over the whole sentence (Huang et al. 2015; Lample et al. 2016).

`lowercase` looks words up lower-cased (the character model still reads them as written) and
`case_dim` > 0 adds an embedding of each word's casing class (Reimers and Gurevych 2017;
mentions, hashtags and URLs get their own, for social-media text); `word_dropout` turns
training words into <unk> at random so its vector is learnt. `bigram_dim` > 0 adds embeddings of each token's left and right bigrams (the token with its
neighbour; Chen et al. 2015's features for segmenting Chinese, whose tokens are characters).

`scheme` says how the tags make spans: "iob2" (named entities), "bmes" (word segmentation,
where the tokens are characters) or "none" (part-of-speech tags); a CRF forbids the moves the
scheme does not allow."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _checks as check
from .._logspace import logsumexp
from ..errors import ConfigError
from ..data.batching import pad_sequences
from ..data.vocab import Vocab
from ..init import make_rng
from ..layers import Dense, Dropout, Embedding
from ..layers.crf import CRF, SCHEMES, CRFParams, allowed_transitions, viterbi
from ..losses import softmax_cross_entropy
from ..networks import LSTM
from .base import (Model, RecurrentConfig, config_from_dict, dataclass_dict, make_rnn, rnn_parameter_floor,
                   shard_dataclass)


@dataclass
class TaggerConfig:
    word_dim: int = 100
    char_dim: int = 32
    char_hidden: int = 32                     # 0: no character model
    rnn: RecurrentConfig = field(default_factory=lambda: RecurrentConfig("lstm", 128, 1, bidirectional=True))
    dropout: float = 0.25
    crf: bool = False                         # a CRF over the sentence instead of a softmax per token
    scheme: str = "none"                      # how tags make spans: "iob2", "bmes" or "none"
    bigram_dim: int = 0                       # > 0: left and right bigram embeddings of each token
    lowercase: bool = False                   # words looked up lower-cased
    case_dim: int = 0                         # > 0: an embedding of each word's casing class
    word_dropout: float = 0.0                 # training: each word becomes <unk> with this probability
    embedding_init_std: float = 1.0           # N(0, std^2) embeddings (torch's default: 1)

    def __post_init__(self) -> None:
        if self.scheme not in ("none", *SCHEMES):
            raise ConfigError(f"scheme: expected one of {('none', *SCHEMES)}, got {self.scheme!r}")
        if not isinstance(self.rnn, RecurrentConfig):
            self.rnn = config_from_dict(RecurrentConfig, self.rnn, "rnn")
        check.probability(self.dropout, "dropout")
        check.positive_int(self.word_dim, "word_dim")
        check.positive_int(self.char_dim, "char_dim")
        check.positive_int(self.char_hidden, "char_hidden", allow_zero=True)
        check.positive_int(self.bigram_dim, "bigram_dim", allow_zero=True)
        check.positive_int(self.case_dim, "case_dim", allow_zero=True)
        check.probability(self.word_dropout, "word_dropout")
        check.number(self.embedding_init_std, "embedding_init_std", 0.0, open_min=True)


@dataclass
class TagBatch:
    words: np.ndarray                         # (T, B) word ids
    lengths: np.ndarray                       # (B,)
    tags: np.ndarray                          # (T, B) tag ids (0 on padding)
    chars: np.ndarray | None = None           # (Tc, W) char ids of the batch's distinct words
    char_lengths: np.ndarray | None = None    # (W,)
    word_index: np.ndarray | None = None      # (T, B) row of each token in `chars`
    bigrams: np.ndarray | None = None         # (T, B, 2) ids of each token's left and right bigram
    cases: np.ndarray | None = None           # (T, B) casing class of each word


SEP, START, END = "\x1f", "<s>", "</s>"      # bigram keys: "a\x1fb"; the sentence's edges


CASES = ("<pad>", "numeric", "mostly_numeric", "has_digit", "lower", "upper", "title", "mention", "hashtag",
         "url", "other")


def casing(word: str) -> int:
    """The CASES index of a word's shape."""
    digits = sum(c.isdigit() for c in word)
    if word.startswith("@") and len(word) > 1:
        kind = "mention"
    elif word.startswith("#") and len(word) > 1:
        kind = "hashtag"
    elif word.lower().startswith(("http://", "https://", "www.")):
        kind = "url"
    elif word.isdigit():
        kind = "numeric"
    elif digits / max(len(word), 1) > 0.5:
        kind = "mostly_numeric"
    elif digits:
        kind = "has_digit"
    elif word.islower():
        kind = "lower"
    elif word.isupper():
        kind = "upper"
    elif word[:1].isupper():
        kind = "title"
    else:
        kind = "other"
    return CASES.index(kind)


def bigram_keys(tokens: list[str]) -> list[str]:
    """[left, right] bigram of every token in turn: (t[i-1], t[i]) and (t[i], t[i+1])."""
    padded = [START, *tokens, END]
    return [f"{a}{SEP}{b}" for i in range(1, len(padded) - 1) for a, b in
            ((padded[i - 1], padded[i]), (padded[i], padded[i + 1]))]


def best_tags(scores: np.ndarray, lengths: np.ndarray, crf: CRFParams | None = None) -> np.ndarray:
    """(T, B) the best tag ids of (T, B, K) scores: per token, or the Viterbi path under the
    CRF scores `crf` (0 on padding)."""
    if crf is None:
        return scores.argmax(-1)
    mask = np.arange(len(scores))[:, None] < lengths[None, :]             # (T, B)
    best = np.zeros(mask.shape, dtype=np.int64)
    for b, path in enumerate(viterbi(crf, scores, mask)):
        best[:len(path), b] = path
    return best


class Tagger(Model):
    kind = "tagger"

    def __init__(self, words: Vocab, chars: Vocab, tags: Vocab, cfg: TaggerConfig, *,
                 bigrams: Vocab | None = None, dtype: object = np.float32,
                 rng: np.random.Generator | int | None = None) -> None:
        if cfg.bigram_dim and bigrams is None:
            raise ConfigError("bigrams: expected the bigram vocabulary (bigram_dim > 0), got None")
        self.words, self.chars, self.tags, self.cfg = words, chars, tags, cfg
        self.bigrams = bigrams if cfg.bigram_dim else None
        self.dtype = check.as_dtype(dtype)
        self.rng = make_rng(rng)
        std = cfg.embedding_init_std
        self.word_emb = Embedding(len(words), cfg.word_dim, padding_idx=words.pad_id, dtype=self.dtype, rng=self.rng,
                                  init_std=std)
        d_in = cfg.word_dim
        self.char_emb = self.char_rnn = None
        if cfg.char_hidden:
            self.char_emb = Embedding(len(chars), cfg.char_dim, padding_idx=chars.pad_id, dtype=self.dtype,
                                      rng=self.rng, init_std=std)
            self.char_rnn = LSTM(cfg.char_dim, cfg.char_hidden, bidirectional=True, dtype=self.dtype, rng=self.rng)
            d_in += 2 * cfg.char_hidden
        d_in += 2 * cfg.bigram_dim + cfg.case_dim
        self.rnn = make_rnn(cfg.rnn, d_in, self.dtype, self.rng)
        width = cfg.rnn.hidden_size * (2 if cfg.rnn.bidirectional else 1)
        self.head = Dense(width, len(tags), dtype=self.dtype, rng=self.rng)
        self.dropouts = (Dropout(cfg.dropout, self.rng), Dropout(cfg.dropout, self.rng))
        self.crf = None
        if cfg.crf:
            allowed = allowed_transitions(tags.itos, cfg.scheme) if cfg.scheme != "none" else None
            self.crf = CRF(len(tags), constraints=allowed, dtype=self.dtype, rng=self.rng)
        self.bigram_emb = None
        if cfg.bigram_dim:
            self.bigram_emb = Embedding(len(bigrams), cfg.bigram_dim, padding_idx=bigrams.pad_id,
                                        dtype=self.dtype, rng=self.rng, init_std=std)
        self.case_emb = None
        if cfg.case_dim:
            self.case_emb = Embedding(len(CASES), cfg.case_dim, padding_idx=0, dtype=self.dtype, rng=self.rng,
                                      init_std=std)

    def modules(self):
        mods = [("word_embedding", self.word_emb)]
        if self.char_rnn is not None:
            mods += [("char_embedding", self.char_emb), ("char_rnn", self.char_rnn)]
        if self.bigram_emb is not None:
            mods += [("bigram_embedding", self.bigram_emb)]
        if self.case_emb is not None:
            mods += [("case_embedding", self.case_emb)]
        mods += [("rnn", self.rnn), ("head", self.head)]
        return mods + [("crf", self.crf)] if self.crf is not None else mods

    def config(self) -> dict:
        out = {"model": dataclass_dict(self.cfg), "words": self.words.to_json(),
               "chars": self.chars.to_json(), "tags": self.tags.to_json()}
        if self.bigrams is not None:
            out["bigrams"] = self.bigrams.to_json()
        return out

    @classmethod
    def from_config(cls, config: dict, dtype: object = np.float32) -> "Tagger":
        return cls(Vocab.from_json(config["words"]), Vocab.from_json(config["chars"]),
                   Vocab.from_json(config["tags"]), config_from_dict(TaggerConfig, config["model"], "model"),
                   bigrams=Vocab.from_json(config["bigrams"]) if "bigrams" in config else None,
                   dtype=dtype, rng=0)

    @classmethod
    def parameter_floor(cls, config: dict) -> int:
        cfg = config_from_dict(TaggerConfig, config["model"], "model")
        words, chars, tags = (len(Vocab.from_json(config[k])) for k in ("words", "chars", "tags"))
        Hc, rc = cfg.char_hidden, cfg.rnn
        char = (chars * cfg.char_dim + 2 * Hc * (cfg.char_dim + Hc)) if Hc else 0
        width = rc.hidden_size * (2 if rc.bidirectional else 1)
        crf = tags * (tags + 2) if cfg.crf else 0
        Eb = cfg.bigram_dim
        bigram = len(Vocab.from_json(config["bigrams"])) * Eb if Eb and "bigrams" in config else 0
        Ec = cfg.case_dim
        return (words * cfg.word_dim + char + bigram + len(CASES) * Ec
                + rnn_parameter_floor(rc, cfg.word_dim + 2 * Hc + 2 * Eb + Ec) + width * tags + crf)

    def make_batch(self, sentences: list[list[str]], tags: list[list[str]] | None = None) -> TagBatch:
        """Ids, lengths, the character view and the bigrams of a list of tokenised sentences."""
        lookup = [[w.lower() for w in s] for s in sentences] if self.cfg.lowercase else sentences
        words, lengths = pad_sequences([self.words.encode(s, "words") for s in lookup],
                                       pad=self.words.pad_id or 0)
        tag_ids = (pad_sequences([self.tags.encode(t, "tags") for t in tags], pad=0)[0]
                   if tags is not None else np.zeros_like(words))
        batch = TagBatch(words, lengths, tag_ids)
        if self.char_rnn is not None:
            distinct = sorted({w for s in sentences for w in s})
            row = {w: i for i, w in enumerate(distinct)}
            batch.chars, batch.char_lengths = pad_sequences(
                [self.chars.encode(w, "characters") for w in distinct], pad=self.chars.pad_id or 0)
            index = np.zeros(words.shape, dtype=np.int64)
            for b, s in enumerate(sentences):
                index[:len(s), b] = [row[w] for w in s]
            batch.word_index = index
        if self.bigram_emb is not None:
            ids = np.full(words.shape + (2,), self.bigrams.pad_id or 0, dtype=np.int64)
            for b, s in enumerate(sentences):
                ids[:len(s), b] = self.bigrams.encode(bigram_keys(s), "bigrams").reshape(len(s), 2)
            batch.bigrams = ids
        if self.case_emb is not None:
            batch.cases = pad_sequences([np.array([casing(w) for w in s]) for s in sentences], pad=0)[0]
        return batch

    def shard_batch(self, batch: TagBatch, comm) -> TagBatch | None:
        """This rank's sentences of a batch, with only the distinct words they use."""
        out = shard_dataclass(batch, comm, {"words": 1, "lengths": 0, "tags": 1, "word_index": 1, "bigrams": 1,
                                            "cases": 1}, "lengths", ("words", "tags", "word_index", "bigrams", "cases"))
        if out is not None and out.chars is not None:
            used, out.word_index = np.unique(out.word_index, return_inverse=True)
            out.word_index = out.word_index.reshape(out.words.shape)
            out.chars, out.char_lengths = out.chars[:, used], out.char_lengths[used]
            out.chars = out.chars[:int(out.char_lengths.max())]
        return out

    def _features(self, batch: TagBatch, keep_cache: bool) -> np.ndarray:
        """(T, B, Ew [+ 2Hc] [+ 2Eb] [+ Ec]): word, character-model, bigram and casing features
        side by side."""
        words = batch.words
        if self.training and self.cfg.word_dropout > 0:
            drop = (self.rng.random(words.shape) < self.cfg.word_dropout) & (words != (self.words.pad_id or 0))
            words = np.where(drop, self.words.unk_id, words)                # whole words -> <unk>
        parts = [self.word_emb(words)]                                   # (T, B, Ew)
        if self.char_rnn is not None:
            _, (h, _) = self.char_rnn.forward(self.char_emb(batch.chars), None, batch.char_lengths,
                                              keep_cache=keep_cache)     # h (2, W, Hc)
            per_word = np.concatenate([h[0], h[1]], axis=-1)             # (W, 2Hc)
            parts.append(per_word[batch.word_index])                     # (T, B, 2Hc)
        if self.bigram_emb is not None:
            T, B, _ = batch.bigrams.shape
            parts.append(self.bigram_emb(batch.bigrams).reshape(T, B, -1))   # (T, B, 2Eb)
        if self.case_emb is not None:
            parts.append(self.case_emb(batch.cases))                     # (T, B, Ec)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)

    def _logits(self, batch: TagBatch, keep_cache: bool) -> np.ndarray:
        x = self.dropouts[0](self._features(batch, keep_cache))
        out, _ = self.rnn.forward(x, None, batch.lengths, keep_cache=keep_cache)
        return self.head(self.dropouts[1](out))                          # (T, B, K)

    def _loss(self, logits: np.ndarray, batch: TagBatch, mask: np.ndarray, grad: bool):
        """Mean loss per token and d logits: cross-entropy, or the CRF's negative log-likelihood
        of each sentence summed and divided by the tokens (pytorch-crf's "token_mean")."""
        if self.crf is None:
            return softmax_cross_entropy(logits, batch.tags, mask, grad=grad)
        loss = -self.crf(logits, batch.tags, mask, reduction="token_mean")
        return loss, (self.crf.backward(-1.0) if grad else None)

    def _best(self, logits: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(T, B) the best tag ids: per token, or the CRF's Viterbi path (0 on padding)."""
        return best_tags(logits, lengths, self.crf.params() if self.crf is not None else None)

    def forward_backward(self, batch: TagBatch, carry=None):
        logits = self._logits(batch, True)
        mask = np.arange(len(logits))[:, None] < batch.lengths[None, :]  # (T, B)
        loss, dlogits = self._loss(logits, batch, mask, True)
        dx, _ = self.rnn.backward(self.dropouts[1].backward(self.head.backward(dlogits)))
        dx = self.dropouts[0].backward(dx)
        Ew, Hc = self.cfg.word_dim, self.cfg.char_hidden if self.char_rnn is not None else 0
        self.word_emb.backward(dx[..., :Ew])
        Eb = self.cfg.bigram_dim
        if self.bigram_emb is not None:
            T, B, _ = batch.bigrams.shape
            self.bigram_emb.backward(dx[..., Ew + 2 * Hc:Ew + 2 * Hc + 2 * Eb].reshape(T, B, 2, -1))
        if self.case_emb is not None:
            self.case_emb.backward(dx[..., Ew + 2 * Hc + 2 * Eb:])
        if self.char_rnn is not None:
            dword = np.zeros((len(batch.char_lengths), 2 * Hc), dtype=self.dtype)
            np.add.at(dword, batch.word_index[mask], dx[..., Ew:Ew + 2 * Hc][mask])   # tokens -> distinct words
            dh = np.stack([dword[:, :Hc], dword[:, Hc:]])                 # (2, W, Hc)
            dchars, _ = self.char_rnn.backward(None, (dh, np.zeros_like(dh)))
            self.char_emb.backward(dchars)
        n = int(mask.sum())
        return loss * n, n, None

    def evaluate_batch(self, batch: TagBatch, carry=None):
        logits = self._logits(batch, False)
        mask = np.arange(len(logits))[:, None] < batch.lengths[None, :]
        loss, _ = self._loss(logits, batch, mask, False)
        n = int(mask.sum())
        correct = float(((self._best(logits, batch.lengths) == batch.tags) & mask).sum())
        return {"loss": loss * n, "accuracy": correct}, n, None

    def tag_scores(self, sentences: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(T, B, K) per-token tag scores in evaluation mode (no dropout) whatever the model's
        mode: the CRF's emissions, or a softmax tagger's log-probabilities; and (B,) lengths."""
        batch = self.make_batch(sentences)
        training = self.training
        self.eval()
        try:
            logits = self._logits(batch, False)
        finally:
            self.train(training)
        if self.crf is None:                                             # log-softmax over tags
            logits = logits - logsumexp(logits, -1)[..., None]
        return logits, batch.lengths

    def predict(self, sentences: list[list[str]]) -> list[list[str]]:
        """Tags of each sentence, in evaluation mode (no dropout) whatever the model's mode."""
        scores, lengths = self.tag_scores(sentences)
        best = self._best(scores, lengths)                               # (T, B)
        return [self.tags.decode(best[:len(s), b]) for b, s in enumerate(sentences)]
