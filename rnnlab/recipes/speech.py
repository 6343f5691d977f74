"""Speech recognition with CTC: train on recordings, transcribe, score label error rates.

Recordings come as a folder of WAV files or a list file of their paths (one a line, relative
to the list's folder or the folder above it, as FSDD's `splits/train.txt`). Their labels come
from a transcript file (`path<TAB>labels separated by spaces`, paths as the list's or relative
to the folder of recordings) or, for files named the Free Spoken Digit Dataset way
(`{digit}_{speaker}_{take}.wav`), from the name.

Isolated: every recording is one utterance. Connected (FSDD names): each epoch draws fresh
utterances of 3-7 recordings of one speaker joined by 50-300 ms of low noise (data.audio);
evaluation draws a fixed, seeded set. Every tenth training recording (sorted by name) is held
out for validation, which picks the best epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import _checks as check
from ..data import DataError, bucket_batches, read_text, split_lines
from ..data.audio import (FSDD_NAME, FeatureConfig, Normaliser, Recording, add_noise, change_speed,
                          connected_digits, features, join_digits, read_wav, spec_augment)
from ..errors import ConfigError
from ..metrics import label_error_rate
from ..models.base import RecurrentConfig, Regularisers
from ..models.speech import SpeechConfig, SpeechRecognizer
from ..train import TrainConfig, TrainResult, train


@dataclass(frozen=True)
class Utterance:
    parts: tuple[Path, ...]                   # recordings, in order
    labels: tuple[str, ...]
    gap_seed: int | None = None               # None: one recording as it is; else joined with gaps


@dataclass
class Augment:
    """Training-time changes: white noise at an SNR drawn from `noise_snr` (dB, low and high),
    a speed factor drawn from `speed`, SpecAugment masks, and the recordings made louder or
    quieter by a gain drawn from `gain_db` (dB) before they are joined, so the low noise between
    connected digits is heard at other levels beside the speech (as a louder or quieter voice
    than the training ones would give it); `vtlp`: the spectrum's frequencies warped by a factor
    drawn from it (Jaitly & Hinton 2013's vocal tract length perturbation: the spectrum's
    formants and harmonics move as with a speed change, but the tempo stays)."""
    noise_snr: tuple[float, float] | None = None
    speed: tuple[float, float] | None = None
    spec_augment: bool = False
    gain_db: tuple[float, float] | None = None
    vtlp: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        for name in ("noise_snr", "speed", "gain_db", "vtlp"):
            v = getattr(self, name)
            if v is not None and (len(v) != 2 or v[0] > v[1]):
                raise ConfigError(f"{name}: expected (low, high), got {v!r}")
        for name in ("speed", "vtlp"):
            v = getattr(self, name)
            if v is not None and v[0] <= 0:
                raise ConfigError(f"{name}: expected positive factors, got {v!r}")


class AudioBank:
    """Each file's samples, read once."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[np.ndarray, int]] = {}

    def __call__(self, path: Path) -> tuple[np.ndarray, int]:
        if path not in self._cache:
            self._cache[path] = read_wav(path)
        return self._cache[path]

    def signal(self, u: Utterance, gain: float = 1.0) -> tuple[np.ndarray, int]:
        """The utterance's samples, its recordings scaled by `gain` (the gaps' noise is not)."""
        if u.gap_seed is None:
            y, rate = self(u.parts[0])
            return (y if gain == 1.0 else (y * gain).astype(np.float32)), rate
        parts = [self(p) for p in u.parts]
        rates = {r for _, r in parts}
        if len(rates) != 1:
            raise DataError(f"recordings: cannot join rates {sorted(rates)} into one utterance")
        rate = rates.pop()
        return join_digits([s * gain for s, _ in parts], rate, np.random.default_rng(u.gap_seed)), rate


