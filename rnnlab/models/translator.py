"""Encoder-decoder with attention (Bahdanau et al. 2015; Luong et al. 2015) for translation.

Letters: S source steps, T target steps, B batch, E embedding size, H the encoder's hidden size
per direction, F = Dn*H its output width, Hd the decoder's hidden size, V the target vocabulary.

    encoder:  source ids (S, B) -> embedding -> (bi)directional stacked RNN, with lengths
              -> memory (B, S, F) and final states
    bridge:   the decoder's initial state from the encoder's final states: each layer's
              directions side by side (F wide); through tanh(W h + b) (and W c + b) when F != Hd
    decoder:  stacked cells stepped one token at a time (`DecoderStack`); step t reads the
              embedding of y_(t-1) and, with input feeding (Luong), the attentional state
              ht_(t-1) of the step before
    attention: context_t over the memory for the top layer's h_t (layers/attention.py), then
              ht_t = tanh(W_c [context_t; h_t] + b_c) (Luong's attentional hidden state)
    output:   logits_t = ht_t W_o^T + b_o over V, for all steps in one product; W_o may be the
              target embedding (tied, when Hd == E)

Training is teacher forcing: the decoder reads the reference y_(t-1). Padding is masked in the
attention (source) and in the loss (target). Every backward pass here is beside its forward.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _checks as check
from ..cells.gru import GRUCellConfig
from ..cells.lstm import LSTMCellConfig
from ..cells.rnn import RNNCellConfig
from ..data.vocab import Vocab
from ..errors import ConfigError, ShapeError
from ..init import init_cell, make_rng
from ..kernels import folded_input
from ..layers import Dense, Dropout, Embedding
from ..layers.attention import (SCORES, Attention, attention_backward, attention_forward,
                                attention_keys, keys_backward)
from ..losses import log_softmax, softmax_cross_entropy
from .decoding import Hypothesis, beam_search, greedy, max_lengths
from ..module import ParamModule
from ..params import CellParams
from .base import Model, RecurrentConfig, config_from_dict, dataclass_dict, make_rnn, shard_dataclass

STEP_CELLS = {  # the decoder's cells: one step function each
    "lstm": lambda H: LSTMCellConfig(H),
    "gru": lambda H: GRUCellConfig(H),
    "gru_reset_before": lambda H: GRUCellConfig(H, reset_after=False),
    "rnn": lambda H: RNNCellConfig(H),
}
BOS, EOS = "<bos>", "<eos>"


@dataclass
class TranslatorConfig:
    embedding_dim: int = 256
    encoder: RecurrentConfig = field(default_factory=lambda: RecurrentConfig("gru", 128, 1, bidirectional=True))
    decoder_hidden: int = 0                   # 0: the encoder's output width F (no bridge)
    attention: str = "general"                # dot, general, additive, or none
    attention_hidden: int = 0                 # additive: its hidden size A (0: decoder_hidden)
    input_feeding: bool = True                # Luong: step t also reads ht_(t-1)
    tie_embeddings: bool = False              # the output layer is the target embedding
    dropout: float = 0.0                      # on embeddings and on ht before the output layer
    label_smoothing: float = 0.0              # training loss only
    reverse: bool = False                     # trained on a pairs file's second column as source
    embedding_init_std: float = 1.0           # N(0, std^2) embeddings, torch's default (0.1 learnt
                                              # the tutorial's pairs slower: 2.54 vs 2.09 NLL after 3 epochs)

    def __post_init__(self) -> None:
        if not isinstance(self.encoder, RecurrentConfig):
            self.encoder = config_from_dict(RecurrentConfig, self.encoder, "encoder")
        check.positive_int(self.embedding_dim, "embedding_dim")
        check.positive_int(self.decoder_hidden, "decoder_hidden", allow_zero=True)
        check.positive_int(self.attention_hidden, "attention_hidden", allow_zero=True)
        check.choice(self.attention, "attention", SCORES + ("none",))
        check.choice(self.encoder.cell, "encoder.cell", tuple(STEP_CELLS))
        check.probability(self.dropout, "dropout")
        check.number(self.label_smoothing, "label_smoothing", 0.0, maximum=1.0)
        check.number(self.embedding_init_std, "embedding_init_std", 0.0, open_min=True)
        if self.input_feeding and self.attention == "none":
            self.input_feeding = False                                  # nothing to feed
        if self.tie_embeddings and self.hidden != self.embedding_dim:
            raise ConfigError(f"tie_embeddings: the output layer reads the decoder's {self.hidden} "
                              f"units and the embedding has {self.embedding_dim}; expected equal sizes")
        if self.attention == "dot" and self.hidden != self.width:
            raise ConfigError(f"attention: 'dot' needs decoder_hidden equal to the encoder's output "
                              f"width {self.width}, got {self.hidden}; use 'general' or 'additive'")

    @property
    def width(self) -> int:
        """F: the encoder's output width (both directions side by side)."""
        return self.encoder.hidden_size * (2 if self.encoder.bidirectional else 1)

    @property
    def hidden(self) -> int:
        """Hd: the decoder's hidden size."""
        return self.decoder_hidden or self.width


