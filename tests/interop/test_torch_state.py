"""PyTorch weights in and out: round trips through dicts, .safetensors and .pt files."""

import numpy as np
import pytest

import rnnlab
from rnnlab.data import Vocab
from rnnlab.interop.torch_state import (InteropError, load_model_state, load_state, model_state,
                                        network_from_state, save_state)
from rnnlab.models import LanguageModel, LanguageModelConfig, RecurrentConfig

torch = pytest.importorskip("torch")
nn = torch.nn

CONFIGS = [("RNN", dict(nonlinearity="relu")), ("RNN", dict(num_layers=2, bidirectional=True)),
           ("LSTM", dict()), ("LSTM", dict(proj_size=2, num_layers=2, bidirectional=True)),
           ("LSTM", dict(num_layers=3, bias=False)), ("GRU", dict(bidirectional=True)),
           ("GRU", dict(num_layers=2))]


def run_torch(tm, x, lengths):
    packed = nn.utils.rnn.pack_padded_sequence(torch.tensor(x), torch.tensor(lengths), enforce_sorted=False)
    out, st = tm(packed)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])
    st = st if isinstance(st, tuple) else (st,)
    return [out.detach().numpy()] + [s.detach().numpy() for s in st]


def run_ours(m, x, lengths):
    y, st = m(x, lengths=lengths)
    return [y] + list(st if isinstance(st, tuple) else (st,))


@pytest.mark.parametrize("suffix", ["dict", ".safetensors", ".pt"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind,kw", CONFIGS, ids=[f"{k}-{'-'.join(f'{a}={b}' for a, b in kw.items())}" for k, kw in CONFIGS])
def test_torch_to_rnnlab_to_torch(kind, kw, dtype, suffix, tmp_path):
    torch.manual_seed(0)
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    tm = getattr(nn, kind)(3, 4, **kw).to(tdt)
    x = np.random.default_rng(0).standard_normal((5, 3, 3)).astype(dtype)
    lengths = np.array([5, 2, 4])
    # torch -> rnnlab: through the chosen container
    if suffix == "dict":
        src = tm.state_dict()
    else:
        src = tmp_path / f"w{suffix}"
        if suffix == ".pt":
            torch.save(tm.state_dict(), src)
        else:
            save_state({k: v.numpy() for k, v in tm.state_dict().items()}, src)
    m = network_from_state(src, dtype=dtype, nonlinearity=kw.get("nonlinearity", "tanh"))
    tol = dict(rtol=0, atol=1e-12) if dtype == np.float64 else dict(rtol=0, atol=1e-6)
    for a, b in zip(run_ours(m, x, lengths), run_torch(tm, x, lengths)):
        np.testing.assert_allclose(a, b, **tol)
    # rnnlab -> torch: a fresh torch module takes rnnlab's state dict, bit for bit
    out = tmp_path / f"back{'.pt' if suffix == 'dict' else suffix}"
    save_state(m.state_dict(), out)
    tm2 = getattr(nn, kind)(3, 4, **kw).to(tdt)
    tm2.load_state_dict({k: torch.from_numpy(v) for k, v in load_state(out).items()})
    for k, v in tm.state_dict().items():
        assert torch.equal(v, tm2.state_dict()[k]), k
    for a, b in zip(run_torch(tm2, x, lengths), run_ours(m, x, lengths)):
        np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind,kw", CONFIGS[1::2], ids=["rnn", "lstm-proj", "gru-bi"])
def test_rnnlab_to_torch_to_rnnlab(kind, kw, dtype, tmp_path):
    """Weights initialised by rnnlab survive torch and come back bit for bit."""
    m = getattr(rnnlab, kind)(3, 4, dtype=dtype, rng=3, **kw)
    save_state(m.state_dict(), tmp_path / "w.pt")
    tm = getattr(nn, kind)(3, 4, **kw).to(torch.float64 if dtype == np.float64 else torch.float32)
    tm.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    torch.save(tm.state_dict(), tmp_path / "t.pt")
    back = network_from_state(tmp_path / "t.pt", dtype=dtype, nonlinearity="tanh" if kind == "RNN" else None)
    x = np.random.default_rng(1).standard_normal((6, 2, 3)).astype(dtype)
    for a, b in zip(run_ours(back, x, np.array([6, 3])), run_ours(m, x, np.array([6, 3]))):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(run_torch(tm, x, np.array([6, 3])), run_ours(m, x, np.array([6, 3]))):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 if dtype == np.float64 else 1e-6)


class WordLM(nn.Module):
    """PyTorch's word_language_model layout: encoder / rnn / decoder."""

    def __init__(self, V, E, H):
        super().__init__()
        self.encoder = nn.Embedding(V, E)
        self.rnn = nn.LSTM(E, H, 2)
        self.decoder = nn.Linear(H, V)

    def forward(self, ids):
        out, _ = self.rnn(self.encoder(ids))
        return self.decoder(out)


def test_whole_torch_model_maps_by_usual_names_and_back():
    torch.manual_seed(0)
    tm = WordLM(6, 4, 5).double()
    ours = LanguageModel(Vocab(list("abcdef")), LanguageModelConfig("char", 4, RecurrentConfig("lstm", 5, 2)),
                         dtype=np.float64, rng=1)
    load_model_state(ours, tm.state_dict())
    ids = np.random.default_rng(0).integers(0, 6, (7, 2))
    ours.eval()
    logits, _ = ours.logits(ids, keep_cache=False)
    np.testing.assert_allclose(logits, tm(torch.tensor(ids)).detach().numpy(), rtol=0, atol=1e-12)
    back = model_state(ours, {"embedding": "encoder", "head": "decoder"})
    tm2 = WordLM(6, 4, 5).double()
    tm2.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()})
    assert all(torch.equal(v, tm2.state_dict()[k]) for k, v in tm.state_dict().items())


