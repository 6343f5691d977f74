"""The LLVM-IR code generator of the packed GEMM (numba intrinsics, llvmlite): the tile, the
16 x 16 block transpose used by packing, 16 rows' dot products with a vector, and the spin
barrier. See the package's doc for the invariants."""

from __future__ import annotations

import platform

from .. import _jit
from . import KC, LINE as _LINE, MR, NR

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")

if _jit.AVAILABLE:
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    _I64 = ir.IntType(64)
    _VEC = ir.VectorType(ir.FloatType(), NR)                      # one row of a panel

    def _const(v):
        return ir.Constant(_I64, v)

    def _vec(builder, ptr, off):
        """A <16 x float> pointer to ptr[off:off+16]."""
        return builder.bitcast(builder.gep(ptr, [off]), _VEC.as_pointer())

    def _loop(builder, count, inits, body):
        """Emit `for it in range(count)` carrying the values `inits` from one iteration to the
        next: body(it, values) emits an iteration and returns the next values. Returns the
        values after the loop (the inits when count is 0)."""
        entry = builder.block
        loop = builder.append_basic_block("loop")
        done = builder.append_basic_block("done")
        builder.cbranch(builder.icmp_signed(">", count, _const(0)), loop, done)
        builder.position_at_end(loop)
        it = builder.phi(_I64)
        it.add_incoming(_const(0), entry)
        phis = [builder.phi(v.type) for v in inits]
        for p, v in zip(phis, inits):
            p.add_incoming(v, entry)
        new = body(it, phis)
        nxt = builder.add(it, _const(1))
        end = builder.block
        for p, v in zip(phis, new):
            p.add_incoming(v, end)
        it.add_incoming(nxt, end)
        builder.cbranch(builder.icmp_signed("<", nxt, count), loop, done)
        builder.position_at_end(done)
        out = []
        for v0, v1 in zip(inits, new):
            p = builder.phi(v0.type)
            p.add_incoming(v0, entry)
            p.add_incoming(v1, end)
            out.append(p)
        return out

    def _kloop(builder, fma, a_ptr, lda, row0, w_ptr, w_off, k0, count, unroll, accs, m, ahead):
        """Emit `count` iterations, each over k = k0 + it unroll + s for s < unroll, adding
        a[row0 + i, k] W_panel[k, :] into accumulator set s (accs[s][i]); with
        `ahead`, each k also prefetches (into L2) the line of W one block (KC rows) further on.
        Returns the accumulator sets after the loop (the inputs when count is 0)."""
        undef = ir.Constant(_VEC, ir.Undefined)
        splat = ir.Constant(ir.VectorType(ir.IntType(32), NR), [0] * NR)

        def body(it, flat):                                      # flat[s m + i]: accs[s][i]
            base = builder.add(k0, builder.mul(it, _const(unroll)))
            new = []
            for s in range(unroll):
                k = builder.add(base, _const(s))
                off = builder.add(w_off, builder.mul(k, _const(NR)))
                wk = builder.load(_vec(builder, w_ptr, off), align=4)
                if ahead:                                        # a k-row of a panel: one line
                    _prefetch(builder, builder.gep(w_ptr, [builder.add(off, _const(KC * NR))]), False, 2)
                for i in range(m):
                    idx = builder.add(builder.mul(builder.add(row0, _const(i)), lda), k)
                    ai = builder.load(builder.gep(a_ptr, [idx]))
                    av = builder.shuffle_vector(builder.insert_element(undef, ai, ir.Constant(ir.IntType(32), 0)),
                                                undef, splat)
                    new.append(builder.call(fma, [av, wk, flat[s * m + i]]))
            return new
        flat = _loop(builder, count, [v for acc in accs for v in acc], body)
        return [flat[s * m:(s + 1) * m] for s in range(len(accs))]

    def _prefetch(builder, ptr, write: bool, locality: int) -> None:
        """llvm.prefetch of ptr's line, to read or to write, into the cache level `locality`
        names (3: L1, 2: L2)."""
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        pf = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0i8")
        builder.call(pf, [builder.bitcast(ptr, i8p), ir.Constant(i32, int(write)),
                          ir.Constant(i32, locality), ir.Constant(i32, 1)])

    def _emit_tile(builder, fma, a, wp, c, i0v, c0v, offv, k, m: int, accumulate: bool, ahead: bool):
        """C[i0:i0+m, c0:c0+16] (+)= A[i0:i0+m, :k] times the (k, 16) panel at flat offset
        off of Wp, for a fixed m; the k loop runs over ceil(4 / m) accumulator sets. With
        `ahead`, W's next block is prefetched as the tile runs (_kloop)."""
        unroll = -(-4 // m)                                      # ceil(4 / m): 4 FMA chains at least
        four = _const(4)
        lda = builder.sdiv(builder.extract_value(a.strides, 0), four)   # in floats
        ldc = builder.sdiv(builder.extract_value(c.strides, 0), four)
        zero = ir.Constant(_VEC, [0.0] * NR)
        accs = [[zero] * m for _ in range(unroll)]
        ptrs = []                                                # C's tile, row by row
        for i in range(m):
            base = builder.add(builder.mul(builder.add(i0v, _const(i)), ldc), c0v)
            ptrs.append(_vec(builder, c.data, base))
        if accumulate:                                           # C's lines on their way:
            for ptr in ptrs:                                     # read at the end
                _prefetch(builder, ptr, True, 3)
        n = builder.sdiv(k, _const(unroll))
        accs = _kloop(builder, fma, a.data, lda, i0v, wp.data, offv, _const(0), n, unroll, accs, m, ahead)
        if unroll > 1:                                           # the k % unroll tail
            tail = _kloop(builder, fma, a.data, lda, i0v, wp.data, offv, builder.mul(n, _const(unroll)),
                          builder.srem(k, _const(unroll)), 1, accs[:1], m, ahead)
            accs = tail + accs[1:]
        total = accs[0]
        for more in accs[1:]:
            total = [builder.fadd(x, y) for x, y in zip(total, more)]
        if accumulate:
            total = [builder.fadd(builder.load(ptr, align=4), v) for ptr, v in zip(ptrs, total)]
        for ptr, v in zip(ptrs, total):
            builder.store(v, ptr, align=4)

    @intrinsic
    def _tile(typingctx, A, Wp, C, i0, c0, w_off, K, m, add, far):
        """C[i0:i0+m, c0:c0+16] (+)= A[i0:i0+m, :K] times the (K, 16) panel at flat offset
        w_off of Wp, m <= MR rows; added to C's tile if `add`, else written over it. With
        `far` (W streams from memory), a tile of 3 or more rows prefetches W's next block as it
        runs: the block's first tile would otherwise wait on memory while the others leave it
        idle. LSTM at H = 1024, whole calls against no prefetching, interleaved: inference
        0.83x at B = 32, T = 200 (1.00x at T = 50), 0.99x at B = 128; training 0.97-0.99x;
        the units-split loop alone 0.75-0.85x at B = 32. At B = 8 it read 1.13x (a block's
        two tiles leave too little work to hide the next block behind), hence NEAR_ROWS; a
        tile of 1-2 rows is bound by its loads of W, and prefetching slowed it. One block of
        code per (m, add, far), chosen by a switch."""
        if not all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (A, Wp, C)):
            return None                                          # float32 only: numba says so
        sig = types.void(A, Wp, C, i0, c0, w_off, K, m, add, far)

        def codegen(context, builder, signature, args):
            a, wp, c = (context.make_array(t)(context, builder, v)
                        for t, v in zip(signature.args[:3], args[:3]))
            i0v, c0v, offv, k, mv, addv, farv = args[3:]
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC] * 3),
                                                 "llvm.fma.v16f32")
            key = builder.add(builder.mul(builder.add(builder.mul(mv, _const(2)), builder.zext(addv, _I64)),
                                          _const(2)), builder.zext(farv, _I64))
            end = builder.append_basic_block("tile_end")
            switch = builder.switch(key, end)
            for mm in range(1, MR + 1):
                for acc in (0, 1):
                    for ahead in (0, 1) if mm >= 3 else (0,):   # 1-2 rows never prefetch:
                        block = builder.append_basic_block(f"tile_{mm}_{acc}_{ahead}")
                        for key in (ahead,) if mm >= 3 else (0, 1):   # one block for both keys
                            switch.add_case(_const(4 * mm + 2 * acc + key), block)
                        builder.position_at_end(block)
                        _emit_tile(builder, fma, a, wp, c, i0v, c0v, offv, k, mm, bool(acc), bool(ahead))
                        builder.branch(end)
            builder.position_at_end(end)
            return context.get_dummy_value()
        return sig, codegen

    @intrinsic
    def _transposed_block(typingctx, W, s, out, r0, k0, dst):
        """out[dst + 16 kk + j] = W[r0 + j, k0 + kk] s[r0 + j] for j, kk < 16: one 16 x 16
        block of W (C layout) read as 16 row vectors, transposed in registers and scaled. The
        transpose runs in 4 stages of lane shuffles (b = 8, 4, 2, 1), each swapping the two
        off-diagonal b x b blocks of every 2b x 2b block."""
        if not (all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (W, s, out))
                and W.layout == "C" and all(isinstance(i, types.Integer) for i in (r0, k0, dst))):
            return None                                          # float32, W in C layout
        sig = types.void(W, s, out, r0, k0, dst)

        def codegen(context, builder, signature, args):
            w, sv, o = (context.make_array(t)(context, builder, v)
                        for t, v in zip(signature.args[:3], args[:3]))
            r0v, k0v, dstv = (context.cast(builder, v, t, types.int64)
                              for v, t in zip(args[3:], signature.args[3:]))
            ldw = builder.sdiv(builder.extract_value(w.strides, 0), _const(4))   # in floats

            offs = [builder.add(builder.mul(builder.add(r0v, _const(j)), ldw), k0v) for j in range(NR)]
            rows = [builder.load(_vec(builder, w.data, off), align=4) for off in offs]   # r0 + j
            ahead = builder.mul(ldw, _const(NR))                # the next panel's rows, into L2
            for off in offs:
                _prefetch(builder, builder.gep(w.data, [builder.add(off, ahead)]), False, 2)
            lanes = ir.VectorType(ir.IntType(32), NR)
            b = NR // 2
            while b:                                             # lane l of the pair's outputs:
                first = ir.Constant(lanes, [l + NR - b if l & b else l for l in range(NR)])
                second = ir.Constant(lanes, [l + NR if l & b else l + b for l in range(NR)])
                for i in range(NR):
                    if not i & b:                                # rows i, i + b
                        x, y = rows[i], rows[i + b]
                        rows[i] = builder.shuffle_vector(x, y, first)
                        rows[i + b] = builder.shuffle_vector(x, y, second)
                b //= 2
            scale = builder.load(_vec(builder, sv.data, r0v), align=4)     # s[r0:r0+16]
            for kk in range(NR):                                 # rows[kk] = W[r0:r0+16, k0+kk]
                dst = _vec(builder, o.data, builder.add(dstv, _const(NR * kk)))
                builder.store(builder.fmul(rows[kk], scale), dst, align=4)
            return context.get_dummy_value()
        return sig, codegen

    @intrinsic
    def _dots(typingctx, W, h, s, a, r0):
        """a[r0:r0+16] += s[r0:r0+16] (W[r0:r0+16] h): 16 dot products of rows of W (C
        layout, K columns, a multiple of 16) with h (K,), read in place, unpacked. One
        accumulator a row of W, each lane summing every 16th product; the 16 are then summed
        across lanes in 4 stages (b = 8, 4, 2, 1), each adding the two halves of every 2b
        lanes of a pair of accumulators, so that lane j ends with row r0 + j's sum. A k takes
        one load of W a FMA, where a one-row tile of the packed kernel takes two (W and a
        broadcast of h)."""
        if not (all(isinstance(x, types.Array) and x.dtype == types.float32 for x in (W, h, s, a))
                and W.layout == "C" and W.ndim == 2 and isinstance(r0, types.Integer)):
            return None                                          # float32, W (G, K) in C layout
        sig = types.void(W, h, s, a, r0)

        def codegen(context, builder, signature, args):
            w, hv, sv, av = (context.make_array(t)(context, builder, v)
                             for t, v in zip(signature.args[:4], args[:4]))
            r0v = context.cast(builder, args[4], signature.args[4], types.int64)
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC] * 3),
                                                 "llvm.fma.v16f32")

            K = builder.extract_value(w.shape, 1)
            ldw = builder.sdiv(builder.extract_value(w.strides, 0), _const(4))   # in floats
            rows = [builder.mul(builder.add(r0v, _const(j)), ldw) for j in range(NR)]
            zero = ir.Constant(_VEC, [0.0] * NR)

            def body(it, accs):
                k = builder.mul(it, _const(NR))
                x = builder.load(_vec(builder, hv.data, k), align=4)      # h[k:k+16]
                return [builder.call(fma, [builder.load(_vec(builder, w.data, builder.add(row, k)), align=4),
                                           x, acc])
                        for row, acc in zip(rows, accs)]
            sums = _loop(builder, builder.sdiv(K, _const(NR)), [zero] * NR, body)   # 16-column blocks
            lanes = ir.VectorType(ir.IntType(32), NR)
            b = NR // 2
            while b:                                             # lane l: 2b-lane group l // 2b,
                pos = [l % (2 * b) for l in range(NR)]           # its first b lanes from x
                base = [l - q for l, q in zip(range(NR), pos)]
                first = ir.Constant(lanes, [g + q if q < b else NR + g + q - b for g, q in zip(base, pos)])
                second = ir.Constant(lanes, [g + b + q if q < b else NR + g + q for g, q in zip(base, pos)])
                sums = [builder.fadd(builder.shuffle_vector(sums[i], sums[i + b], first),
                                     builder.shuffle_vector(sums[i], sums[i + b], second))
                        for i in range(b)]
                b //= 2
            out = _vec(builder, av.data, r0v)
            scale = builder.load(_vec(builder, sv.data, r0v), align=4)
            builder.store(builder.call(fma, [sums[0], scale, builder.load(out, align=4)]), out, align=4)
            return context.get_dummy_value()
        return sig, codegen

    @intrinsic
    def _meet(typingctx, sync, n):
        """Wait until all n threads of a parallel region have come here (a counter in
        sync[0], a generation in sync[_LINE], each on its own cache line): the last to come
        resets the counter and moves the generation on; the others spin on it. Where a step's
        work is a few microseconds (the LSTM at B = 1), a region a step cost 1.4-1.6 us of
        launch and join. Only for regions whose n iterations each run on their own thread
        (`meets`): two on one thread would wait forever."""
        if not (isinstance(sync, types.Array) and sync.dtype == types.int64
                and isinstance(n, types.Integer)):
            return None
        sig = types.void(sync, n)

        def codegen(context, builder, signature, args):
            count = context.make_array(signature.args[0])(context, builder, args[0]).data
            nv = context.cast(builder, args[1], signature.args[1], types.int64)
            gen = builder.gep(count, [_const(_LINE)])
            seen = builder.load_atomic(gen, "acquire", 8)           # before counting in
            came = builder.atomic_rmw("add", count, _const(1), "acq_rel")
            with builder.if_else(builder.icmp_signed("==", came, builder.sub(nv, _const(1)))) as (last, other):
                with last:                                          # all here: on to the next
                    builder.store_atomic(_const(0), count, "monotonic", 8)
                    builder.atomic_rmw("add", gen, _const(1), "release")
                with other:                                         # spin until it moves on
                    spin = builder.append_basic_block("spin")
                    done = builder.append_basic_block("spun")
                    builder.branch(spin)
                    builder.position_at_end(spin)
                    if _X86:
                        pause = cgutils.get_or_insert_function(
                            builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
                        builder.call(pause, [])
                    now = builder.load_atomic(gen, "acquire", 8)
                    builder.cbranch(builder.icmp_signed("==", now, seen), spin, done)
                    builder.position_at_end(done)
            return context.get_dummy_value()
        return sig, codegen