@dataclass
class TranslationBatch:
    src: np.ndarray                           # (S, B) source ids, padded with 0
    src_lengths: np.ndarray                   # (B,)
    tgt_in: np.ndarray                        # (T, B) <bos> y_1 .. y_(n-1), padded
    tgt_out: np.ndarray                       # (T, B) y_1 .. y_n <eos>, padded
    tgt_lengths: np.ndarray                   # (B,) n + 1


class DecoderStack(ParamModule):
    """`num_layers` cells stepped one token at a time, with PyTorch's keys (weight_ih_l0, ...):
    `step` runs one step of every layer, `step_backward` goes back through it, `finish` turns
    the steps' saved values into the parameter gradients (one product each, as the time loop)."""

    def __init__(self, kind: str, input_size: int, hidden_size: int, num_layers: int, *,
                 dtype: np.dtype, rng: np.random.Generator) -> None:
        self.cell = STEP_CELLS[kind](hidden_size)
        self.dtype = dtype
        self.layers = [init_cell(self.cell, input_size if l == 0 else hidden_size, bias=True,
                                 dtype=dtype, rng=rng) for l in range(num_layers)]
        self._grads: list[CellParams] | None = None

    def _param_sets(self):
        return [(f"_l{l}", p) for l, p in enumerate(self.layers)]

    def _grad_sets(self):
        return self._grads

    def folded(self) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Each layer's W_ih and its one input-side bias, for a call's steps."""
        return [folded_input(self.cell, p, None) for p in self.layers]

    def step(self, folded, x: np.ndarray, carries: list, saved: list | None):
        """x (B, D_in) and each layer's carry -> the top layer's h (B, Hd), new carries; each
        layer's (input, cache) appended to `saved` when given (training)."""
        new = []
        for p, (w, b), carry in zip(self.layers, folded, carries):
            xp = x @ w.T                                                # (B, G*Hd)
            if b is not None:
                xp += b
            carry, cache = self.cell.step_forward(p, xp, carry)
            if saved is not None:
                saved.append((x, cache))
            new.append(carry)
            x = carry[0]                                                # the next layer's input
        return x, new

    def step_backward(self, dh: np.ndarray, dcarries: list, saved_step: list, grads_steps: list):
        """dL/dh of the top layer's output at this step, and dL/d(each layer's carry after it)
        -> dL/d(this step's input x), dL/d(the carries before it). Appends (dxp, drec) per layer."""
        dx = dh
        prev = [None] * len(self.layers)
        for l in range(len(self.layers) - 1, -1, -1):
            p = self.layers[l]
            dc = (dcarries[l][0] + dx,) + tuple(dcarries[l][1:])       # its output went up
            dxp, dprev, drec = self.cell.step_backward(p, dc, saved_step[l][1])
            grads_steps[l].append((dxp, drec))
            prev[l] = dprev
            dx = dxp @ p.w_ih                                           # (B, D_in)
        return dx, prev

    def finish(self, saved: list[list], grads_steps: list[list]) -> None:
        """Parameter gradients from every step's inputs, caches and (dxp, drec), steps in order."""
        self._grads = []
        for l, p in enumerate(self.layers):
            X = np.stack([s[l][0] for s in saved])                      # (T, B, D_in)
            caches = tuple(np.stack(f) for f in zip(*(s[l][1] for s in saved)))
            dXP = np.stack([g[0] for g in grads_steps[l]])              # (T, B, G*Hd)
            drecs = tuple(np.stack(f) for f in zip(*(g[1] for g in grads_steps[l])))
            flat_d = dXP.reshape(-1, dXP.shape[-1])
            g = CellParams(w_ih=flat_d.T @ X.reshape(-1, X.shape[-1]), w_hh=None)
            if p.b_ih is not None:
                g.b_ih = flat_d.sum(0)
            self.cell.recurrent_grads(p, caches, drecs, g)
            self._grads.append(g)


