"""Audio for speech recognition: WAV reading (the standard library's `wave`), log-mel filterbank
and MFCC features (librosa, the optional extra `rnnlab[speech]`), mean/variance normalisation,
augmentation (noise at a given SNR, speed change, vocal tract length warps, SpecAugment masks)
and the Free Spoken Digit Dataset's naming, with connected-digit utterances joined from single
recordings.

Features are (frames, dims), float32: 25 ms windows every 10 ms; `logmel` is log(mel power +
1e-6) over `n_mels` bands; `mfcc` the first `n_mfcc` cepstral coefficients of the log-mel
spectrum; `deltas` appends the first and second time derivatives (librosa.feature.delta).
`preemphasis` > 0 first filters the signal y[n] - a y[n-1] (HTK and Kaldi use 0.97): a DC
offset and low hum are taken out, which normalising the features cannot do.
"""

from __future__ import annotations

import re
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .readers import DataError

FEATURES = ("logmel", "mfcc")
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


def _librosa():
    try:
        import librosa
    except ImportError:
        raise ConfigError("audio features need librosa: pip install 'rnnlab[speech]'") from None
    return librosa


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(samples in [-1, 1] as float32, sample rate) of a PCM WAV file (8/16/32-bit; channels
    averaged to mono)."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError) as exc:
        reason = str(exc) or "the file ends before a WAV header"
        raise DataError(f"{path}: expected a PCM WAV file, got one that is not ({reason})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    kinds = {1: (np.uint8, 128.0, 128.0), 2: (np.int16, 0.0, 32768.0), 4: (np.int32, 0.0, 2147483648.0)}
    if width not in kinds:
        raise DataError(f"{path}: expected 8, 16 or 32-bit PCM samples, got {8 * width}-bit")
    dtype, offset, scale = kinds[width]
    x = (np.frombuffer(raw, dtype=dtype).astype(np.float32) - offset) / scale
    return x.reshape(-1, channels).mean(1), rate


@dataclass
class FeatureConfig:
    kind: str = "mfcc"                        # "mfcc" or "logmel"
    sample_rate: int = 8000                   # recordings at another rate are resampled to it
    n_mels: int = 40
    n_mfcc: int = 13
    deltas: bool = True                       # append first and second time derivatives
    window_ms: float = 25.0
    hop_ms: float = 10.0
    preemphasis: float = 0.0                  # a in y[n] - a y[n-1] before the spectrum; 0: none

    def __post_init__(self) -> None:
        if self.kind not in FEATURES:
            raise ConfigError(f"features: expected one of {FEATURES}, got {self.kind!r}")
        if not 0.0 <= self.preemphasis < 1.0:
            raise ConfigError(f"preemphasis: expected a coefficient in [0, 1), got {self.preemphasis!r}")
        if self.kind == "mfcc" and not 0 < self.n_mfcc <= self.n_mels:
            raise ConfigError(f"n_mfcc: expected 1..n_mels ({self.n_mels}), got {self.n_mfcc}")

    @property
    def dims(self) -> int:
        base = self.n_mfcc if self.kind == "mfcc" else self.n_mels
        return base * (3 if self.deltas else 1)


def vtlp_warp(freqs: np.ndarray, alpha: float, nyquist: float, boundary: float) -> np.ndarray:
    """Jaitly & Hinton (2013)'s vocal tract length warp of frequencies: f * alpha up to
    boundary * min(alpha, 1) / alpha, then a straight line that keeps the Nyquist frequency."""
    cut = boundary * min(alpha, 1.0) / alpha
    high = nyquist - (nyquist - boundary * min(alpha, 1.0)) / (nyquist - cut) * (nyquist - freqs)
    return np.where(freqs <= cut, freqs * alpha, high)


def mel_filterbank(cfg: FeatureConfig, n_fft: int, warp: float = 1.0) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) librosa's mel filters; with `warp` != 1 each filter reads the
    spectrum's bin at f as it reads frequency vtlp_warp(f) (VTLP: warp > 1 moves a voice's
    formants up, as a shorter vocal tract would; the boundary is 0.6 of the Nyquist frequency,
    as the paper's 4,800 Hz of 8,000)."""
    basis = _librosa().filters.mel(sr=cfg.sample_rate, n_fft=n_fft, n_mels=cfg.n_mels, fmax=cfg.sample_rate / 2)
    if warp == 1.0:
        return basis
    nyquist = cfg.sample_rate / 2
    bins = np.linspace(0.0, nyquist, basis.shape[1])                  # each bin's frequency
    warped = vtlp_warp(bins, warp, nyquist, 0.6 * nyquist)
    return np.stack([np.interp(warped, bins, row) for row in basis]).astype(basis.dtype)


