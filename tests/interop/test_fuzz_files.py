"""Mutated model files: every failure is a clear rnnlab error, never a crash, a hang or a
traceback from deep inside a library."""

import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnlab.data import Vocab
from rnnlab.errors import RnnlabError
from rnnlab.interop.torch_state import network_from_state, save_state
from rnnlab.models import LanguageModel, LanguageModelConfig, RecurrentConfig
from rnnlab.recipes.common import load_model
from rnnlab.train.checkpoint import save_checkpoint

import rnnlab


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    m = LanguageModel(Vocab(list("abc")), LanguageModelConfig("char", 2, RecurrentConfig("lstm", 3)), rng=0)
    path = tmp_path_factory.mktemp("ck") / "m.safetensors"
    save_checkpoint(path, {f"model.{k}": a for k, a in m.named_parameters()},
                    {"kind": m.kind, "config": m.config()})
    return path.read_bytes()


def split(data: bytes):
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def join(header: dict, body: bytes) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + body


def must_fail_cleanly(tmp_path, data: bytes, loader=load_model):
    path = tmp_path / "f.safetensors"
    path.write_bytes(data)
    try:
        loader(path)
    except RnnlabError:
        return
    # a mutation may leave a loadable file (e.g. a changed weight value): that is fine too


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(data=st.data())
def test_byte_flips_and_truncations(tmp_path, checkpoint_bytes, data):
    b = bytearray(checkpoint_bytes)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(b) - 1))
        b[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(b)))
    must_fail_cleanly(tmp_path, bytes(b[:cut]))


@SETTINGS
@given(data=st.data())
def test_hostile_headers(tmp_path, checkpoint_bytes, data):
    header, body = split(checkpoint_bytes)
    names = sorted(k for k in header if k != "__metadata__")
    name = data.draw(st.sampled_from(names))
    entry = header[name]
    what = data.draw(st.sampled_from(["dtype", "shape", "offsets", "huge", "meta", "kind", "config"]))
    if what == "dtype":
        entry["dtype"] = data.draw(st.sampled_from(["I8", "U8", "BOOL", "F16", "I64", "XX"]))
    elif what == "shape":
        entry["shape"] = data.draw(st.lists(st.integers(0, 50), max_size=4))
    elif what == "offsets":
        entry["data_offsets"] = [data.draw(st.integers(0, 10**6)), data.draw(st.integers(0, 10**6))]
    elif what == "huge":
        entry["shape"] = [2**40, 2**40]
        entry["data_offsets"] = [0, 2**62]
    else:
        meta = json.loads(header["__metadata__"]["rnnlab"])
        if what == "kind":
            meta["kind"] = data.draw(st.sampled_from(["tagger", "x", "", "language_model"]))
        elif what == "config":
            meta["config"]["model"]["rnn"]["hidden_size"] = data.draw(st.sampled_from([-1, 0, 7, "7", None, 10**9]))
        else:
            meta = data.draw(st.sampled_from([[], "x", {"config": {}}, None]))
        header["__metadata__"]["rnnlab"] = json.dumps(meta)
    must_fail_cleanly(tmp_path, join(header, body))


def test_huge_declared_sizes_fail_fast(tmp_path, checkpoint_bytes):
    header, body = split(checkpoint_bytes)
    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = [2**40, 2**40]
    header[name]["data_offsets"] = [0, 2**62]
    path = tmp_path / "huge.safetensors"
    path.write_bytes(join(header, body))
    with pytest.raises(RnnlabError):
        load_model(path)


@pytest.mark.parametrize("size", [10**9, 10**6, -3])
def test_huge_sizes_in_the_config_are_refused_before_building(tmp_path, checkpoint_bytes, size):
    header, body = split(checkpoint_bytes)
    meta = json.loads(header["__metadata__"]["rnnlab"])
    meta["config"]["model"]["rnn"]["hidden_size"] = size
    header["__metadata__"]["rnnlab"] = json.dumps(meta)
    path = tmp_path / "big.safetensors"
    path.write_bytes(join(header, body))
    with pytest.raises(RnnlabError, match="hidden_size|implies at least"):
        load_model(path)


