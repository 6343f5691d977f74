"""Parity with torch.nn.RNN/LSTM/GRU (torch==2.13.0): outputs, final states, every gradient."""

import contextlib

import numpy as np
import pytest

import rnnlab
from rnnlab import backends

torch = pytest.importorskip("torch", reason="torch==2.13.0 is a test extra (see README)")
nn = torch.nn

TOL = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-5)}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def close(ours, theirs, dtype, what):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    tol = dict(TOL[dtype])
    if dtype == np.float32:                    # relative to the array's scale
        tol["atol"] = 1e-5 * float(np.abs(theirs).max(initial=1e-30))
    np.testing.assert_allclose(ours, theirs, err_msg=what, **tol)


def twins(kind, D, H, dtype, seed=0, **kw):
    torch.manual_seed(seed)
    tm = getattr(nn, kind)(D, H, **kw).to(TORCH_DTYPE[dtype])
    ours = getattr(rnnlab, kind)(D, H, dtype=dtype, rng=0, **kw)
    ours.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, ours


CASES = [
    ("RNN", dict()),
    ("RNN", dict(nonlinearity="relu", num_layers=2)),
    ("RNN", dict(bidirectional=True, num_layers=2, bias=False)),
    ("LSTM", dict()),
    ("LSTM", dict(num_layers=3, bidirectional=True)),
    ("LSTM", dict(proj_size=3)),
    ("LSTM", dict(proj_size=3, num_layers=2, bidirectional=True)),
    ("LSTM", dict(batch_first=True, num_layers=2)),
    ("GRU", dict()),
    ("GRU", dict(num_layers=2, bidirectional=True)),
    ("GRU", dict(bias=False, batch_first=True, bidirectional=True)),
]


def case_id(case):
    kind, kw = case
    return kind + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


LEVELS = [b for b in backends.LEVELS if b in ("reference", "numpy") or backends.numba_installed()]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("packed", [False, True], ids=["dense", "packed"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning")
def test_outputs_states_and_all_gradients(case, packed, dtype, level):
    """On every backend (rnnlab.backends): at "packed", inside shared_pool() and at H = 64,
    where the packed loops take float32 (the plan says which loops ran)."""
    with rnnlab.backend(level), (rnnlab.threads.shared_pool() if level == "packed"
                                 else contextlib.nullcontext()):
        _outputs_states_and_all_gradients(case, packed, dtype, H=64 if level == "packed" else 6)


def _outputs_states_and_all_gradients(case, packed, dtype, H):
    kind, kw = case
    T, B, D = 7, 4, 5
    tm, m = twins(kind, D, H, dtype, **kw)
    rng = np.random.default_rng(1)
    bf = kw.get("batch_first", False)
    x = rng.standard_normal((B, T, D) if bf else (T, B, D)).astype(dtype)
    LD = m.num_layers * m.num_directions
    sizes = m.cell.carry_sizes()
    hx = tuple(rng.standard_normal((LD, B, s)).astype(dtype) for s in sizes)
    lengths = np.array([7, 3, 1, 5]) if packed else None

    xt = torch.tensor(x, requires_grad=True)
    hxt = tuple(torch.tensor(h, requires_grad=True) for h in hx)
    inp = (nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=bf,
                                             enforce_sorted=False) if packed else xt)
    out_t, st_t = tm(inp, hxt if len(hxt) == 2 else hxt[0])
    if packed:
        out_t, _ = nn.utils.rnn.pad_packed_sequence(out_t, batch_first=bf, total_length=T)
    st_t = st_t if isinstance(st_t, tuple) else (st_t,)

    if rnnlab.backends.current() == "packed" and dtype == np.float32 and backends.family(m.cell):
        assert m.plan(x).forward == "packed"                  # not a test of the fallback
    out, st = m(x, hx if len(hx) == 2 else hx[0], lengths=lengths)
    st = st if isinstance(st, tuple) else (st,)
    close(out, out_t, dtype, "output")
    for k, (a, b) in enumerate(zip(st, st_t)):
        close(a, b, dtype, f"final state {k}")

    g_out = rng.standard_normal(out.shape).astype(dtype)
    g_st = [rng.standard_normal(s.shape).astype(dtype) for s in st]
    loss = (out_t * torch.tensor(g_out)).sum() + sum(
        (s * torch.tensor(g)).sum() for s, g in zip(st_t, g_st))
    loss.backward()
    dx, dhx = m.backward(g_out, tuple(g_st) if len(g_st) == 2 else g_st[0])
    dhx = dhx if isinstance(dhx, tuple) else (dhx,)
    close(dx, xt.grad, dtype, "dx")
    for k, (a, b) in enumerate(zip(dhx, hxt)):
        close(a, b.grad, dtype, f"d initial state {k}")
    grads = m.grads
    assert set(grads) == {k for k, _ in tm.named_parameters()}
    for k, p in tm.named_parameters():
        close(grads[k], p.grad, dtype, k)


@pytest.mark.parametrize("kind,kw", [("RNNCell", dict(nonlinearity="relu")), ("LSTMCell", dict()),
                                     ("GRUCell", dict()), ("GRUCell", dict(bias=False))])
def test_single_step_cells(kind, kw):
    D, H, B = 3, 5, 2
    torch.manual_seed(0)
    tc = getattr(nn, kind)(D, H, **kw).double()
    m = getattr(rnnlab, kind)(D, H, dtype=np.float64, **kw)
    sd = {k: v.detach().numpy() for k, v in tc.state_dict().items()}
    assert set(sd) == set(m.state_dict())
    m.load_state_dict(sd)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, D))
    hx = tuple(rng.standard_normal((B, H)) for _ in range(2 if kind == "LSTMCell" else 1))
    xt = torch.tensor(x, requires_grad=True)
    hxt = tuple(torch.tensor(h, requires_grad=True) for h in hx)
    new_t = tc(xt, hxt if len(hxt) == 2 else hxt[0])
    new_t = new_t if isinstance(new_t, tuple) else (new_t,)
    new = m(x, hx if len(hx) == 2 else hx[0])
    new = new if isinstance(new, tuple) else (new,)
    gs = [rng.standard_normal((B, H)) for _ in new]
    sum((a * torch.tensor(g)).sum() for a, g in zip(new_t, gs)).backward()
    dx, dprev = m.backward(tuple(gs) if len(gs) == 2 else gs[0])
    dprev = dprev if isinstance(dprev, tuple) else (dprev,)
    for a, b in zip(new, new_t):
        close(a, b, np.float64, "new state")
    close(dx, xt.grad, np.float64, "dx")
    for a, b in zip(dprev, hxt):
        close(a, b.grad, np.float64, "d previous state")
    for k, p in tc.named_parameters():
        close(m.grads[k], p.grad, np.float64, k)


def test_state_dict_keys_and_shapes_match_torch():
    for kind, kw in CASES:
        tm, m = twins(kind, 5, 6, np.float32, **kw)
        ours = m.state_dict()
        theirs = tm.state_dict()
        assert list(ours) == list(theirs), kind
        assert all(ours[k].shape == tuple(v.shape) for k, v in theirs.items())


def test_load_state_dict_takes_torch_tensors_directly():
    tm, m = twins("GRU", 3, 4, np.float64)
    m2 = rnnlab.GRU(3, 4, dtype=np.float64, rng=5)
    m2.load_state_dict(tm.state_dict())
    for k, v in m2.state_dict().items():
        np.testing.assert_array_equal(v, tm.state_dict()[k].numpy())
