"""The blocked pass over X behind ``LinearMSE``: Σ R², Xᵀ R and Σᵢ Rᵢ, R = XW + b − Y.

Each row block of X is read from memory once, by X_blk W, and read again by X_blkᵀ R
while it is still in cache. Two backends run the very same loop:

- NumPy's BLAS, for plain CPU float32/float64 tensors (the hot path). It is chosen for
  speed, measured: on the 2-core AMD EPYC this was tuned on, torch's CPU matrix-vector
  product (MKL) took about 3x the time of a streaming read of X (41 ms against 14 ms
  for q = 10⁶, n = 100), NumPy's (OpenBLAS) about 1x (16.5 ms). The row ranges are split over
  ``torch.get_num_threads()`` Python threads, each running single-threaded BLAS (the
  BLAS releases the GIL), so that the pass uses the cores torch was given.
- torch, for everything else: tensors under ``torch.func`` transforms, Dynamo tracing,
  other devices and dtypes. Its ops are vmappable and traceable.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from threadpoolctl import ThreadpoolController

from handgrad.functions.tracing import is_compiling

# Bytes of X per row block: small enough that the block, read by X_blk W, is still in
# cache (L2 plus this core's share of L3) when X_blkᵀ R reads it again, large enough
# that the per-block Python and dispatch costs stay small. Measured on a shared 2-core
# EPYC, q = 10⁶, n = 100, float32, NumPy backend: 512 KiB 54-58 ms, 2 MiB 41-43 ms,
# 8 MiB 46-54 ms per pass; the torch backend was 2-4x slower below 512 KiB.
BLOCK_BYTES = 1 << 21

# Bytes of X per block off the CPU (CUDA, MPS): there a block is a few kernel launches,
# not a cache-sized loop body, so blocks are as large as a temporary may reasonably be;
# the per-block sums still add up in float64 across blocks. A 2 MiB block meant
# thousands of launches per pass on an H200 (64x slower than native at 1M x 512).
DEVICE_BLOCK_BYTES = 1 << 30

# Fewer blocks than this per thread are run on one thread: the hand-off costs more.
MIN_BLOCKS_PER_THREAD = 4

_NUMPY_DTYPES = (torch.float32, torch.float64)
_blas = ThreadpoolController()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def block_rows(n: int, itemsize: int, block_bytes: int = BLOCK_BYTES) -> int:
    """Rows of X (q, n) per block, so that a block holds about ``block_bytes``."""
    return max(1, block_bytes // max(1, n * itemsize))


def sums(X, W, b, Y, grads: bool):
    """Σᵢⱼ Rᵢⱼ² (0-dim), Xᵀ R (n, p) and Σᵢ Rᵢ (p,), added up across blocks in float64
    for float32 inputs (the torch backend's one-block case: in the inputs' dtype).

    With ``grads=False`` only the first is computed; the others are None.
    """
    if _numpy_can_run(X, W, b, Y):
        return _sums_numpy(X, W, b, Y, grads)
    return _sums_torch(X, W, b, Y, grads)


def _numpy_can_run(*tensors: torch.Tensor) -> bool:
    if is_compiling() or torch._C._are_functorch_transforms_active():
        return False
    return all(
        type(t) in (torch.Tensor, torch.nn.Parameter)
        and t.device.type == "cpu"
        and t.dtype in _NUMPY_DTYPES
        and not torch._C._functorch.is_functorch_wrapped_tensor(t)
        for t in tensors
    )


def _sums_torch(X, W, b, Y, grads):
    q, n = X.shape
    acc = torch.promote_types(X.dtype, torch.float64)  # the partial sums' dtype
    on_cpu = X.device.type == "cpu"
    step = block_rows(n, X.element_size(), BLOCK_BYTES if on_cpu else DEVICE_BLOCK_BYTES)
    if q <= step and X.dtype in _NUMPY_DTYPES:
        # One block, as on a GPU below 1 GiB of X: nothing to add up across blocks, so
        # no float64 round trip (six casts, each a kernel launch on a GPU). Its
        # products are in the inputs' dtype, as each block's are in the NumPy backend.
        acc = X.dtype
    with torch.no_grad():
        parts = [_block_sums(X, W, b, Y, start, step, acc, grads) for start in range(0, q, step)]
    if len(parts) == 1:
        return parts[0]
    sse = torch.stack([part[0] for part in parts]).sum()
    if not grads:
        return sse, None, None
    return sse, sum(part[1] for part in parts), sum(part[2] for part in parts)


def _block_sums(X, W, b, Y, start, step, acc, grads):
    """Σ R², Xᵀ R and Σᵢ Rᵢ of rows [start, start + step), in the dtype ``acc``."""
    X_blk = X[start : start + step]  # (q_blk, n), a view
    R = torch.addmm(b, X_blk, W)  # (q_blk, n) @ (n, p) + (p,) -> (q_blk, p)
    R = R - Y[start : start + step]  # not in place: Y may be batched by vmap, R not
    sse = torch.linalg.vecdot(R.flatten(), R.flatten()).to(acc)
    if not grads:
        return sse, None, None
    XtR = (X_blk.T @ R).to(acc)  # (n, q_blk) @ (q_blk, p) -> (n, p)
    return sse, XtR, R.sum(dim=0).to(acc)  # Σᵢ Rᵢ: (q_blk, p) -> (p,)


def _rows_numpy(X, W, b, Y, start, stop, step, grads):
    """The blocked loop over rows [start, stop) of NumPy arrays; float64 partial sums."""
    n, p = W.shape
    R_buf = np.empty((min(step, stop - start), p), dtype=X.dtype)
    sse, RtX, R_sum = 0.0, np.zeros((p, n)), np.zeros(p)
    for s in range(start, stop, step):
        X_blk = X[s : min(s + step, stop)]  # (q_blk, n), a view
        R = R_buf[: X_blk.shape[0]]
        np.matmul(X_blk, W, out=R)  # (q_blk, n) @ (n, p) -> (q_blk, p)
        R += b
        R -= Y[s : s + X_blk.shape[0]]
        sse += float(np.vdot(R, R))
        if grads:
            RtX += R.T @ X_blk  # (p, q_blk) @ (q_blk, n) -> (p, n), BLAS's faster side
            R_sum += R.sum(axis=0)  # (q_blk, p) -> (p,)
    return sse, RtX, R_sum


def _sums_numpy(X, W, b, Y, grads):
    q, n = X.shape
    step = block_rows(n, X.element_size())
    blocks = -(-q // step)
    threads = max(1, min(torch.get_num_threads(), blocks // MIN_BLOCKS_PER_THREAD))
    per_thread = -(-blocks // threads) * step  # whole blocks per thread
    arrays = [t.detach().numpy() for t in (X, W, b, Y)]
    ranges = [(s, min(s + per_thread, q)) for s in range(0, q, per_thread)]
    # Our threads are the parallelism. The limit is process-wide while it lasts: BLAS
    # calls elsewhere in the meantime run on one thread too (slower, never wrong).
    with _blas.limit(limits=1, user_api="blas"):
        if len(ranges) == 1:
            parts = [_rows_numpy(*arrays, 0, q, step, grads)]
        else:
            parts = list(
                _thread_pool().map(lambda r: _rows_numpy(*arrays, r[0], r[1], step, grads), ranges)
            )
    acc = torch.promote_types(X.dtype, torch.float64)
    sse = torch.tensor(sum(part[0] for part in parts), dtype=acc)
    if not grads:
        return sse, None, None
    RtX = torch.from_numpy(sum(part[1] for part in parts)).to(acc)  # (p, n)
    R_sum = torch.from_numpy(sum(part[2] for part in parts)).to(acc)  # (p,)
    return sse, RtX.T, R_sum


def _forget_pool_after_fork() -> None:
    # A forked child has none of the parent's pool threads; it must start its own.
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _thread_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=max(2, torch.get_num_threads()), thread_name_prefix="handgrad-pass"
            )
        return _pool
