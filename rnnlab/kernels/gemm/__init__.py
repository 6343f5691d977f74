"""rnnlab's packed GEMM, standing alone: an LLVM-IR micro-kernel (`ir`) and the products and
packing built on it (`product`). The LSTM's, GRU's and RNN's loops that run on it live in
`rnnlab.kernels._packed`.

Invariants (what the kernel assumes and the loops guarantee):
- float32 only; W is packed into panels of NR = 16 columns, each panel's K rows contiguous
  (`pack` for W as the cell stores it, (G, K) -> W^T; `pack_rows` for (K, N) as it is);
  G and N are multiples of 16 (H a multiple of 16 in the loops' `fits`).
- A tile is at most MR = 6 rows of A by one panel, one <16 x float> accumulator a row; the
  k loop runs in blocks of KC = 512 rows (a panel's block is 32 KB, L1's size).
- No alignment is assumed: vectors are loaded and stored unaligned (`_vec`).
- The spin barrier (`ir._meet`) needs every iteration of its parallel loop on its own thread
  at once: numba's OpenMP layer with a team of the size asked for (`_packed.meets`); two
  iterations on one thread would wait for each other forever.
- The IR uses typed pointers, as llvmlite 0.50 (numba 0.68) builds them: numba is pinned to
  0.68 in pyproject.toml; the next llvmlite that drops typed pointers needs `ir` rewritten.
- The vectors are LLVM's generic <16 x float>: LLVM lowers them to the CPU it compiles for
  (one zmm with AVX-512, two ymm with AVX2, four xmm with SSE2, NEON on Arm); only the spin
  barrier's pause hint is x86-only (skipped elsewhere). A test compiles for a generic x86-64.
"""

MR, NR = 6, 16           # rows of a tile (at most), columns of a panel
KC = 512                 # rows of W a block: a panel's block (KC x 16 floats) is 32 KB, L1's size
FAR = 1 << 21            # floats of packed W (8 MB) past which a step's W streams from memory,
NEAR_ROWS = 16           # and the rows from which its tiles prefetch it (see ir._tile)
ROWS = 96                # rows of X a block in `project`
LINE = 8                 # int64s a cache line: _meet's counter and generation on lines apart