HOSTILE_LOADER = """
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (1536 * 2**20, 1536 * 2**20))
from rnnlab.errors import RnnlabError
from rnnlab.recipes.common import load_model
for path in sys.argv[1:]:
    t0 = time.perf_counter()
    try:
        load_model(path)
        print(path, "LOADED")
    except RnnlabError as exc:
        msg = str(exc)
        print(path, "refused", round(time.perf_counter() - t0, 2), len(msg), "\\n" in msg)
"""


def _hostile_checkpoints(tmp_path, checkpoint_bytes) -> list:
    """The files of issue 33: each made the loader allocate gigabytes or crash."""
    header, body = split(checkpoint_bytes)
    base = json.loads(header["__metadata__"]["rnnlab"])

    def write(name, meta=None, extra=None):
        h = json.loads(json.dumps(header))
        if meta is not None:
            h["__metadata__"]["rnnlab"] = meta if isinstance(meta, str) else json.dumps(meta)
        data = body
        if extra is not None:                              # one more tensor, after the others
            h[extra[0]] = {"dtype": "F32", "shape": extra[1], "data_offsets": [len(body), len(body) + extra[2]]}
            data = body + bytes(extra[2])
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(join(h, data))
        return str(path)

    def config(**rnn):
        meta = json.loads(json.dumps(base))
        meta["config"]["model"]["rnn"].update(rnn)
        return meta
    nested = '{"kind": "language_model", "config": ' + "[" * 100_000 + "]" * 100_000 + "}"
    return [
        write("layers_zero_tensor", config(num_layers=10**6), ("model.zero", [10**9, 0], 0)),
        write("wide_20kb", config(hidden_size=5000), ("model.pad", [5000], 20_000)),
        write("layers", config(num_layers=10**6)),
        write("nested", nested),
        write("kind_list", dict(base, kind=["language_model"])),
        write("rnn_null", {**base, "config": {**base["config"], "model": {**base["config"]["model"], "rnn": None}}}),
        write("vocab_huge", {**base, "config": {**base["config"], "vocab": [str(i) for i in range(10**5)]}}),
    ]


def test_hostile_files_are_refused_in_bounded_memory_and_time(tmp_path, checkpoint_bytes):
    """Under a 1.5 GB address-space limit every hostile file is refused with one short line,
    quickly: nothing it declares is allocated before it is checked against the file."""
    import subprocess
    import sys
    paths = _hostile_checkpoints(tmp_path, checkpoint_bytes)
    res = subprocess.run([sys.executable, "-c", HOSTILE_LOADER, *paths], capture_output=True, text=True,
                         timeout=120, env={**__import__("os").environ, "OPENBLAS_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.splitlines()
    assert len(lines) == len(paths), res.stdout
    for line in lines:
        path, verdict, seconds, length, multiline = line.split()
        assert verdict == "refused", line
        assert float(seconds) < 5 and int(length) < 400 and multiline == "False", line


def test_shapes_that_disagree_with_the_config(tmp_path):
    m = LanguageModel(Vocab(list("abc")), LanguageModelConfig("char", 2, RecurrentConfig("lstm", 3)), rng=0)
    arrays = {f"model.{k}": a for k, a in m.named_parameters()}
    arrays["model.rnn.weight_hh_l0"] = np.zeros((12, 4), np.float32)
    save_checkpoint(tmp_path / "s.safetensors", arrays, {"kind": m.kind, "config": m.config()})
    with pytest.raises(RnnlabError, match=r"rnn.weight_hh_l0.*shape \(12, 4\)"):
        load_model(tmp_path / "s.safetensors")


@pytest.fixture(scope="module")
def state_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("st") / "w.safetensors"
    save_state(rnnlab.GRU(3, 4, num_layers=2, rng=0).state_dict(), path)
    return path.read_bytes()


@SETTINGS
@given(data=st.data())
def test_mutated_torch_state_files(tmp_path, state_bytes, data):
    b = bytearray(state_bytes)
    for _ in range(data.draw(st.integers(1, 6))):
        b[data.draw(st.integers(0, len(b) - 1))] = data.draw(st.integers(0, 255))
    must_fail_cleanly(tmp_path, bytes(b[:data.draw(st.integers(0, len(b)))]), network_from_state)