def read_recordings(data: str | Path, transcripts: str | Path | None = None) -> list[tuple[Path, tuple[str, ...]]]:
    """(path, labels) of every recording a folder or list file names (see the module)."""
    data = Path(data)
    if data.is_dir():
        paths = sorted(p for p in data.iterdir() if p.suffix.lower() == ".wav")
    elif data.is_file():
        paths = [_resolve(data, line.strip()) for line in split_lines(read_text(data)) if line.strip()]
    else:
        raise DataError(f"{data}: expected a folder of WAV files or a list of their paths, found nothing there")
    if not paths:
        raise DataError(f"{data}: no WAV files")
    if transcripts is not None:
        table, where = {}, ((data,) if data.is_dir() else ())
        for n, line in enumerate(split_lines(read_text(transcripts)), start=1):
            if not line.strip():
                continue
            name, sep, labels = line.partition("\t")
            if not sep or not labels.split():
                raise DataError(f"{transcripts}:{n}: expected path<TAB>labels, got {line[:60]!r}")
            table[_resolve(Path(transcripts), name.strip(), where).resolve()] = tuple(labels.split())
        missing = [p for p in paths if p.resolve() not in table]
        if missing:
            raise DataError(f"{transcripts}: no transcript for {missing[0]} ({len(missing)} recordings)")
        return [(p, table[p.resolve()]) for p in paths]
    unnamed = [p for p in paths if not FSDD_NAME.match(p.name)]
    if unnamed:
        raise DataError(f"{unnamed[0]}: not named {{digit}}_{{speaker}}_{{take}}.wav; give --transcripts")
    return [(p, (FSDD_NAME.match(p.name).group(1),)) for p in paths]


def _resolve(listing: Path, name: str, folders: tuple[Path, ...] = ()) -> Path:
    """A path of a list or transcript file: as given, or relative to its folder, the one above,
    or the recordings' `folders`."""
    p = Path(name)
    if p.is_absolute():
        return p
    for base in (listing.parent, listing.parent.parent, *folders):
        if (base / p).exists():
            return base / p
    looked = "beside the list, one folder up" + "".join(f" and in {f}" for f in folders)
    raise DataError(f"{listing}: {name} is not there (looked {looked})")


def _as_recordings(items: list[tuple[Path, tuple[str, ...]]]) -> list[Recording]:
    out = []
    for p, _ in items:
        m = FSDD_NAME.match(p.name)
        if m is None:
            raise DataError(f"{p}: connected digits need recordings named {{digit}}_{{speaker}}_{{take}}.wav")
        out.append(Recording(p, int(m.group(1)), m.group(2), int(m.group(3))))
    return out


def connected_utterances(items: list[tuple[Path, tuple[str, ...]]], count: int, seed: int) -> list[Utterance]:
    """`count` connected-digit utterances joined from FSDD-named recordings, fixed by `seed`."""
    return [Utterance(tuple(r.path for r in parts), tuple(str(r.digit) for r in parts), gap)
            for parts, gap in connected_digits(_as_recordings(items), count, seed)]


