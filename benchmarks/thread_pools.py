"""Probe for issue 6: NumPy's OpenBLAS and rnnlab's packed LSTM loops (numba's threads) in
one process, with their pools apart or shared (kernels._pool), interleaved.

After a product OpenBLAS's workers keep spinning (OpenBLAS's default: 2^28 cycles), numba's
after a parallel region too; on two cores two pools slow each other. kernels._pool hands
OpenBLAS's parallel jobs to numba's threads, so one pool runs both. This prints, for a
recurrent layer alone and with a Dense head over its outputs (a product on OpenBLAS after
every call), inference and training, the ms of:
- `apart`: the pools apart, OpenBLAS on its two threads: the BLAS loop (the packed path would
  fight OpenBLAS's pool; rnnlab's default before the pool was shared);
- `packed apart`: the packed path forced on beside OpenBLAS's own two threads;
- `shared`: one pool, rnnlab's default: the packed path where backends.choose takes it;
- `shared, BLAS loop`: one pool, the packed path off (what sharing costs the BLAS loops);
- `torch`: torch.nn (+ a Linear head) on two threads, if installed.

    python benchmarks/thread_pools.py [--kinds LSTM,GRU] [--hidden 64,256] [--batch 32,128]

Needs numba and threadpoolctl (dependencies of rnnlab).
"""

import argparse
import time

import numpy as np

from rnnlab.kernels import _packed, _pool
from rnnlab.recipes.bench import KINDS
from rnnlab.threads import shared_pool

POOL = shared_pool()             # this script is its own process: the pools are its to switch
POOL.__enter__()

if not _packed.AVAILABLE or not _pool.share():
    raise SystemExit("thread_pools: needs numba's OpenMP layer and an OpenBLAS with "
                     "openblas_set_threads_callback_function (pip install numba threadpoolctl)")

SETTLE = 0.25    # s after switching the pools: OpenBLAS's spinning workers go to sleep


def _mean_ms(fn, shared, packed=None, budget=0.1):
    """The mean ms of fn's calls filling `budget` s, with the pools shared or apart and the
    packed path forced on or off (None: as rnnlab decides); shared None leaves the pools be."""
    if shared is not None and _pool.shared() != shared:
        _pool.share(shared)
        time.sleep(SETTLE)
    usable = _packed.usable
    if packed is not None:
        _packed.usable = lambda: packed
    try:
        fn()                                                   # the pools as they will run
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            t = time.perf_counter() - t0
            if t > budget:
                return t / n * 1e3
    finally:
        _packed.usable = usable


def _variants(net, x, g, head, training):
    """{name: (call, pools shared, packed path forced on or off)}."""
    def call():
        y, _ = net(x) if training else net.forward(x, keep_cache=False)
        if head is not None:
            y.reshape(-1, y.shape[-1]) @ head                  # (T B, V) on OpenBLAS
        if training:
            net.backward(g)
    return {"apart": (call, False, False), "packed apart": (call, False, True),
            "shared": (call, True, None), "shared, BLAS loop": (call, True, False)}


def _torch_variant(kind, net, x, g, head, training):
    try:
        import torch
    except ImportError:
        return {}
    torch.set_num_threads(2)
    H = net.hidden_size
    tm = getattr(torch.nn, kind)(H, H)
    tm.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in net.state_dict().items()})
    xt, gt = torch.from_numpy(x), torch.from_numpy(g)
    ht = None if head is None else torch.from_numpy(head)

    def fn():
        if training:
            tm.zero_grad(set_to_none=True)
            y, _ = tm(xt.clone().requires_grad_(True))
            if ht is not None:
                y.reshape(-1, H) @ ht
            y.backward(gt)
        else:
            with torch.no_grad():
                y, _ = tm(xt)
                if ht is not None:
                    y.reshape(-1, H) @ ht
    return {"torch": (fn, None, None)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", default="LSTM")
    ap.add_argument("--hidden", default="64,256")
    ap.add_argument("--batch", default="32,128")
    ap.add_argument("--steps", default="50")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    names = ["apart", "packed apart", "shared", "shared, BLAS loop", "torch"]
    print("| kind | H | B | T | mode | head | " + " | ".join(names) + " |")
    print("|---" * (6 + len(names)) + "|")
    for kind in args.kinds.split(","):
        for H in map(int, args.hidden.split(",")):
            for B in map(int, args.batch.split(",")):
                for T in map(int, args.steps.split(",")):
                    _grid_point(kind, H, B, T, rng, names, args.rounds)


def _grid_point(kind, H, B, T, rng, names, rounds):
    net = KINDS[kind](H)
    x = rng.standard_normal((T, B, H)).astype(np.float32)
    g = rng.standard_normal((T, B, H)).astype(np.float32)
    for training in (False, True):
        for head in (None, rng.standard_normal((H, H)).astype(np.float32)):
            fns = _variants(net, x, g, head, training)
            if kind != "LSTM":                                 # no packed path to force
                del fns["packed apart"], fns["shared, BLAS loop"]
            fns.update(_torch_variant(kind, net, x, g, head, training))
            times = {k: [] for k in fns}
            for _ in range(rounds):
                for k, (fn, shared, packed) in fns.items():
                    times[k].append(_mean_ms(fn, shared, packed))
            med = {k: np.median(v) for k, v in times.items()}
            cells = [f"{med[k]:.2f}" if k in med else "-" for k in names]
            mode = "training" if training else "inference"
            print(f"| {kind} | {H} | {B} | {T} | {mode} | {'Dense H' if head is not None else 'none'} | "
                  + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
