"""Fused GRU (gate order r, z, n), reset-after and reset-before: 1-2 GEMMs + 12 passes a step
forward, about 17 backward. r and z use s(a) = 0.5 tanh(0.5 a) + 0.5 with the 0.5 folded into
the input projections and a scaled copy of their W_hh rows. In training the saved gates are
copied over the input projections a step has read, and the backward writes their gradients over
them in turn (as the LSTM's): no (T, B, 3H) buffer of gradients of their own."""

from __future__ import annotations

import numpy as np

from . import _jit, _packed
from ._buffers import (BackwardSteps, ForwardSteps, carry_buffer, held_steps, hold_rows, joined,
    masked, step_weights)


def input_scale(cell, dtype) -> np.ndarray:
    """(3H,) 0.5 on the sigmoid gates r, z; 1 on the candidate n."""
    H = cell.hidden_size
    s = np.full(3 * H, 0.5, dtype=dtype)
    s[2 * H:] = 1
    return s


def laid_out(caches) -> bool:
    """Whether a forward's cache suits the packed backward loop: its gates r, z, n one
    C-contiguous (T, B, 3H) array (the fused forward's layout), rec C-contiguous."""
    gates = joined(caches[1], caches[2])
    return gates is not None and gates.flags.c_contiguous and caches[3].flags.c_contiguous


class Forward(ForwardSteps):
    saves_projections = True  # the gates r, z, n overwrite XP and are kept for backward

    def __init__(self, cell, p, XP, carry, keep_cache: bool, bias, steps: float, path,
                 hs=None) -> None:
        T, B, _ = XP.shape
        H = cell.hidden_size
        self.H, self.keep, self.after = H, keep_cache, cell.reset_after
        self.XP, self.bias = XP, bias              # input projections and bias (3H,), scaled
        self.jit = path.gate_math == "compiled"
        w = p.w_hh                     # the compiled step halves the r, z columns itself
        self.packed = path.forward == "packed"
        if self.packed:                # W_hh^T in 16-column panels, unscaled
            self.threads = _packed.threads()
            self.wp = _packed.packed(w)
        elif not self.jit:
            w = p.w_hh.copy()
            w[:2 * H] *= 0.5
        self.b_hn = None if p.b_hh is None else p.b_hh[2 * H:]  # (H,) inside r's product
        if self.after and not self.packed:   # W^T, a contiguous copy where it pays (step_weights)
            self.w = step_weights(w, B, steps)                 # (H, 3H)
        elif not self.after:
            self.w_rz = step_weights(w[:2 * H], B, steps)      # (H, 2H)
            self.w_n = step_weights(w[2 * H:], B, steps)       # (H, H)
        self.HS = carry_buffer(T, carry[0], hs)                    # (T+1, B, H)
        self.carries = (self.HS,)
        # the saved gates go over their own input projections once a step has read them: r, z
        # into XP's first 2H columns, n into its last H, so they cost no memory of their own
        self.RZ, self.N = XP[..., :2 * H], XP[..., 2 * H:]     # (T, B, 2H), (T, B, H) views
        self.REC = np.empty((T if keep_cache else 1, B, H), dtype=XP.dtype)
        if not self.packed:            # the steps' scratch (the packed loop has its own)
            self.rz = np.empty((B, 2 * H), dtype=XP.dtype)     # one step's gates, contiguous
            self.n = np.empty((B, H), dtype=XP.dtype)
            self.hp = np.empty((B, 3 * H if self.after else 2 * H), dtype=XP.dtype)
        self.no_bias = np.empty(0, dtype=XP.dtype)

    def run(self, mask, padded) -> None:
        """The loop the path names: packed (rows split), or steps from Python."""
        if not self.packed:
            return super().run(mask, padded)
        T = self.XP.shape[0]
        held = held_steps(mask, T)
        b_hn = self.no_bias if self.b_hn is None else self.b_hn
        _packed.gru_forward(self.XP, self.wp, self.bias, b_hn, self.HS, self.REC, held,
                            self.threads)

    def step(self, t: int, hold) -> None:
        h, h_new = self.HS[t], self.HS[t + 1]
        run = self._compiled if self.jit else self._passes
        run(self.XP[t], self.hp, self.rz, self.n, self.REC[t if self.keep else 0], h, h_new)
        if self.keep:
            self.RZ[t] = self.rz                               # saved over x_r, x_z, x_n
            self.N[t] = self.n
        hold_rows(hold, (h_new,), (h,))

    def _passes(self, xp, hp, rz, n, rec, h, h_new) -> None:
        """The step's elementwise work as NumPy passes."""
        H = self.H
        r, z = rz[:, :H], rz[:, H:]
        if self.after:
            np.matmul(h, self.w, out=hp)                       # all three recurrent blocks
            np.add(xp[:, :2 * H], hp[:, :2 * H], out=rz)
        else:
            np.matmul(h, self.w_rz, out=hp)
            np.add(xp[:, :2 * H], hp, out=rz)
        rz += self.bias[:2 * H]
        np.tanh(rz, out=rz)                                    # r, z: 0.5 tanh + 0.5
        rz *= 0.5
        rz += 0.5
        if self.after:
            if self.b_hn is None:                              # rec = h W_hn^T + b_hn
                rec[:] = hp[:, 2 * H:]
            else:
                np.add(hp[:, 2 * H:], self.b_hn, out=rec)
            np.multiply(r, rec, out=n)                         # n_pre = x_n + r * rec
        else:
            np.multiply(r, h, out=rec)                         # rec = r * h
            np.matmul(rec, self.w_n, out=n)                    # n_pre = x_n + rec W_hn^T
        n += xp[:, 2 * H:]
        n += self.bias[2 * H:]
        np.tanh(n, out=n)
        np.subtract(h, n, out=h_new)                           # h' = n + z (h - n)
        h_new *= z
        h_new += n

    def _compiled(self, xp, hp, rz, n, rec, h, h_new) -> None:
        """The step with its elementwise passes compiled (rnnlab.kernels._jit)."""
        if self.after:
            np.matmul(h, self.w, out=hp)                       # all three recurrent blocks
            b_hn = self.no_bias if self.b_hn is None else self.b_hn
            _jit.gru_after_forward(xp, self.bias, hp, b_hn, rz, n, rec, h, h_new)
        else:
            np.matmul(h, self.w_rz, out=hp)
            _jit.gru_gates(xp, self.bias, hp, rz)              # r, z
            _jit.gru_before_reset(rz, h, rec)                  # rec = r h
            np.matmul(rec, self.w_n, out=n)
            _jit.gru_before_forward(xp, self.bias, rz, n, h, h_new)

    def caches(self):
        return (self.HS[:-1], self.RZ, self.N, self.REC)      # reference layout


