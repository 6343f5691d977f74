"""Audio: WAV reading, features (a tone lands in its mel band), normalisation, augmentation
(the SNR asked for, a speed change moves a tone's pitch, SpecAugment masks), FSDD names and
connected-digit utterances."""

import wave

import numpy as np
import pytest

from rnnlab.data import DataError
from rnnlab.data.audio import (FeatureConfig, Normaliser, add_noise, change_speed, connected_digits, features,
                               fsdd_recordings, join_digits, read_wav, spec_augment)
from rnnlab.errors import ConfigError

pytest.importorskip("librosa")
RATE = 8000


def _write(path, samples, width=2, channels=1, rate=RATE):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


def _tone(hz, seconds=0.5, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_read_wav_formats(tmp_path):
    x = _tone(440)
    _write(tmp_path / "a.wav", (x * 32767).astype(np.int16))
    y, rate = read_wav(tmp_path / "a.wav")
    assert rate == RATE and y.dtype == np.float32 and np.abs(y - x).max() < 1e-4
    _write(tmp_path / "b.wav", np.repeat((x * 32767).astype(np.int16), 2), channels=2)
    assert np.abs(read_wav(tmp_path / "b.wav")[0] - x).max() < 1e-4           # stereo averaged
    _write(tmp_path / "c.wav", (x * 127 + 128).astype(np.uint8), width=1)
    assert np.abs(read_wav(tmp_path / "c.wav")[0] - x).max() < 2 / 128                # 8-bit steps
    (tmp_path / "d.wav").write_bytes(b"not a wav")
    with pytest.raises(DataError, match=r"d.wav: expected a PCM WAV file, got one that is not \(.+\)"):
        read_wav(tmp_path / "d.wav")
    (tmp_path / "e.wav").write_bytes(b"")                   # wave's EOFError has no message
    with pytest.raises(DataError, match=r"e.wav: .*\(the file ends before a WAV header\)"):
        read_wav(tmp_path / "e.wav")


def test_features_shapes_and_a_tone_in_its_band():
    x = _tone(1000)
    f = features(x, RATE, FeatureConfig())
    assert f.shape == (len(x) // 80 + 1, 39) and f.dtype == np.float32
    lm = features(x, RATE, FeatureConfig("logmel", n_mels=40, deltas=False))
    import librosa
    centres = librosa.mel_frequencies(42, fmax=RATE / 2)[1:-1]
    assert abs(centres[int(lm[5:-5].mean(0).argmax())] - 1000) < 120        # the band holding 1 kHz
    f16 = features(np.repeat(x, 2), 2 * RATE, FeatureConfig("logmel", deltas=False))   # resampled to 8 kHz
    assert f16.shape[0] == lm.shape[0]
    assert features(x[:100], RATE, FeatureConfig()).shape[1] == 39            # shorter than a window
    with pytest.raises(ConfigError, match="features: expected one of"):
        FeatureConfig("plp")


def test_features_are_librosas_mel_spectrogram_unwarped():
    import librosa
    x = _tone(700) + 0.1 * np.random.default_rng(0).standard_normal(RATE // 2).astype(np.float32)
    mel = librosa.feature.melspectrogram(y=x, sr=RATE, n_fft=256, hop_length=80, win_length=200, n_mels=40,
                                         fmax=RATE / 2)
    np.testing.assert_allclose(features(x, RATE, FeatureConfig("logmel", deltas=False)), np.log(mel + 1e-6).T,
                               rtol=1e-5, atol=1e-5)


def test_vtlp_moves_a_tone_to_the_band_of_its_warped_frequency():
    """Jaitly & Hinton's warp: f * alpha below the boundary, a line to the Nyquist frequency
    above it; a 1 kHz tone warped by 1.2 is read by the filters as 1.2 kHz."""
    import librosa
    from rnnlab.data.audio import mel_filterbank, vtlp_warp
    f = np.linspace(0, 4000, 401)
    for alpha in (0.8, 1.1, 1.25):
        w = vtlp_warp(f, alpha, 4000.0, 2400.0)
        cut = 2400 * min(alpha, 1) / alpha
        np.testing.assert_allclose(w[f <= cut], alpha * f[f <= cut])
        assert w[0] == 0 and w[-1] == pytest.approx(4000) and np.all(np.diff(w) > 0)
        high = f > cut                                         # one straight line above the cut
        np.testing.assert_allclose(np.diff(w[high], 2), 0, atol=1e-9)
        assert vtlp_warp(np.array([cut]), alpha, 4000.0, 2400.0)[0] == pytest.approx(2400 * min(alpha, 1))
    cfg = FeatureConfig("logmel", n_mels=40, deltas=False)
    np.testing.assert_array_equal(mel_filterbank(cfg, 256), mel_filterbank(cfg, 256, 1.0))
    centres = librosa.mel_frequencies(42, fmax=RATE / 2)[1:-1]
    band = lambda lm: centres[int(lm[5:-5].mean(0).argmax())]
    x = _tone(1000)
    for alpha in (0.85, 1.0, 1.2):
        assert abs(band(features(x, RATE, cfg, alpha)) - 1000 * alpha) < 120
    assert features(x, RATE, FeatureConfig(), 1.1).shape == features(x, RATE, FeatureConfig()).shape


def test_preemphasis_is_the_first_difference_and_takes_out_a_dc_offset():
    x = _tone(300)
    cfg = FeatureConfig("logmel", deltas=False, preemphasis=0.97)
    by_hand = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])                  # y[n] - a y[n-1]
    got, want = features(x, RATE, cfg), features(by_hand, RATE, FeatureConfig("logmel", deltas=False))
    np.testing.assert_allclose(got[2:], want[2:], rtol=0, atol=1e-3)          # frames past the first sample
    dc = np.full(RATE // 2, 0.2, dtype=np.float32)                            # a DC offset, as one FSDD voice has
    plain = features(dc, RATE, FeatureConfig("logmel", deltas=False))[2:-2, 0]
    np.testing.assert_allclose(plain - features(dc, RATE, cfg)[2:-2, 0], -2 * np.log(1 - 0.97), atol=0.01)
    for bad in (-0.1, 1.0):
        with pytest.raises(ConfigError, match="preemphasis: expected a coefficient in"):
            FeatureConfig(preemphasis=bad)


def test_normaliser():
    rng = np.random.default_rng(0)
    feats = [rng.standard_normal((50, 4)) * 3 + 7 for _ in range(4)]
    n = Normaliser.fit(feats)
    z = np.concatenate([n(f) for f in feats])
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-4)
    per = Normaliser.fit(feats, per_utterance=True)
    np.testing.assert_allclose(per(feats[0]).mean(0), 0, atol=1e-5)
    with pytest.raises(ConfigError, match="expected 4 dimensions"):
        n(np.zeros((3, 5)))


def test_augmentation():
    rng = np.random.default_rng(0)
    x = _tone(500, 2.0)
    noisy = add_noise(x, 10.0, rng)
    snr = 10 * np.log10(np.mean(x.astype(float) ** 2) / np.mean((noisy - x).astype(float) ** 2))
    assert abs(snr - 10.0) < 0.3
    fast = change_speed(x, 1.25)
    assert len(fast) == round(len(x) / 1.25)
    crossings = lambda s: np.count_nonzero(np.diff(np.signbit(s)))
    assert crossings(fast) / len(fast) == pytest.approx(1.25 * crossings(x) / len(x), rel=0.02)
    f = rng.standard_normal((100, 20)) + 5
    g = spec_augment(f, rng, time_masks=2, time_width=10, freq_masks=2, freq_width=5)
    zero_rows, zero_cols = (g == 0).all(1).sum(), (g == 0).all(0).sum()
    assert zero_rows <= 20 and zero_cols <= 10 and np.all((g == f) | (g == 0))


def test_fsdd_names_and_connected_digits(tmp_path):
    for name in ["3_ann_0.wav", "5_ann_1.wav", "7_bo_12.wav", "notes.txt", "x_ann_1.wav"]:
        _write(tmp_path / name, (_tone(300, 0.2) * 30000).astype(np.int16)) if name.endswith(".wav") else (tmp_path / name).write_text("")
    recs = fsdd_recordings(tmp_path)
    assert [(r.digit, r.speaker, r.take) for r in recs] == [(3, "ann", 0), (5, "ann", 1), (7, "bo", 12)]
    plans = connected_digits(recs, 20, seed=4)
    assert plans == connected_digits(recs, 20, seed=4)                        # the same set for a seed
    for parts, _ in plans:
        assert 3 <= len(parts) <= 7 and len({r.speaker for r in parts}) == 1
    parts = [read_wav(r.path)[0] for r in plans[0][0]]
    u = join_digits(parts, RATE, np.random.default_rng(plans[0][1]))
    gaps = len(u) - sum(len(p) for p in parts)
    assert (len(parts) + 1) * 50 * 8 <= gaps <= (len(parts) + 1) * 300 * 8
    with pytest.raises(DataError, match="no recordings named"):
        fsdd_recordings(tmp_path / "..")
