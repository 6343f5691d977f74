"""Probe for issue 6: the LSTM's packed path (kernels._packed, numba's threads) beside NumPy's
OpenBLAS (its own threads), in one process, interleaved.

After a product OpenBLAS's workers keep spinning (OpenBLAS's default: 2^28 cycles), numba's
after a parallel region too; on two cores each pool then slows the other. So the packed path
runs only while OpenBLAS runs on one thread (_packed.usable). This prints, for an LSTM alone
and for an LSTM with a Dense head over its outputs (a product on OpenBLAS after every call),
inference and training, the ms of:
- `blas2`: OpenBLAS on two threads, the BLAS loop (the default);
- `packed+blas2`: the packed path forced on beside two OpenBLAS threads (what it is kept from);
- `blas1` / `packed+blas1`: OpenBLAS on one thread, the BLAS loop / the packed path;
- `torch`: torch.nn.LSTM (+ a Linear head) on two threads, if installed.

    python benchmarks/thread_pools.py [--hidden 64,256] [--batch 32,128] [--steps 50]

Needs numba and threadpoolctl (rnnlab[jit]).
"""

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from rnnlab.kernels import _packed
from rnnlab.recipes.bench import KINDS

if not _packed.AVAILABLE:
    raise SystemExit("thread_pools: needs numba (pip install 'rnnlab[jit]')")


def _mean_ms(fn, budget=0.1, blas_threads=2, packed=None):
    """The mean ms of fn's calls filling `budget` s, with OpenBLAS on `blas_threads` threads
    and the packed path forced on or off (None: as rnnlab decides) for the whole loop."""
    usable = _packed.usable
    if packed is not None:
        _packed.usable = lambda: packed
    try:
        with threadpool_limits(blas_threads, user_api="blas"):
            fn()                                               # the pools as they will run
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
    """{name: (call, OpenBLAS threads, packed path forced on or off)}."""
    def call():
        y, _ = net(x) if training else net.forward(x, keep_cache=False)
        if head is not None:
            y.reshape(-1, y.shape[-1]) @ head                  # (T B, V) on OpenBLAS
        if training:
            net.backward(g)
    return {"blas2": (call, 2, False), "packed+blas2": (call, 2, True), "blas1": (call, 1, False),
            "packed+blas1": (call, 1, True)}


def _torch_variant(net, x, g, head, training):
    try:
        import torch
    except ImportError:
        return {}
    torch.set_num_threads(2)
    H = net.hidden_size
    tm = torch.nn.LSTM(H, H)
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
    return {"torch": (fn, 2, None)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", default="64,256")
    ap.add_argument("--batch", default="32,128")
    ap.add_argument("--steps", default="50")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    names = ["blas2", "packed+blas2", "blas1", "packed+blas1", "torch"]
    print("| H | B | T | mode | head | " + " | ".join(names) + " |")
    print("|---" * (5 + len(names)) + "|")
    for H in map(int, args.hidden.split(",")):
        for B in map(int, args.batch.split(",")):
            for T in map(int, args.steps.split(",")):
                net = KINDS["LSTM"](H)
                x = rng.standard_normal((T, B, H)).astype(np.float32)
                g = rng.standard_normal((T, B, H)).astype(np.float32)
                for training in (False, True):
                    for head in (None, rng.standard_normal((H, H)).astype(np.float32)):
                        fns = _variants(net, x, g, head, training)
                        fns.update(_torch_variant(net, x, g, head, training))
                        times = {k: [] for k in fns}
                        for _ in range(args.rounds):
                            for k, (fn, threads, packed) in fns.items():
                                times[k].append(_mean_ms(fn, blas_threads=threads, packed=packed))
                        med = {k: np.median(v) for k, v in times.items()}
                        cells = [f"{med[k]:.2f}" if k in med else "-" for k in names]
                        mode = "training" if training else "inference"
                        print(f"| {H} | {B} | {T} | {mode} | {'Dense H' if head is not None else 'none'} | "
                              + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