@dataclass
class SpeechTask:
    model: SpeechRecognizer
    bank: AudioBank
    train_items: list[tuple[Path, tuple[str, ...]]]
    valid: list[Utterance]
    batch_size: int
    connected: int = 0                        # > 0: fresh connected utterances per epoch
    augment: Augment = field(default_factory=Augment)
    carries_state: bool = False
    valid_feats: list[np.ndarray] | None = field(default=None, repr=False)   # computed once, when first asked

    def _features(self, u: Utterance, rng: np.random.Generator | None, warp: float = 1.0) -> np.ndarray:
        """The utterance's raw features; `rng` given: augmented as `augment` says; `warp`: its
        frequencies warped (a speaker's VTLN warp; training-time VTLP draws its own)."""
        a = self.augment if rng is not None else Augment()
        gain = 10 ** (float(rng.uniform(*a.gain_db)) / 20) if a.gain_db is not None else 1.0
        y, rate = self.bank.signal(u, gain)
        if a.speed is not None:
            y = change_speed(y, float(rng.uniform(*a.speed)))
        if a.noise_snr is not None:
            y = add_noise(y, float(rng.uniform(*a.noise_snr)), rng)
        if a.vtlp is not None:
            warp = float(rng.uniform(*a.vtlp))
        f = features(y, rate, self.model.cfg.features, warp)
        if a.spec_augment:                                    # masked to the mean: 0 once normalised
            f = spec_augment(f, rng, fill=self.model.cfg.normaliser.centre(f))
        return f

    def _batches(self, utts: list[Utterance], size: int, rng: np.random.Generator | None, cache=None):
        feats = cache if cache is not None else [self._features(u, rng) for u in utts]
        lengths = np.array([len(f) for f in feats])
        return [self.model.make_batch([feats[i] for i in b], [list(utts[i].labels) for i in b])
                for b in bucket_batches(lengths, size, rng)]

    def train_batches(self, rng):
        if self.connected:
            utts = connected_utterances(self.train_items, self.connected, int(rng.integers(2 ** 31)))
        else:
            utts = [Utterance((p,), labels) for p, labels in self.train_items]
        return self._batches(utts, self.batch_size, rng)

    def valid_batches(self):
        if self.valid_feats is None:
            self.valid_feats = [self._features(u, None) for u in self.valid]
        return self._batches(self.valid, 64, None, self.valid_feats)


def train_speech(data: str | Path, run_dir: str | Path = "runs/speech", *, transcripts: str | Path | None = None,
                 exclude: str | Path | None = None, held_out_speaker: str | None = None, connected: int = 0,
                 feature: str = "mfcc", n_mels: int = 40, n_mfcc: int = 13, deltas: bool = True,
                 preemphasis: float = 0.0, per_utterance_norm: bool = False, stack: int = 2, cell: str = "lstm",
                 hidden_size: int = 128, num_layers: int = 2, dropout: float = 0.2, batch_size: int = 32,
                 augment: Augment | None = None, train_config: TrainConfig | None = None, resume: bool = True,
                 progress: bool = True, regularisers: Regularisers | None = None) -> TrainResult:
    """A BiLSTM/BiGRU acoustic model with CTC on recordings (see the module). `exclude`: a folder
    or list of recordings never trained on (e.g. FSDD's splits/test.txt); `held_out_speaker`:
    an FSDD speaker left out; `connected` > 0: that many connected-digit utterances an epoch."""
    check.positive_int(batch_size, "batch_size")
    check.positive_int(connected, "connected", allow_zero=True)
    items = read_recordings(data, transcripts)
    if exclude is not None:
        out = {p.resolve() for p, _ in read_recordings(exclude, transcripts)}
        items = [(p, lab) for p, lab in items if p.resolve() not in out]
    if held_out_speaker is not None:
        before = len(items)
        items = [(p, lab) for p, lab in items if p.name.split("_")[1:2] != [held_out_speaker]]
        if len(items) == before:
            raise DataError(f"held_out_speaker: no recordings of {held_out_speaker!r} among the training ones")
    if len(items) < 10:
        raise DataError(f"{data}: {len(items)} recordings are too few to train on (10 at least)")
    valid_items = items[::10]
    train_items = [it for i, it in enumerate(items) if i % 10]
    labels = sorted({lab for _, labs in items for lab in labs})
    fc = FeatureConfig(feature, n_mels=n_mels, n_mfcc=n_mfcc, deltas=deltas, preemphasis=preemphasis)
    bank = AudioBank()
    norm = Normaliser.fit([features(*bank(p), fc) for p, _ in train_items], per_utterance_norm)
    tc = train_config or TrainConfig(epochs=20, lr=1e-3, clip=5.0)
    cfg = SpeechConfig(labels, fc, norm, RecurrentConfig.make(cell, hidden_size, num_layers, 0.0, True, regularisers),
                       stack, dropout)
    model = SpeechRecognizer(cfg, rng=tc.seed)
    valid = (connected_utterances(valid_items, max(len(valid_items), 200), seed=1) if connected
             else [Utterance((p,), lab) for p, lab in valid_items])
    task = SpeechTask(model, bank, train_items, valid, batch_size, connected, augment or Augment())
    return train(model, task, tc, run_dir, resume=resume, progress=progress)