def features(signal: np.ndarray, rate: int, cfg: FeatureConfig, warp: float = 1.0) -> np.ndarray:
    """(frames, cfg.dims) float32 features of a mono signal; `warp` != 1: its frequencies warped
    (`mel_filterbank`, training-time VTLP)."""
    lb = _librosa()
    y = np.asarray(signal, dtype=np.float32)
    if rate != cfg.sample_rate:
        y = lb.resample(y, orig_sr=rate, target_sr=cfg.sample_rate)
    if cfg.preemphasis:                                       # y[n] - a y[n-1]
        y = lb.effects.preemphasis(y, coef=cfg.preemphasis)
    win = int(round(cfg.sample_rate * cfg.window_ms / 1000))
    hop = int(round(cfg.sample_rate * cfg.hop_ms / 1000))
    n_fft = 1 << (win - 1).bit_length()                       # the next power of two
    if len(y) < n_fft:                                        # shorter than a window: pad it
        y = np.pad(y, (0, n_fft - len(y)))
    power = np.abs(lb.stft(y, n_fft=n_fft, hop_length=hop, win_length=win)) ** 2        # (n_fft // 2 + 1, F)
    mel = mel_filterbank(cfg, n_fft, warp) @ power                                      # (n_mels, F)
    logmel = np.log(mel + 1e-6)
    f = lb.feature.mfcc(S=logmel, n_mfcc=cfg.n_mfcc) if cfg.kind == "mfcc" else logmel
    if cfg.deltas:
        width = min(9, f.shape[1] if f.shape[1] % 2 else f.shape[1] - 1)
        if width >= 3:
            f = np.concatenate([f, lb.feature.delta(f, width=width, order=1),
                                lb.feature.delta(f, width=width, order=2)])
        else:                                                 # too few frames for a derivative
            f = np.concatenate([f, np.zeros_like(f), np.zeros_like(f)])
    return f.T.astype(np.float32)                             # (F, dims)


@dataclass
class Normaliser:
    """Per-dimension mean and standard deviation: global (from the training set, kept in the
    checkpoint) or per utterance (`per_utterance`, computed on every input)."""
    mean: list[float] | None = None
    std: list[float] | None = None
    per_utterance: bool = False

    @classmethod
    def fit(cls, feats: list[np.ndarray], per_utterance: bool = False) -> "Normaliser":
        if per_utterance:
            return cls(per_utterance=True)
        allf = np.concatenate(feats).astype(np.float64)
        return cls(allf.mean(0).tolist(), np.maximum(allf.std(0), 1e-5).tolist())

    def centre(self, f: np.ndarray) -> np.ndarray:
        """(D,) the values this normaliser maps to 0 for `f`: its mean."""
        return f.mean(0) if self.per_utterance else np.asarray(self.mean, dtype=f.dtype)

    def __call__(self, f: np.ndarray) -> np.ndarray:
        if self.per_utterance:
            return ((f - f.mean(0)) / np.maximum(f.std(0), 1e-5)).astype(np.float32)
        if self.mean is None or len(self.mean) != f.shape[1]:
            raise ConfigError(f"features: expected {len(self.mean or [])} dimensions as in training, got {f.shape[1]}")
        return ((f - np.asarray(self.mean)) / np.asarray(self.std)).astype(np.float32)


