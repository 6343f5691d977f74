"""Speech end to end on synthetic recordings named the FSDD way: three "digits" as tones of
different pitch, three speakers; a BiGRU with CTC learns them isolated and connected, evaluate
reports error rates both ways, transcribe reads WAV files; the CLI commands and bad inputs."""

import json
import wave

import numpy as np
import pytest
from click.testing import CliRunner

from rnnlab.cli import cli
from rnnlab.data import DataError
from rnnlab.recipes.common import load_model
from rnnlab.data.audio import FeatureConfig, Normaliser, features, read_wav
from rnnlab.models import RecurrentConfig, SpeechConfig, SpeechRecognizer
from rnnlab.errors import ConfigError
from rnnlab.recipes.speech import (VTLN_WARPS, Augment, AudioBank, Utterance, connected_utterances, estimate_warp,
                                   evaluate_speech, evaluate_speech_ensemble, read_recordings, train_speech,
                                   transcribe, transcribe_ensemble)
from rnnlab.train import TrainConfig
from tests.helpers import ctc_brute_log_likelihood

pytest.importorskip("librosa")
RATE = 8000
PITCH = {0: 400.0, 1: 900.0, 2: 1800.0}


def _corpus(folder, takes=8, voices=(("ann", 1.0), ("bo", 1.06), ("cy", 0.95)), seed=0):
    """Each voice's digits: tones at PITCH times its shift, 0.25-0.35 s long."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for speaker, shift in voices:
        for digit, hz in PITCH.items():
            for take in range(takes):
                n = int(RATE * rng.uniform(0.25, 0.35))
                t = np.arange(n) / RATE
                x = 0.4 * np.sin(2 * np.pi * hz * shift * t) * np.hanning(n) + rng.normal(0, 0.01, n)
                with wave.open(str(folder / f"{digit}_{speaker}_{take}.wav"), "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(RATE)
                    w.writeframes((x * 32767).astype(np.int16).tobytes())
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return _corpus(tmp_path_factory.mktemp("speech") / "recordings")


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    tc = TrainConfig(epochs=15, lr=1e-2, seed=0)
    r = train_speech(corpus, tmp_path_factory.mktemp("run"), feature="logmel", n_mels=20, deltas=False,
                     cell="gru", hidden_size=32, num_layers=1, dropout=0.0, batch_size=8, stack=2,
                     augment=Augment(noise_snr=(25, 35), speed=(0.97, 1.03), spec_augment=True),
                     train_config=tc, progress=False)
    return load_model(r.best_checkpoint)[0]


def test_isolated_digits_learned_and_scored_joined_too(corpus, trained):
    model = trained
    scores = evaluate_speech(model, corpus, connected=40, seed=3)
    assert scores["connected_utterances"] == 40 and scores["isolated_utterances"] == 72
    assert scores["isolated_error_rate"] < 5 and scores["isolated_sequence_accuracy"] > 95
    assert 0 <= scores["connected_sequence_accuracy"] <= 100          # joined: scored, not trained on
    beam = evaluate_speech(model, corpus, connected=40, seed=3, beam=4)
    assert beam["isolated_error_rate"] < 5
    files = [corpus / "2_bo_3.wav", corpus / "0_cy_1.wav"]
    assert transcribe(model, files) == [["2"], ["0"]]
    for members in ([model], [model, model]):                           # one, and two of one: as one
        ensemble = evaluate_speech_ensemble(members, corpus, connected=40, seed=3)
        assert {k: v for k, v in ensemble.items() if k != "members"} == {
            k: v for k, v in scores.items() if not k.endswith("_loss")}
        assert ensemble["members"] == [scores] * len(members)


def test_vtln_finds_the_warp_that_brings_a_higher_voice_back(trained, tmp_path):
    # a new voice 1.3 times as high: "1" sounds where "2" did; a warp of about 1 / 1.3 undoes it
    dee = _corpus(tmp_path / "dee", takes=3, voices=(("dee", 1.3),), seed=5)
    paths = sorted(dee.iterdir())
    truth = [[p.name[0]] for p in paths]
    assert transcribe(trained, paths) != truth
    warp, scores = estimate_warp([trained], paths)
    assert list(scores) == list(VTLN_WARPS) and warp == max(scores, key=scores.get) and warp < 0.85
    lp, n = trained.frame_log_probs([features(*read_wav(p), trained.cfg.features) for p in paths])
    surest = trained.log_likelihood(lp, n, trained.decode(lp, n)).mean()   # unwarped: its own best paths
    assert np.isclose(scores[1.0], surest, rtol=1e-6) and scores[warp] > surest
    assert transcribe(trained, paths, vtln=True) == truth
    plain, adapted = (evaluate_speech(trained, dee, connected=10, vtln=v) for v in (False, True))
    assert adapted["vtln_warps"]["isolated"] == {"dee": warp} and "vtln_warps" not in plain
    assert set(adapted["vtln_warps"]["connected"]) == {"dee"}              # estimated on the joined ones
    assert adapted["isolated_error_rate"] == 0 < plain["isolated_error_rate"]
    two = evaluate_speech_ensemble([trained, trained], dee, connected=10, vtln=True)
    assert two["vtln_warps"] == adapted["vtln_warps"] and two["members"][1]["isolated_error_rate"] == 0
    with pytest.raises(ConfigError, match="warps: expected positive warp factors, got \\(0.0, 1.0\\)"):
        estimate_warp([trained], paths, warps=(0.0, 1.0))
    with pytest.raises(DataError, match="paths: expected one speaker's recordings, got none"):
        estimate_warp([trained], [])


def test_a_gain_scales_the_recordings_and_not_the_noise_between_them(corpus):
    bank = AudioBank()
    u = connected_utterances(read_recordings(corpus), 1, seed=3)[0]
    (y1, rate), (y2, _) = bank.signal(u), bank.signal(u, 2.0)
    parts = [bank(p)[0].astype(np.float64) for p in u.parts]
    assert len(y1) == len(y2) > sum(len(p) for p in parts)
    # y2 - y1 is the recordings once over: their energy; the first 50 ms are noise, unchanged
    np.testing.assert_allclose(np.sum((y2.astype(np.float64) - y1) ** 2), sum(np.sum(p ** 2) for p in parts), rtol=1e-5)
    np.testing.assert_array_equal(y2[:rate // 20], y1[:rate // 20])
    single = Utterance(u.parts[:1], u.labels[:1])
    np.testing.assert_allclose(bank.signal(single, 0.5)[0], 0.5 * bank.signal(single)[0], rtol=1e-6)


def test_reading_lists_transcripts_and_errors(corpus, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{corpus.name}/{d}_ann_0.wav\n" for d in PITCH))
    (tmp_path / corpus.name).symlink_to(corpus)
    assert [lab for _, lab in read_recordings(listing)] == [("0",), ("1",), ("2",)]
    tr = tmp_path / "t.tsv"
    tr.write_text("".join(f"{corpus.name}/{d}_ann_0.wav\tx y\n" for d in PITCH))
    assert [lab for _, lab in read_recordings(listing, tr)] == [("x", "y")] * 3
    tr.write_text(f"{corpus.name}/0_ann_0.wav\tx\n")
    with pytest.raises(DataError, match="no transcript for"):
        read_recordings(listing, tr)
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "hello.wav").write_bytes((corpus / "0_ann_0.wav").read_bytes())
    with pytest.raises(DataError, match="not named .digit._.speaker._.take..wav; give --transcripts"):
        read_recordings(odd)
    with pytest.raises(DataError, match="held_out_speaker: no recordings of 'zed'"):
        train_speech(corpus, tmp_path / "r", held_out_speaker="zed", progress=False)


def test_cli(corpus, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["train-speech", str(corpus), "--run-dir", str(tmp_path / "s"), "--epochs", "1",
                              "--hidden-size", "8", "--num-layers", "1", "--features", "logmel", "--n-mels", "10",
                              "--held-out-speaker", "cy", "--connected", "8", "--preemphasis", "0.97",
                              "--gain-db", "-10,10", "--vtlp", "0.9,1.1", "--quiet"])
    assert res.exit_code == 0, res.output
    ckpt = str(tmp_path / "s/best.safetensors")
    assert load_model(ckpt)[0].cfg.features.preemphasis == 0.97             # transcribe filters as training did
    res = runner.invoke(cli, ["transcribe", ckpt, str(corpus / "1_cy_0.wav"), "--beam", "3"])
    assert res.exit_code == 0 and res.output.startswith(str(corpus / "1_cy_0.wav") + "\t")
    res = runner.invoke(cli, ["evaluate", ckpt, str(corpus)])
    assert res.exit_code == 0 and {"isolated_error_rate", "connected_sequence_accuracy"} <= set(json.loads(res.output))
    res = runner.invoke(cli, ["evaluate", ckpt, str(corpus), "--vtln"])
    assert res.exit_code == 0 and set(json.loads(res.output)["vtln_warps"]["connected"]) == {"ann", "bo", "cy"}
    res = runner.invoke(cli, ["transcribe", ckpt, str(corpus / "1_cy_0.wav"), str(corpus / "2_cy_0.wav"), "--vtln"])
    assert res.exit_code == 0 and len(res.output.splitlines()) == 2
    odd = tmp_path / "odd"                                    # a new voice, its files named freely
    odd.mkdir()
    for d in PITCH:
        (odd / f"take{d}.wav").write_bytes((corpus / f"{d}_cy_1.wav").read_bytes())
    res = runner.invoke(cli, ["evaluate", ckpt, str(odd)])
    assert res.exit_code == 2 and "give --transcripts" in res.output and "Traceback" not in res.output
    (tmp_path / "odd.tsv").write_text("".join(f"take{d}.wav\t{d}\n" for d in PITCH))
    res = runner.invoke(cli, ["evaluate", ckpt, str(odd), "--transcripts", str(tmp_path / "odd.tsv")])
    scores = json.loads(res.output)
    assert res.exit_code == 0 and scores["isolated_utterances"] == 3 and "connected_utterances" not in scores
    res = runner.invoke(cli, ["train-speech", str(corpus), "--speed", "fast", "--run-dir", str(tmp_path / "x")])
    assert res.exit_code == 2 and "--speed" in res.output and "LOW,HIGH" in res.output
    res = runner.invoke(cli, ["train-speech", str(corpus), "--gain-db", "5,-5", "--run-dir", str(tmp_path / "x")])
    assert res.exit_code == 2 and "gain_db: expected (low, high), got (5.0, -5.0)" in res.output
    res = runner.invoke(cli, ["train-speech", str(corpus), "--vtlp", "0,1.1", "--run-dir", str(tmp_path / "x")])
    assert res.exit_code == 2 and "vtlp: expected positive factors, got (0.0, 1.1)" in res.output
    res = runner.invoke(cli, ["train-speech", str(corpus), "--preemphasis", "1.5", "--run-dir", str(tmp_path / "x")])
    assert res.exit_code == 2 and "preemphasis: expected a coefficient in [0, 1), got 1.5" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(cli, ["transcribe", ckpt, str(tmp_path / "missing.wav")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = runner.invoke(cli, ["predict", ckpt], input="x\n")
    assert res.exit_code == 2 and "use `rnnlab transcribe`" in res.output


def _random_member(seed, labels=("a", "b", "c")):
    fc = FeatureConfig("logmel", n_mels=3, deltas=False)
    cfg = SpeechConfig(list(labels), fc, Normaliser([0.0] * 3, [1.0] * 3), RecurrentConfig("gru", 6, 1, 0.0, True),
                       stack=1, dropout=0.0)
    return SpeechRecognizer(cfg, dtype=np.float64, rng=seed)


def test_an_ensemble_picks_the_proposal_all_members_find_likeliest():
    members = [_random_member(s) for s in (0, 1, 2)]
    rng = np.random.default_rng(4)
    feats = [rng.standard_normal((n, 3)) * 3 for n in (5, 5, 4, 5, 3, 4, 5, 5, 4, 5, 5, 4)]
    got = transcribe_ensemble(members, [feats] * 3)
    own = [m.transcribe(feats) for m in members]
    lps = [m.frame_log_probs(feats)[0] for m in members]
    index = {lab: i + 1 for i, lab in enumerate(members[0].cfg.labels)}

    def product(b, labels):                           # the members' summed log-likelihoods, by brute force
        ids = [index[x] for x in labels]
        return sum(ctc_brute_log_likelihood(lp[:len(feats[b]), b], ids) for lp in lps)

    differs = 0
    for b in range(len(feats)):
        scores = [product(b, o[b]) for o in own]
        assert got[b] in [o[b] for o in own] and np.isclose(product(b, got[b]), max(scores), rtol=1e-9)
        differs += got[b] != own[0][b]
    assert differs                                    # not just the first member's decoding
    assert transcribe_ensemble(members[:1], [feats]) == own[0]
    with pytest.raises(DataError, match="members must share their labels"):
        transcribe_ensemble([members[0], _random_member(0, ("a", "b", "d"))], [feats] * 2)
    with pytest.raises(DataError, match="one list of features per member"):
        transcribe_ensemble(members, [feats])
