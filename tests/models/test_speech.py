"""The CTC acoustic model: float64 finite differences through stacking, the BiLSTM, the dense
layer, log-softmax and CTC; frame stacking; batches and transcription."""

import numpy as np
import pytest

from rnnlab.data.audio import FeatureConfig, Normaliser
from rnnlab.errors import ConfigError
from rnnlab.models import RecurrentConfig, SpeechConfig, SpeechRecognizer
from rnnlab.models.speech import stack_frames
from tests.helpers import ctc_brute_log_likelihood, gradcheck_model


def _model(stack=2, cell="lstm", dropout=0.2):
    fc = FeatureConfig("logmel", n_mels=3, deltas=False)
    cfg = SpeechConfig(["a", "b", "c"], fc, Normaliser([0.5] * 3, [2.0] * 3), RecurrentConfig(cell, 3, 2, 0.0, True),
                       stack=stack, dropout=dropout)
    return SpeechRecognizer(cfg, dtype=np.float64, rng=0)


def test_stack_frames():
    x = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    s, lengths = stack_frames(x, np.array([5, 3]), 2)
    assert s.shape == (3, 2, 6) and lengths.tolist() == [3, 2]
    np.testing.assert_array_equal(s[1, 0], np.r_[x[2, 0], x[3, 0]])
    np.testing.assert_array_equal(s[2, 1], np.r_[x[4, 1], np.zeros(3)])


@pytest.mark.parametrize("stack, cell", [(1, "lstm"), (2, "gru")])
def test_gradcheck(stack, cell):
    m = _model(stack, cell)
    rng = np.random.default_rng(0)
    feats = [rng.standard_normal((n, 3)) for n in (9, 6, 7)]
    batch = m.make_batch(feats, [["a", "b"], ["c"], ["b", "b"]])
    assert batch.targets.tolist() == [[1, 2], [3, 0], [2, 2]] and batch.target_lengths.tolist() == [2, 1, 2]
    np.testing.assert_allclose(m.make_batch([feats[0]]).x[0, 0, :3], (feats[0][0] - 0.5) / 2)
    gradcheck_model(m, batch)


def test_transcribe_and_bad_labels():
    m = _model()
    rng = np.random.default_rng(1)
    feats = [rng.standard_normal((n, 3)) for n in (9, 4)]
    for beam in (1, 4):
        out = m.transcribe(feats, beam=beam)
        assert len(out) == 2 and all(set(o) <= {"a", "b", "c"} for o in out)
    assert m.training                                     # transcribe leaves the mode as it was
    with pytest.raises(ConfigError, match=r"labels: \['z'\] are not among"):
        m.make_batch(feats, [["z"], []])
    with pytest.raises(ConfigError, match="labels: expected distinct"):
        SpeechConfig(["a", "a"])
    assert SpeechRecognizer.parameter_floor(m.config()) <= m.num_parameters()
    assert SpeechRecognizer.from_config(m.config()).cfg == m.cfg


def test_log_likelihood_sums_every_alignment_and_decode_names_labels():
    m = _model(stack=1, dropout=0.0)
    rng = np.random.default_rng(2)
    feats = [rng.standard_normal((n, 3)) for n in (5, 4, 3)]
    lp, lengths = m.frame_log_probs(feats)
    assert lp.shape == (5, 3, 4) and lengths.tolist() == [5, 4, 3]
    labels = [["a", "b", "b"], ["c"], ["a", "a"]]                       # a repeat, one label, T = 2S - 1
    got = m.log_likelihood(lp, lengths, labels)
    want = [ctc_brute_log_likelihood(lp[:n, b], [m.cfg.labels.index(x) + 1 for x in labels[b]])
            for b, n in enumerate(lengths)]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert m.log_likelihood(lp, lengths, [["a"] * 4, [], ["b"]])[0] == -np.inf   # 4 repeats need 7 frames
    assert m.decode(lp, lengths) == m.transcribe(feats)