def add_noise(signal: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """The signal with white noise at `snr_db` decibels below its power."""
    power = float(np.mean(signal.astype(np.float64) ** 2)) or 1e-10
    noise = rng.standard_normal(len(signal)) * np.sqrt(power / 10 ** (snr_db / 10))
    return (signal + noise).astype(np.float32)


def change_speed(signal: np.ndarray, factor: float) -> np.ndarray:
    """Played `factor` times as fast (pitch moves with it, as Ko et al. 2015's speed
    perturbation): resampled to len / factor samples."""
    if factor == 1.0:
        return signal
    n = max(1, int(round(len(signal) / factor)))
    return np.interp(np.linspace(0, len(signal) - 1, n), np.arange(len(signal)), signal).astype(np.float32)


def spec_augment(f: np.ndarray, rng: np.random.Generator, time_masks: int = 2, time_width: int = 10,
                 freq_masks: int = 2, freq_width: int = 5, fill: np.ndarray | float = 0.0) -> np.ndarray:
    """SpecAugment's masks (Park et al. 2019), no time warp: up to `time_masks` runs of at most
    `time_width` frames (and a fifth of the frames) and `freq_masks` bands of at most
    `freq_width` dimensions set to `fill` (the mean: 0 once normalised)."""
    f = f.copy()
    F, D = f.shape
    fill = np.broadcast_to(np.asarray(fill, dtype=f.dtype), (D,))
    for _ in range(time_masks):
        w = int(rng.integers(0, min(time_width, max(F // 5, 1)) + 1))
        t0 = int(rng.integers(0, max(F - w, 0) + 1))
        f[t0:t0 + w] = fill
    for _ in range(freq_masks):
        w = int(rng.integers(0, min(freq_width, D) + 1))
        d0 = int(rng.integers(0, D - w + 1))
        f[:, d0:d0 + w] = fill[d0:d0 + w]
    return f


@dataclass(frozen=True)
class Recording:
    path: Path
    digit: int
    speaker: str
    take: int


def fsdd_recordings(folder: str | Path) -> list[Recording]:
    """Every `{digit}_{speaker}_{take}.wav` in a folder, sorted by speaker, digit, take."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: expected a folder of recordings named {{digit}}_{{speaker}}_{{take}}.wav")
    out = []
    for p in folder.iterdir():
        m = FSDD_NAME.match(p.name)
        if m:
            out.append(Recording(p, int(m.group(1)), m.group(2), int(m.group(3))))
    if not out:
        raise DataError(f"{folder}: no recordings named {{digit}}_{{speaker}}_{{take}}.wav")
    return sorted(out, key=lambda r: (r.speaker, r.digit, r.take))


def join_digits(parts: list[np.ndarray], rate: int, rng: np.random.Generator, gap_ms: tuple[int, int] = (50, 300),
                noise_level: float = 0.003) -> np.ndarray:
    """One utterance from single-digit recordings: gaps of `gap_ms` (drawn uniformly) of low
    white noise (standard deviation `noise_level`) before, between and after them."""
    pieces = []
    for i, p in enumerate(parts):
        pieces.append(rng.standard_normal(int(rng.integers(gap_ms[0], gap_ms[1] + 1) * rate / 1000)) * noise_level)
        pieces.append(p)
    pieces.append(rng.standard_normal(int(rng.integers(gap_ms[0], gap_ms[1] + 1) * rate / 1000)) * noise_level)
    return np.concatenate(pieces).astype(np.float32)


def connected_digits(recordings: list[Recording], count: int, seed: int, lengths: tuple[int, int] = (3, 7)
                     ) -> list[tuple[list[Recording], int]]:
    """`count` utterance plans: each a list of 3-7 recordings of one speaker (drawn with a
    seeded generator, so the same seed gives the same set) and the seed of its gaps."""
    by_speaker: dict[str, list[Recording]] = {}
    for r in recordings:
        by_speaker.setdefault(r.speaker, []).append(r)
    speakers = sorted(by_speaker)
    if not speakers:
        raise DataError("recordings: none to join")
    rng = np.random.default_rng(seed)
    plans = []
    for _ in range(count):
        pool = by_speaker[speakers[int(rng.integers(len(speakers)))]]
        n = int(rng.integers(lengths[0], lengths[1] + 1))
        plans.append(([pool[int(i)] for i in rng.integers(0, len(pool), n)], int(rng.integers(2 ** 31))))
    return plans
