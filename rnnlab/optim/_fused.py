"""Each optimizer's update in one compiled pass over each parameter (numba; the "compiled"
backend and above, rnnlab.backends). The NumPy passes in optimizers.py compute the same thing,
in torch.optim's order of operations.

One pass reads p, g, m and v once and writes p, m and v: the NumPy passes made about a dozen
passes over each parameter (and its temporaries), which took a third of a word-LM training
step (V = 10k, E = H = 200: 31 of 90 ms)."""

from __future__ import annotations

import math

import numba


@numba.njit(cache=True, nogil=True, error_model="numpy")
def adam(p, g, m, v, b1, b2, step_size, c2_sqrt, eps, l2, keep):
    """p, g, m, v: one parameter's flat (N,) arrays. g + l2 p is the gradient (Adam's weight
    decay, 0 for none); p is first scaled by `keep` (AdamW's 1 - lr wd, else 1). Then
    m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, p -= step_size m / (sqrt(v) / c2_sqrt + eps)."""
    for i in range(p.shape[0]):
        q = p[i] * keep
        gi = g[i] + l2 * q
        mi = b1 * m[i] + (1 - b1) * gi
        vi = b2 * v[i] + (1 - b2) * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = q - step_size * mi / (math.sqrt(vi) / c2_sqrt + eps)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def sgd(p, g, buf, lr, l2, momentum, nesterov, first):
    """g + l2 p is the gradient; with momentum, buf = g on the first step (torch), then
    buf = momentum buf + g; the step is buf, or g + momentum buf (Nesterov). buf is not read
    or written without momentum (pass any array of p's type)."""
    for i in range(p.shape[0]):
        gi = g[i] + l2 * p[i]
        if momentum != 0:
            b = gi if first else momentum * buf[i] + gi
            buf[i] = b
            gi = gi + momentum * b if nesterov else b
        p[i] -= lr * gi


@numba.njit(cache=True, nogil=True, error_model="numpy")
def adagrad(p, g, acc, lr, l2, eps):
    """acc += g^2; p -= lr g / (sqrt(acc) + eps), g + l2 p the gradient."""
    for i in range(p.shape[0]):
        gi = g[i] + l2 * p[i]
        a = acc[i] + gi * gi
        acc[i] = a
        p[i] -= lr * gi / (math.sqrt(a) + eps)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def rmsprop(p, g, sq, lr, l2, alpha, eps):
    """sq = alpha sq + (1 - alpha) g^2; p -= lr g / (sqrt(sq) + eps), g + l2 p the gradient."""
    for i in range(p.shape[0]):
        gi = g[i] + l2 * p[i]
        v = alpha * sq[i] + (1 - alpha) * gi * gi
        sq[i] = v
        p[i] -= lr * gi / (math.sqrt(v) + eps)