def test_unmatched_keys_are_listed():
    ours = LanguageModel(Vocab(list("ab")), LanguageModelConfig("char", 2, RecurrentConfig("gru", 3)), rng=0)
    state = dict(model_state(ours))
    state["attention.weight"] = np.zeros(3)
    del state["head.bias"]
    with pytest.raises(InteropError, match=r"did not match: \['attention.weight'\].*no value: \['head.bias'\]"):
        load_model_state(ours, state)
    state = model_state(ours)
    state["head.weight"] = np.zeros((5, 5))
    with pytest.raises(InteropError, match=r"head.weight: \(5, 5\) != \(2, 3\)"):
        load_model_state(ours, state)


def test_bad_files_and_dicts(tmp_path):
    with pytest.raises(InteropError, match="not those of torch.nn.RNN/LSTM/GRU"):
        network_from_state({"fc.weight": np.zeros((2, 2))})
    with pytest.raises(InteropError, match="not 1, 3 or 4 times"):
        network_from_state({"weight_ih_l0": np.zeros((10, 3)), "weight_hh_l0": np.zeros((10, 5))})
    (tmp_path / "x.pt").write_bytes(b"not a torch file")
    with pytest.raises(InteropError, match="not a loadable weights-only torch file"):
        load_state(tmp_path / "x.pt")
    with pytest.raises(InteropError, match="expected a .safetensors, .pt or .pth file"):
        load_state(tmp_path / "x.pt".replace(".pt", ".bin")) if (tmp_path / "x.bin").write_bytes(b"1") else None


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")   # torch's, on this file
def test_pickled_code_in_a_pt_file_does_not_run(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"weight_ih_l0": Evil()}))
    with pytest.raises(InteropError):
        load_state(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


def test_an_rnn_state_dict_that_cannot_tell_its_nonlinearity_warns():
    sd = nn.RNN(3, 4, nonlinearity="relu").state_dict()
    with pytest.warns(UserWarning, match="nonlinearity='relu'"):
        assert network_from_state(sd).cell.nonlinearity == "tanh"
    assert network_from_state(sd, nonlinearity="relu").cell.nonlinearity == "relu"


def test_hostile_torch_files_are_refused_before_building(tmp_path):
    import tracemalloc
    sd = nn.GRU(3, 4).state_dict()
    cases = [({**sd, "weight_ih_l99999": sd["weight_ih_l0"]}, "needs keys it lacks"),
             ({**sd, "weight_ih_l0": sd["weight_ih_l0"].bfloat16()}, "bfloat16"),
             ({**sd, "weight_ih_l0": sd["weight_ih_l0"] * float("nan")}, "NaN"),
             ({**sd, "weight_ih_l0": sd["weight_ih_l0"][0]}, "2-D"),
             ({**sd, **{f"junk{i}": torch.zeros(1) for i in range(2_000)}}, "more")]   # 20 kB of names unless cut
    for i, (state, pattern) in enumerate(cases):
        torch.save(state, tmp_path / f"{i}.pt")
        tracemalloc.start()
        try:
            with pytest.raises(rnnlab.RnnlabError, match=pattern) as info:
                network_from_state(tmp_path / f"{i}.pt")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        # refused before anything is built: no more memory than reading the file takes
        assert peak < 64 * 2 ** 20 and len(str(info.value)) < 600