class Translator(Model):
    kind = "translator"

    def __init__(self, source: Vocab, target: Vocab, cfg: TranslatorConfig, *,
                 dtype: object = np.float32, rng: np.random.Generator | int | None = None) -> None:
        for name, v in (("source", source), ("target", target)):
            if v.pad_id != 0:
                raise ConfigError(f"{name}: expected <pad> at id 0, got {v.itos[0]!r}")
        if BOS not in target or EOS not in target:
            raise ConfigError(f"target: expected {BOS} and {EOS} tokens in the vocabulary")
        self.source, self.target, self.cfg = source, target, cfg
        self.dtype = check.as_dtype(dtype)
        self.rng = make_rng(rng)
        E, F, Hd, L = cfg.embedding_dim, cfg.width, cfg.hidden, cfg.encoder.num_layers
        std = cfg.embedding_init_std
        self.src_emb = Embedding(len(source), E, padding_idx=0, dtype=self.dtype, rng=self.rng, init_std=std)
        self.tgt_emb = Embedding(len(target), E, padding_idx=0, dtype=self.dtype, rng=self.rng, init_std=std)
        self.encoder = make_rnn(cfg.encoder, E, self.dtype, self.rng)
        self.bridge_h = self.bridge_c = None
        if F != Hd:
            self.bridge_h = Dense(F, Hd, dtype=self.dtype, rng=self.rng)
            if cfg.encoder.cell == "lstm":
                self.bridge_c = Dense(F, Hd, dtype=self.dtype, rng=self.rng)
        attended = cfg.attention != "none"
        self.decoder = DecoderStack(cfg.encoder.cell, E + (Hd if cfg.input_feeding else 0), Hd, L,
                                    dtype=self.dtype, rng=self.rng)
        self.attention = (Attention(cfg.attention, Hd, F, cfg.attention_hidden or Hd, dtype=self.dtype,
                                    rng=self.rng) if attended else None)
        self.combine = Dense(F + Hd, Hd, dtype=self.dtype, rng=self.rng) if attended else None
        self.head = None if cfg.tie_embeddings else Dense(Hd, len(target), dtype=self.dtype, rng=self.rng)
        self.out_bias = np.zeros(len(target), self.dtype) if cfg.tie_embeddings else None
        self.dropouts = tuple(Dropout(cfg.dropout, self.rng) for _ in range(3))   # source, target, ht
        self._grads: dict[str, np.ndarray] = {}

    # -- parameters ---------------------------------------------------------------------------
    def modules(self):
        mods = [("source_embedding", self.src_emb), ("target_embedding", self.tgt_emb),
                ("encoder", self.encoder)]
        mods += [(k, m) for k, m in (("bridge_h", self.bridge_h), ("bridge_c", self.bridge_c)) if m is not None]
        mods.append(("decoder", self.decoder))
        if self.attention is not None:
            mods += [("attention", _Named(self.attention.p.items, lambda: self._grads["attention"].items())),
                     ("combine", self.combine)]
        if self.head is not None:
            mods.append(("head", self.head))
        else:
            mods.append(("output", _Named(lambda: [("bias", self.out_bias)],
                                          lambda: [("bias", self._grads["out_bias"])])))
        return mods

    def config(self) -> dict:
        return {"model": dataclass_dict(self.cfg), "source": self.source.to_json(),
                "target": self.target.to_json()}

    @classmethod
    def from_config(cls, config: dict, dtype: object = np.float32) -> "Translator":
        return cls(Vocab.from_json(config["source"]), Vocab.from_json(config["target"]),
                   config_from_dict(TranslatorConfig, config["model"], "model"), dtype=dtype, rng=0)

    @classmethod
    def parameter_floor(cls, config: dict) -> int:
        cfg = config_from_dict(TranslatorConfig, config["model"], "model")
        V = len(Vocab.from_json(config["target"]))
        return (len(Vocab.from_json(config["source"])) + V) * cfg.embedding_dim + cfg.hidden * V * (not cfg.tie_embeddings)

    # -- encoder and bridge -------------------------------------------------------------------
    def encode(self, src: np.ndarray, src_lengths: np.ndarray, keep_cache: bool):
        """-> memory (B, S, F), source mask (B, S), the decoder's initial carries (per layer)."""
        if src.ndim != 2 or src_lengths.shape != (src.shape[1],):
            raise ShapeError(f"src: expected (S, B) ids with lengths (B,), got {src.shape} and {src_lengths.shape}")
        e = self.dropouts[0](self.src_emb(src))                         # (S, B, E)
        out, state = self.encoder.forward(e, None, src_lengths, keep_cache=keep_cache)   # (S, B, F)
        memory = np.ascontiguousarray(out.transpose(1, 0, 2))           # (B, S, F)
        mask = np.arange(src.shape[0])[None, :] < src_lengths[:, None]  # (B, S)
        return memory, mask, self._bridge(state)

    def _sides(self, a: np.ndarray) -> np.ndarray:
        """(L*Dn, B, H) final states -> (L, B, F): each layer's directions side by side."""
        Dn = self.encoder.num_directions
        L, B, H = a.shape[0] // Dn, a.shape[1], a.shape[2]
        return a.reshape(L, Dn, B, H).transpose(0, 2, 1, 3).reshape(L, B, Dn * H)

    def _unsides(self, d: np.ndarray) -> np.ndarray:
        """The gradient of _sides back to (L*Dn, B, H)."""
        Dn = self.encoder.num_directions
        L, B, F = d.shape
        H = F // Dn
        return d.reshape(L, B, Dn, H).transpose(0, 2, 1, 3).reshape(L * Dn, B, H)

    def _bridge(self, state) -> list:
        lstm = isinstance(state, tuple)
        h = self._sides(state[0] if lstm else state)                    # (L, B, F)
        c = self._sides(state[1]) if lstm else None
        if self.bridge_h is not None:
            h = np.tanh(self.bridge_h(h))                               # (L, B, Hd)
            self._bridged = h
            if lstm:
                c = self.bridge_c(c)
        return [(h[l], c[l]) if lstm else (h[l],) for l in range(h.shape[0])]

    def _bridge_backward(self, dcarries: list):
        lstm = len(dcarries[0]) == 2
        dh = np.stack([d[0] for d in dcarries])                         # (L, B, Hd)
        dc = np.stack([d[1] for d in dcarries]) if lstm else None
        if self.bridge_h is not None:
            dh = self.bridge_h.backward(dh * (1 - self._bridged ** 2))  # through tanh
            if lstm:
                dc = self.bridge_c.backward(dc)
        dh = self._unsides(dh)
        return (dh, self._unsides(dc)) if lstm else dh

    # -- decoder ------------------------------------------------------------------------------
    def start(self, B: int, carries) -> np.ndarray:
        """The attentional state fed to the first step: zeros (B, Hd)."""
        return np.zeros((B, self.cfg.hidden), dtype=self.dtype)

    def decode_step(self, folded, y_prev: np.ndarray, ht_prev: np.ndarray, carries: list,
                    memory: np.ndarray, keys, mask: np.ndarray):
        """One inference step for the tokens y_(t-1) (B,): -> ht_t (B, Hd), new carries, the
        attention weights (B, S) (None without attention)."""
        return self._step(folded, self.tgt_emb.weight[y_prev], ht_prev, carries, memory, keys, mask, None)

    def _step(self, folded, e, ht_prev, carries, memory, keys, mask, saved):
        """One step from the embedding e (B, E) of y_(t-1); with `saved` (a list), what
        backward needs is appended."""
        x = np.concatenate([e, ht_prev], axis=1) if self.cfg.input_feeding else e   # (B, E [+ Hd])
        layers: list = [] if saved is not None else None
        h, carries = self.decoder.step(folded, x, carries, layers)      # (B, Hd)
        if self.attention is None:
            if saved is not None:
                saved.append((layers, None, None, None))
            return h, carries, None
        ctx, weights, acache = attention_forward(self.cfg.attention, self.attention.p, h, memory, keys, mask)
        u = np.concatenate([ctx, h], axis=1)                            # (B, F + Hd)
        ht = np.tanh(u @ self.combine.weight.T + self.combine.bias)     # (B, Hd) Luong's ht
        if saved is not None:
            saved.append((layers, acache, u, ht))
        return ht, carries, weights

    def _decode_all(self, batch: TranslationBatch, keep: bool):
        """Teacher forcing over the batch's targets -> HT (T, B, Hd), what backward needs."""
        memory, mask, carries = self.encode(batch.src, batch.src_lengths, keep)
        keys = attention_keys(self.cfg.attention, self.attention.p, memory) if self.attention is not None else None
        E_tgt = self.dropouts[1](self.tgt_emb(batch.tgt_in))            # (T, B, E)
        T, B = batch.tgt_in.shape
        folded = self.decoder.folded()
        ht = self.start(B, carries)
        HT = np.empty((T, B, self.cfg.hidden), dtype=self.dtype)
        saved: list | None = [] if keep else None
        for t in range(T):
            ht, carries, _ = self._step(folded, E_tgt[t], ht, carries, memory, keys, mask, saved)
            HT[t] = ht
        return HT, (memory, mask, keys, saved)

    def output(self, ht: np.ndarray) -> np.ndarray:
        """Logits (B, V) of one step's ht (B, Hd), for decoding (no dropout)."""
        w, b = (self.head.weight, self.head.bias) if self.head is not None else (self.tgt_emb.weight, self.out_bias)
        return ht @ w.T + b

    def stepper(self, src: np.ndarray, src_lengths: np.ndarray, beam: int = 1):
        """(step, state) for rnnlab.models.decoding: the source encoded once, its memory copied
        `beam` times a sentence (the rows beam_search makes of the state); `step` returns the
        most attended source position of each row (among the source's unknown words where it
        has any: a target <unk> is mostly one of them, a name or a number), and records the
        attention weights of every step in `step.weights` (a list of (rows, S) arrays)."""
        memory, mask, carries = self.encode(src, src_lengths, keep_cache=False)
        keys = attention_keys(self.cfg.attention, self.attention.p, memory) if self.attention is not None else None
        memory, mask, keys = (None if a is None else np.repeat(a, beam, axis=0) for a in (memory, mask, keys))
        unknown = np.repeat((src == self.source.unk_id).T, beam, axis=0)    # (rows, S)
        some = unknown.any(axis=1)
        folded = self.decoder.folded()
        never = [self.target.pad_id, self.target.stoi[BOS]]

        def step(state, y):
            ht, carries = state
            ht, carries, weights = self.decode_step(folded, y, ht, list(carries), memory, keys, mask)
            step.weights.append(weights)
            logp = log_softmax(self.output(ht))
            logp[:, never] = -np.inf                                    # <pad>, <bos> are not output
            align = None
            if weights is not None:                                     # among unknown words first
                align = np.where(some, np.where(unknown, weights, -1.0).argmax(1), weights.argmax(1))
            return logp, (ht, tuple(carries)), align
        step.weights = []
        return step, (self.start(src.shape[1], carries), tuple(carries))

    def search(self, src: np.ndarray, src_lengths: np.ndarray, *, beam: int = 1, max_len_a: float = 1.5,
               max_len_b: int = 5, length_penalty: float = 1.0) -> list[Hypothesis]:
        """The best hypothesis for each padded source (S, B): greedy for beam 1, else beam
        search (rnnlab.models.decoding); tokens without <bos>/<eos>."""
        training = self.training
        self.eval()
        try:
            limits = max_lengths(src_lengths, max_len_a, max_len_b)
            bos, eos = self.target.stoi[BOS], self.target.stoi[EOS]
            step, state = self.stepper(src, src_lengths, beam)
            if beam == 1:
                return greedy(step, state, bos, eos, limits)
            return [h[0] for h in beam_search(step, state, bos, eos, limits, beam, length_penalty)]
        finally:
            self.train(training)

    def translate_ids(self, src: np.ndarray, src_lengths: np.ndarray, **search) -> list[list[int]]:
        """Target ids (without <bos>/<eos>) of `search`'s hypotheses."""
        return [h.tokens for h in self.search(src, src_lengths, **search)]

    def _logits(self, HT: np.ndarray) -> np.ndarray:
        x = self.dropouts[2](HT)                                        # (T, B, Hd)
        if self.head is not None:
            return self.head(x)                                         # (T, B, V)
        self._head_in = x
        return (x.reshape(-1, x.shape[-1]) @ self.tgt_emb.weight.T + self.out_bias).reshape(
            x.shape[:-1] + (self.tgt_emb.weight.shape[0],))

    def _logits_backward(self, dlogits: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """-> dHT (T, B, Hd), and dW_o for the tied embedding (None untied)."""
        if self.head is not None:
            return self.dropouts[2].backward(self.head.backward(dlogits)), None
        d2 = dlogits.reshape(-1, dlogits.shape[-1])                     # (N, V)
        x2 = self._head_in.reshape(-1, self._head_in.shape[-1])         # (N, Hd)
        self._grads["out_bias"] = d2.sum(0)
        dx = (d2 @ self.tgt_emb.weight).reshape(self._head_in.shape)
        return self.dropouts[2].backward(dx), d2.T @ x2                 # dW (V, E)

    def _target_mask(self, batch: TranslationBatch) -> np.ndarray:
        return np.arange(batch.tgt_out.shape[0])[:, None] < batch.tgt_lengths[None, :]   # (T, B)

    def shard_batch(self, batch: TranslationBatch, comm) -> TranslationBatch | None:
        """This rank's pairs of a batch, sources and targets cut to their longest."""
        out = shard_dataclass(batch, comm, {"src": 1, "src_lengths": 0, "tgt_in": 1, "tgt_out": 1, "tgt_lengths": 0},
                              "tgt_lengths", ("tgt_in", "tgt_out"))
        if out is not None:
            out.src = out.src[:int(out.src_lengths.max())]
        return out

    def forward_backward(self, batch: TranslationBatch, carry=None):
        HT, (memory, mask, keys, saved) = self._decode_all(batch, True)
        tmask = self._target_mask(batch)
        loss, dlogits = softmax_cross_entropy(self._logits(HT), batch.tgt_out, tmask, self.cfg.label_smoothing)
        dHT, dW_tied = self._logits_backward(dlogits)
        self._backward(batch, dHT, memory, mask, keys, saved, dW_tied)
        n = int(tmask.sum())
        return loss * n, n, None

    def _backward(self, batch, dHT, memory, mask, keys, saved, dW_tied) -> None:
        T, B, Hd = dHT.shape
        E, F = self.cfg.embedding_dim, self.cfg.width
        score = self.cfg.attention
        L = len(self.decoder.layers)
        sizes = self.decoder.cell.carry_sizes()
        dcarries = [tuple(np.zeros((B, n), self.dtype) for n in sizes) for _ in range(L)]
        dht_next = np.zeros((B, Hd), self.dtype)
        dmemory = np.zeros_like(memory)
        dkeys = None
        if self.attention is not None:
            dkeys = np.zeros_like(keys) if score == "additive" else dmemory
            agrads = self.attention.zero_grads()
            dWc = np.zeros_like(self.combine.weight)
            dbc = np.zeros_like(self.combine.bias)
        dE = np.empty((T, B, E), self.dtype)
        grads_steps: list[list] = [[] for _ in range(L)]
        for t in range(T - 1, -1, -1):
            layers, acache, u, ht = saved[t]
            dht = dHT[t] + dht_next
            if self.attention is not None:
                dpre = dht * (1 - ht * ht)                              # through tanh
                dWc += dpre.T @ u
                dbc += dpre.sum(0)
                du = dpre @ self.combine.weight                         # (B, F + Hd)
                dh = du[:, F:] + attention_backward(score, self.attention.p, memory, keys, du[:, :F],
                                                    acache, agrads, dmemory, dkeys)
            else:
                dh = dht
            dx, dcarries = self.decoder.step_backward(dh, dcarries, layers, grads_steps)
            dE[t] = dx[:, :E]
            if self.cfg.input_feeding:
                dht_next = dx[:, E:]                                    # ht_(t-1) was fed in
        for g in grads_steps:
            g.reverse()                                                 # into step order
        self.decoder.finish([s[0] for s in saved], grads_steps)
        if self.attention is not None:
            if score == "additive":
                dmemory += keys_backward(score, self.attention.p, memory, dkeys, agrads)
            self._grads["attention"] = agrads
            self.combine.grads = (dWc, dbc)
        dout = np.ascontiguousarray(dmemory.transpose(1, 0, 2))         # (S, B, F)
        dsrc, _ = self.encoder.backward(dout, self._bridge_backward(dcarries))
        self.src_emb.backward(self.dropouts[0].backward(dsrc))
        self.tgt_emb.backward(self.dropouts[1].backward(dE))
        if dW_tied is not None:
            self.tgt_emb.grad += dW_tied                                # <pad>'s row too: its logit counts

    def evaluate_batch(self, batch: TranslationBatch, carry=None):
        HT, _ = self._decode_all(batch, False)
        logits = self._logits(HT)
        tmask = self._target_mask(batch)
        loss, _ = softmax_cross_entropy(logits, batch.tgt_out, tmask, grad=False)   # plain NLL
        n = int(tmask.sum())
        correct = float(((logits.argmax(-1) == batch.tgt_out) & tmask).sum())
        return {"loss": loss * n, "accuracy": correct}, n, None


class _Named:
    """A submodule view over parameters that live in another object (attention, tied bias)."""

    def __init__(self, params, grads) -> None:
        self._params, self._grads = params, grads

    def named_parameters(self):
        return iter(self._params())

    def named_grads(self):
        return iter(self._grads())