class Backward(BackwardSteps):
    def __init__(self, cell, p, caches, dcarry, x, path) -> None:   # x: read by the RNN's only
        self.h, self.rz, self.n, self.rec = caches
        self.path = path
        T, B, H = self.n.shape
        dt = self.n.dtype
        self.H, self.after, self.w = H, cell.reset_after, p.w_hh   # (3H, H)
        gates = joined(self.rz, self.n)                        # the fused forward's (T, B, 3H)
        self.consumes_cache = gates is not None                # the gradients go over the gates
        self.DA = np.empty((T, B, 3 * H), dtype=dt) if gates is None else gates   # = dXP
        if self.consumes_cache:        # a step's gates are copied out before their gradients land
            self.rz_s, self.n_s = np.empty((B, 2 * H), dtype=dt), np.empty((B, H), dtype=dt)
        if self.after:                 # what W_hn's output gets, dn r: over rec where ours
            self.DN = self.rec if self.consumes_cache else np.empty((T, B, H), dtype=dt)
            self.dhp = np.empty((B, 3 * H), dtype=dt)          # one step's recurrent side
        self.d = (np.array(dcarry[0], dtype=dt),)
        self.nxt = (np.empty_like(self.d[0]),)
        self.tmp2 = np.empty((B, H), dtype=dt)                 # dn W_hn (reset-before)
        self.jit = path.gate_math == "compiled"
        if not self.jit:                                       # scratch of the NumPy passes
            self.ds = np.empty((B, 3 * H), dtype=dt)           # local derivatives of the gates
            self.tmp = np.empty((B, H), dtype=dt)

    def run(self, dY, mask, padded) -> None:
        """The loop the path names: packed (rows split, where the forward's gates and rec are
        laid out for it, laid_out), or steps from Python."""
        T, B, _ = dY.shape
        dt = self.DA.dtype
        if self.path.backward != "packed":
            return super().run(dY, mask, padded)
        held = held_steps(mask, T)
        dY = np.ascontiguousarray(dY, dtype=dt)
        h, wp = np.ascontiguousarray(self.h), _packed.packed_rows(self.w)   # W_hh (3H, H)
        _packed.gru_backward(self.DA, h, self.rec, wp, dY, self.d[0], held, _packed.threads())

    def step(self, t: int, dy, hold) -> None:
        np.add(self.d[0], dy, out=self.d[0])                    # dL/dh_t: output + recurrence
        (dh,) = masked(hold, self.d)
        rz, n = self.rz[t], self.n[t]
        if self.consumes_cache:
            np.copyto(self.rz_s, rz)                           # before da lands on them
            np.copyto(self.n_s, n)
            rz, n = self.rz_s, self.n_s
        run = self._compiled if self.jit else self._passes
        run(t, self.h[t], rz, n, self.rec[t], dh, self.DA[t], self.nxt[0])
        if self.after:
            self.DN[t] = self.dhp[:, 2 * self.H:]               # d rec = dn r, for dW_hn
        self.finish_step(hold)

    def _passes(self, t, h, rz, n, rec, dh, da, dh_prev) -> None:
        """The step's elementwise work as NumPy passes, with its GEMMs."""
        H, ds, tmp = self.H, self.ds, self.tmp
        r, z = rz[:, :H], rz[:, H:]
        np.subtract(1, rz, out=ds[:, :2 * H])                  # s' = s (1 - s) for r, z
        ds[:, :2 * H] *= rz
        np.multiply(n, n, out=ds[:, 2 * H:])                   # tanh' = 1 - n^2
        np.subtract(1, ds[:, 2 * H:], out=ds[:, 2 * H:])
        dan = da[:, 2 * H:]
        np.subtract(1, z, out=dan)                             # dn = dh (1 - z)
        dan *= dh
        dan *= ds[:, 2 * H:]
        dz = da[:, H:2 * H]
        np.subtract(h, n, out=dz)                              # dz = dh (h - n)
        dz *= dh
        dz *= ds[:, H:2 * H]
        dr = da[:, :H]
        if self.after:
            dhp = self.dhp
            np.multiply(dan, rec, out=dr)                      # n_pre = x_n + r * rec
            dr *= ds[:, :H]
            dhp[:, :2 * H] = da[:, :2 * H]
            np.multiply(dan, r, out=dhp[:, 2 * H:])            # d rec = dn r
            np.matmul(dhp, self.w, out=dh_prev)                # all three blocks at once
        else:
            drh = np.matmul(dan, self.w[2 * H:], out=self.tmp2)  # back through W_hn
            np.multiply(drh, h, out=dr)                        # rec = r * h
            dr *= ds[:, :H]
            np.matmul(da[:, :2 * H], self.w[:2 * H], out=dh_prev)  # r, z read h
            drh *= r
            dh_prev += drh
        np.multiply(dh, z, out=tmp)                            # the direct path z h
        dh_prev += tmp

    def _compiled(self, t, h, rz, n, rec, dh, da, dh_prev) -> None:
        """The step with its elementwise passes compiled (rnnlab.kernels._jit)."""
        H = self.H
        _jit.gru_backward_zn(h, rz, n, dh, da)                 # dz, dn
        if self.after:
            dhp = self.dhp
            _jit.gru_after_backward_r(rz, rec, da, dhp)        # dr; recurrent side dhp
            np.matmul(dhp, self.w, out=dh_prev)                # all three blocks at once
        else:
            drh = np.matmul(da[:, 2 * H:], self.w[2 * H:], out=self.tmp2)  # back through W_hn
            _jit.gru_before_backward_r(rz, h, drh, da)         # dr; drh becomes drh r
            np.matmul(da[:, :2 * H], self.w[:2 * H], out=dh_prev)  # r, z read h
            dh_prev += drh
        _jit.gru_direct(dh_prev, dh, rz)                       # + dh z

    def drecs(self):
        H = self.H                     # W_hr, W_hz's side; W_hn's (reset-before: dn itself)
        return (self.DA[..., :2 * H], self.DN if self.after else self.DA[..., 2 * H:])
