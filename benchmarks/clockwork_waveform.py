"""Clockwork RNN against an RNN and an LSTM of the same size on sequence generation (Koutnik et
al. 2014, section 4.1, in kind): with no input, each network must produce a 320-step waveform
from its own dynamics through a linear read-out; full-sequence BPTT, Adam, the same budget.

The waveform (deterministic, in [-1, 1]): a sum of five sinusoids with periods from 6 to 160
steps and a slow amplitude envelope, like the paper's short music excerpt. Reported: the MSE
normalised by the waveform's variance (NMSE; the paper's CW-RNN 0.007, RNN 0.18, LSTM 0.47).
"""

import time

import numpy as np
from _common import report

import rnnlab
from rnnlab.layers import Dense
from rnnlab.losses import mean_squared_error
from rnnlab.optim import Adam, clip_grad_norm

T = 320
ITERATIONS = 3000
SEEDS = (0, 1)
MODELS = {  # about 750 trained parameters each, counted as in the paper (used W_hh entries only)
    "clockwork": lambda seed: rnnlab.ClockworkRNN(1, 32, num_modules=8, dtype=np.float64, rng=seed),
    "rnn": lambda seed: rnnlab.RNN(1, 25, dtype=np.float64, rng=seed),
    "lstm": lambda seed: rnnlab.LSTM(1, 12, dtype=np.float64, rng=seed),
}


def waveform() -> np.ndarray:
    t = np.arange(T)
    periods, amps = (6.0, 17.0, 41.0, 95.0, 160.0), (0.15, 0.25, 0.3, 0.2, 0.3)
    y = sum(a * np.sin(2 * np.pi * t / p + k) for k, (p, a) in enumerate(zip(periods, amps)))
    y *= 0.6 + 0.4 * np.sin(np.pi * t / T)                     # a slow envelope
    return y / np.abs(y).max()


def used_parameters(net, head) -> int:
    n = sum(a.size for k, a in net.named_parameters() if not k.startswith("weight_hh"))
    w_hh = net.state_dict()["weight_hh_l0"]
    n += int(net.cell.recurrent_mask().sum()) if hasattr(net.cell, "recurrent_mask") else w_hh.size
    return n + head.weight.size + head.bias.size


def fit(name: str, seed: int, target: np.ndarray) -> dict:
    net = MODELS[name](seed)
    head = Dense(net.hidden_size, 1, dtype=np.float64, rng=seed)
    params = dict(net.named_parameters()) | {f"head.{k}": v for k, v in head.named_parameters()}
    opt = Adam(params.items(), lr=3e-3)
    x = np.zeros((T, 1, 1))                                    # no input
    y_target = target[:, None, None]
    curve, t0 = [], time.perf_counter()
    for it in range(ITERATIONS):
        out, _ = net(x)
        pred = head(out)                                       # (T, 1, 1)
        loss, dpred = mean_squared_error(pred, y_target)
        net.backward(head.backward(dpred))
        grads = dict(net.grads) | {f"head.{k}": v for k, v in head.named_grads()}
        clip_grad_norm(grads, 1.0)
        opt.step(grads)
        if it % 100 == 0 or it == ITERATIONS - 1:
            curve.append((it, float(loss)))
    out, _ = net.forward(x, keep_cache=False)
    nmse = float(((head(out)[:, 0, 0] - target) ** 2).mean() / target.var())
    return {"model": name, "seed": seed, "parameters": used_parameters(net, head), "nmse": nmse,
            "seconds": time.perf_counter() - t0, "curve": curve}


if __name__ == "__main__":
    target = waveform()
    runs = [fit(name, seed, target) for name in MODELS for seed in SEEDS]
    for r in runs:
        print(f"{r['model']:10s} seed {r['seed']}: {r['parameters']} parameters, NMSE {r['nmse']:.4f}, "
              f"{r['seconds']:.0f} s")
    report("clockwork_waveform", {"T": T, "iterations": ITERATIONS, "optimizer": "adam 3e-3, clip 1",
                                  "runs": runs})