VTLN_WARPS = tuple(round(0.8 + 0.05 * i, 2) for i in range(9))          # 0.80, 0.85, ..., 1.20


def transcribe(model: SpeechRecognizer, paths: list[str | Path], *, beam: int = 1,
               vtln: bool = False) -> list[list[str]]:
    """The label sequence of each WAV file; `vtln`: the files taken as one speaker's and decoded
    at the warp `estimate_warp` finds for them."""
    check.positive_int(beam, "beam")
    utts = [Utterance((Path(p),), ()) for p in paths]
    tasks = _tasks([model])
    feats = (_estimate_warp([model], tasks, utts, VTLN_WARPS)[2] if vtln and utts
             else _member_features([model], tasks, utts, [1.0] * len(utts)))
    return _decode([model], feats, beam).picks


def _tasks(models: list[SpeechRecognizer]) -> list[SpeechTask]:
    """A task per member to compute its features (no augmentation), each with its own reads."""
    return [SpeechTask(m, AudioBank(), [], [], 64) for m in models]


def _check_members(models: list[SpeechRecognizer]) -> None:
    """Refuses an empty list or recognisers whose labels differ."""
    if not models:
        raise DataError("models: expected at least one speech recogniser, got none")
    for m in models[1:]:
        if m.cfg.labels != models[0].cfg.labels:
            raise DataError(f"models: members must share their labels; got {models[0].cfg.labels} and {m.cfg.labels}")


def transcribe_ensemble(models: list[SpeechRecognizer], feats: list[list[np.ndarray]], *,
                        beam: int = 1) -> list[list[str]]:
    """Label sequences by the members' product: each member proposes its own decoding of each
    utterance (`beam` 1: best path), and the proposal with the highest sum of the members' CTC
    log-likelihoods (each summed over all of that member's alignments) wins. Scoring whole
    sequences, not frames, lets members place their label spikes at different frames.
    feats[m]: member m's raw features of the utterances (members may compute them differently)."""
    _check_members(models)
    if len(feats) != len(models):
        raise DataError(f"feats: expected one list of features per member ({len(models)}), got {len(feats)}")
    return _decode(models, feats, beam).picks


def _pick(models: list[SpeechRecognizer], scored: list[tuple[np.ndarray, np.ndarray]],
          proposals: list[list[list[str]]]) -> tuple[list[list[str]], np.ndarray]:
    """Of each utterance's M proposals, the one with the highest summed member log-likelihood,
    and that sum (B,)."""
    total = np.array([sum(m.log_likelihood(lp, n, cand) for m, (lp, n) in zip(models, scored))
                      for cand in proposals])                                 # (M proposals, B)
    best = total.argmax(0)                                                    # the first of ties
    return [proposals[k][b] for b, k in enumerate(best)], total.max(0)


@dataclass
class _Decoded:
    own: list[list[list[str]]]                # each member's own decodings (M x N)
    picks: list[list[str]]                    # the ensemble's (`_pick`) (N)
    sums: np.ndarray                          # (N,) the picks' summed member log-likelihoods
    losses: np.ndarray | None                 # (M, N) each member's CTC loss per label of the given labels


