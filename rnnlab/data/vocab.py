"""Vocabulary: token <-> id, with an unknown token and a frequency cut-off."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from ..errors import ConfigError, ValueRangeError

PAD, UNK = "<pad>", "<unk>"


class Vocab:
    """Ids 0.. for `specials` (default pad then unk), then tokens by falling frequency (ties
    by first appearance). Unknown tokens map to `<unk>` when it is there, else raise."""

    def __init__(self, tokens: Sequence[str]) -> None:
        if len(set(tokens)) != len(tokens):
            raise ConfigError("tokens: expected distinct tokens, got duplicates")
        if not tokens:
            raise ConfigError("tokens: expected at least one token, got none")
        self.itos = list(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, tokens: Iterable[str], min_freq: int = 1, max_size: int | None = None,
              specials: Sequence[str] = (PAD, UNK)) -> "Vocab":
        counts = Counter(tokens)
        kept = [t for t, c in sorted(counts.items(), key=lambda kv: -kv[1]) if c >= min_freq
                and t not in specials]                          # sorted() is stable: ties keep order
        if max_size is not None:
            kept = kept[:max(0, max_size - len(specials))]
        return cls(list(specials) + kept)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    @property
    def unk_id(self) -> int | None:
        return self.stoi.get(UNK)

    @property
    def pad_id(self) -> int | None:
        return self.stoi.get(PAD)

    def encode(self, tokens: Iterable[str], what: str = "tokens") -> np.ndarray:
        unk = self.unk_id
        ids = []
        for t in tokens:
            i = self.stoi.get(t, unk)
            if i is None:
                raise ValueRangeError(f"{what}: {t!r} is not in the vocabulary (which has no "
                                      f"{UNK} token) of {len(self)} entries")
            ids.append(i)
        return np.asarray(ids, dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[int(i)] for i in ids]

    def to_json(self) -> list[str]:
        return list(self.itos)

    @classmethod
    def from_json(cls, tokens: object) -> "Vocab":
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ConfigError("vocab: expected a JSON list of strings")
        return cls(tokens)