def _decode(models: list[SpeechRecognizer], feats: list[list[np.ndarray]], beam: int,
            labels: list[list[str]] | None = None) -> _Decoded:
    """Every member's decodings and the ensemble's picks, 64 utterances at a time; given the
    utterances' `labels`, each member's loss on them too, as training's (per label; an
    impossible alignment counts 0), from the same forward pass."""
    out = _Decoded([[] for _ in models], [], np.zeros(0), None)
    sums, losses = [], []
    for i in range(0, len(feats[0]), 64):
        scored = [m.frame_log_probs(f[i:i + 64]) for m, f in zip(models, feats)]   # (T', B, C), (B,) each
        proposals = [m.decode(lp, n, beam) for m, (lp, n) in zip(models, scored)]
        for hyps, p in zip(out.own, proposals):
            hyps += p
        picks, best = _pick(models, scored, proposals)
        out.picks += picks
        sums.append(best)
        if labels is not None:
            gold = labels[i:i + 64]
            ll = np.array([m.log_likelihood(lp, n, gold) for m, (lp, n) in zip(models, scored)])   # (M, B)
            per_label = -ll / np.maximum([len(g) for g in gold], 1)
            losses.append(np.where(np.isfinite(per_label), per_label, 0.0))
    if sums:
        out.sums = np.concatenate(sums)
    if labels is not None:
        out.losses = np.concatenate(losses, axis=1) if losses else np.zeros((len(models), 0))
    return out


def _member_features(models: list[SpeechRecognizer], tasks: list[SpeechTask], utts: list[Utterance],
                     warps: list[float]) -> list[list[np.ndarray]]:
    """feats[m][i]: member m's raw features of utterance i at warps[i], computed once per kind
    of features."""
    feats: list[list[np.ndarray]] = []
    for m, task in zip(models, tasks):
        same = [f for other, f in zip(models, feats) if other.cfg.features == m.cfg.features]
        feats.append(same[0] if same else [task._features(u, None, w) for u, w in zip(utts, warps)])
    return feats


def estimate_warp(models: list[SpeechRecognizer], paths: list[str | Path], *,
                  warps: tuple[float, ...] = VTLN_WARPS) -> tuple[float, dict[float, float]]:
    """Test-time vocal tract length normalisation of one speaker, from their recordings and no
    labels: the warp of the spectrum's frequencies (data.audio.vtlp_warp) at which the models are
    surest of their own decodings. Each warp in `warps` is scored by the mean, over the
    recordings, of the summed members' CTC log-likelihood of the ensemble's best-path pick; the
    highest wins. This is Lee & Rose (1996)'s warp search, with the recogniser's confidence in
    place of a generative model's likelihood. Returns the warp and every warp's score."""
    _check_members(models)
    if not paths:
        raise DataError("paths: expected one speaker's recordings, got none")
    return _estimate_warp(models, _tasks(models), [Utterance((Path(p),), ()) for p in paths], warps)[:2]


def _estimate_warp(models: list[SpeechRecognizer], tasks: list[SpeechTask], utts: list[Utterance],
                   warps: tuple[float, ...]) -> tuple[float, dict[float, float], list[list[np.ndarray]]]:
    """`estimate_warp`'s warp and scores, and the members' features at that warp."""
    if not warps or any(not w > 0 for w in warps):
        raise ConfigError(f"warps: expected positive warp factors, got {warps!r}")
    scores: dict[float, float] = {}
    best: tuple[float, list[list[np.ndarray]]] | None = None
    for w in map(float, warps):
        feats = _member_features(models, tasks, utts, [w] * len(utts))
        scores[w] = float(_decode(models, feats, 1).sums.mean())
        if best is None or scores[w] > scores[best[0]]:                      # the first of ties
            best = (w, feats)
    return best[0], scores, best[1]


def _vtln_features(models: list[SpeechRecognizer], tasks: list[SpeechTask], utts: list[Utterance]
                   ) -> tuple[list[list[np.ndarray]], dict[str, float]]:
    """The members' features of each speaker's utterances at the warp estimated for that
    speaker (`_estimate_warp`), in the utterances' order, and the warps."""
    feats: list[list] = [[None] * len(utts) for _ in models]
    warp_of: dict[str, float] = {}
    for spk in sorted({_speaker(u) for u in utts}):
        idx = [i for i, u in enumerate(utts) if _speaker(u) == spk]
        warp_of[spk], _, own = _estimate_warp(models, tasks, [utts[i] for i in idx], VTLN_WARPS)
        for member, f in zip(feats, own):
            for i, x in zip(idx, f):
                member[i] = x
    return feats, warp_of


def _speaker(u: Utterance) -> str:
    """The FSDD speaker of an utterance's first recording; "" for other names (one speaker)."""
    m = FSDD_NAME.match(u.parts[0].name)
    return m.group(2) if m else ""


def _evaluation_sets(models: list[SpeechRecognizer], data: str | Path, transcripts: str | Path | None,
                     connected: int, seed: int) -> dict[str, list[Utterance]]:
    """The recordings as they are ("isolated") and, for FSDD names, `connected` utterances
    joined from them with `seed` ("connected")."""
    items = read_recordings(data, transcripts)
    unknown = sorted({lab for _, labs in items for lab in labs if lab not in models[0].cfg.labels})
    if unknown:
        raise DataError(f"{data}: labels {unknown} are not among the model's {models[0].cfg.labels}")
    sets = {"isolated": [Utterance((p,), lab) for p, lab in items]}
    if connected and all(FSDD_NAME.match(p.name) for p, _ in items):
        sets["connected"] = connected_utterances(items, connected, seed)
    return sets


def evaluate_speech(model: SpeechRecognizer, data: str | Path, *, transcripts: str | Path | None = None,
                    beam: int = 1, connected: int = 1000, seed: int = 0, vtln: bool = False) -> dict:
    """Loss, label error rate and sequence accuracy (%) of the recordings as they are
    ("isolated_..."), and, for FSDD-named recordings, of `connected` utterances joined from them
    with `seed` ("connected_..."); decoding greedy (`beam` 1) or prefix beam search. `vtln`: each
    speaker's recordings decoded at the warp `estimate_warp` finds for them (see
    `evaluate_speech_ensemble`)."""
    scores = evaluate_speech_ensemble([model], data, transcripts=transcripts, beam=beam, connected=connected,
                                      seed=seed, vtln=vtln)
    return {**scores["members"][0], **({"vtln_warps": scores["vtln_warps"]} if vtln else {})}


def _rates(name: str, utts: list[Utterance], hyps: list[list[str]]) -> dict[str, float]:
    """name_error_rate, name_sequence_accuracy and name_utterances of the hypotheses."""
    out = {f"{name}_{k}": v for k, v in label_error_rate([list(u.labels) for u in utts], hyps).items()}
    return {**out, f"{name}_utterances": len(utts)}


def evaluate_speech_ensemble(models: list[SpeechRecognizer], data: str | Path, *,
                             transcripts: str | Path | None = None, beam: int = 1, connected: int = 1000,
                             seed: int = 0, vtln: bool = False) -> dict:
    """The ensemble's label error rate and sequence accuracy (`transcribe_ensemble`) on the sets
    `evaluate_speech` scores, and each member's own `evaluate_speech` under "members". `vtln`:
    in each set, each speaker's utterances are decoded at the warp `estimate_warp` (the
    ensemble's) finds for them, without their labels; the members are scored at the ensemble's
    warps, and "vtln_warps" holds them by set and speaker (speakers from FSDD names; recordings
    named otherwise count as one speaker, "")."""
    check.positive_int(beam, "beam")
    _check_members(models)
    tasks = _tasks(models)
    out: dict = {}
    warps: dict[str, dict[str, float]] = {}
    members: list[dict[str, float]] = [{} for _ in models]
    for name, utts in _evaluation_sets(models, data, transcripts, connected, seed).items():
        if vtln:
            feats, warps[name] = _vtln_features(models, tasks, utts)
        else:
            feats = _member_features(models, tasks, utts, [1.0] * len(utts))
        decoded = _decode(models, feats, beam, [list(u.labels) for u in utts])
        for hyps, loss, scores in zip(decoded.own, decoded.losses, members):
            scores.update({f"{name}_loss": float(loss.mean()), **_rates(name, utts, hyps)})
        out.update(_rates(name, utts, decoded.picks))
    return {**out, "members": members, **({"vtln_warps": warps} if vtln else {})}
