"""Sufficient statistics of a split for least squares, gathered in one blocked pass.

With X̃ = [X, 1] (q, n+1):  S = X̃ᵀX̃ (n+1, n+1),  T = X̃ᵀY (n+1, p),  and yᵀy per
target (p,). For θ = [W; bᵀ] (n+1, p), each target's squared error is

    SSEⱼ = Σᵢ (X̃θ − Y)ᵢⱼ² = θⱼᵀ S θⱼ − 2 θⱼᵀ Tⱼ + yⱼᵀyⱼ,

and the gradient of mse = (1/q) Σⱼ SSEⱼ is (2/q)(Sθ − T). Both cost O(n²p), not
O(qnp): the closed-form reference, the ``stats`` descent path and cheap per-epoch
evaluation all use them. Everything is float64: SSE is a difference of large terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Rows per block in a pass over X: bounds the float64 copy of a block kept at once.
BLOCK_ROWS = 65_536


@dataclass
class Statistics:
    S: torch.Tensor  # (n+1, n+1)
    T: torch.Tensor  # (n+1, p)
    yty: torch.Tensor  # (p,)
    q: int


# Bytes of the float64 block [X_blk, 1, Y_blk] of the CPU pass: measured on the shared
# 2-core EPYC, 200,000 × 100 → 10: 2 MiB blocks 140-155 ms, 8 MiB 115-145 ms, 32 MiB
# 105-110 ms (the former torch pass, four products per block: 400 ms in float64).
AUGMENTED_BLOCK_BYTES = 32 << 20


@torch.no_grad()
def statistics(X: torch.Tensor, Y: torch.Tensor) -> Statistics:
    """S, T and yᵀy of X (q, n) and Y (q, p), in float64, one blocked pass."""
    if X.device.type == "cpu" and Y.device.type == "cpu":
        return _statistics_numpy(X.numpy(), Y.numpy())
    q, n = X.shape
    S = torch.zeros(n + 1, n + 1, dtype=torch.float64, device=X.device)
    T = torch.zeros(n + 1, Y.shape[1], dtype=torch.float64, device=X.device)
    yty = torch.zeros(Y.shape[1], dtype=torch.float64, device=X.device)
    for start in range(0, q, BLOCK_ROWS):
        Xb = X[start : start + BLOCK_ROWS].double()
        Yb = Y[start : start + BLOCK_ROWS].double()
        S[:n, :n] += Xb.T @ Xb  # (n, rows) @ (rows, n)
        S[:n, n] += Xb.sum(dim=0)
        T[:n] += Xb.T @ Yb  # (n, rows) @ (rows, p)
        T[n] += Yb.sum(dim=0)
        yty += (Yb * Yb).sum(dim=0)
    S[n, :n] = S[:n, n]
    S[n, n] = q
    return Statistics(S, T, yty, q)


def _statistics_numpy(X: np.ndarray, Y: np.ndarray) -> Statistics:
    """The CPU pass: per block, the Gram matrix AᵀA of A = [X_blk, 1, Y_blk] (rows, m).

    AᵀA holds S, T and YᵀY at once, and NumPy computes a product of a matrix with its
    own transpose by the symmetric rank-k update (BLAS syrk): half the work of a
    general product, one call per block instead of four. The block is float64, so
    float32 data are multiplied exactly and summed in float64, as before.
    """
    q, n = X.shape
    p = Y.shape[1]
    m = n + 1 + p
    step = max(1, AUGMENTED_BLOCK_BYTES // (8 * m))
    A_buf = np.empty((min(step, q), m))  # [X_blk, 1, Y_blk]
    A_buf[:, n] = 1.0
    gram = np.zeros((m, m))
    for start in range(0, q, step):
        A = A_buf[: min(step, q - start)]
        A[:, :n] = X[start : start + A.shape[0]]
        A[:, n + 1 :] = Y[start : start + A.shape[0]]
        gram += A.T @ A  # (m, rows) @ (rows, m) -> (m, m), by syrk
    S = torch.from_numpy(gram[: n + 1, : n + 1].copy())
    S[n, n] = q  # exact, whatever the rounding of the sum of ones
    T = torch.from_numpy(gram[: n + 1, n + 1 :].copy())
    yty = torch.from_numpy(np.diagonal(gram[n + 1 :, n + 1 :]).copy())
    return Statistics(S, T, yty, q)


def theta_of(W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """θ = [W; bᵀ] (n+1, p) in float64."""
    return torch.cat([W, b.unsqueeze(0)]).double()


def sse_from_statistics(stats: Statistics, theta: torch.Tensor) -> torch.Tensor:
    """Each target's SSE (p,) at θ (n+1, p, float64): θⱼᵀSθⱼ − 2θⱼᵀTⱼ + yⱼᵀyⱼ."""
    return (theta * (stats.S @ theta - 2.0 * stats.T)).sum(dim=0) + stats.yty


def statistics_from_moments(moments, centre: np.ndarray, scale: np.ndarray) -> Statistics:
    """S, T and yᵀy of one split in training units, from its streamed moments.

    ``moments`` holds q, μ and the co-moment matrix C of A = [X, Y] in raw units
    (``data/moments.py``); training units are A' = (A − c) / d, c = ``centre`` and
    d = ``scale`` (m,). Then, exactly, with δ = μ − c:

        Σᵢ a'ᵢ a'ᵢᵀ = D⁻¹ (C + q δδᵀ) D⁻¹,   Σᵢ a'ᵢ = q δ / d,

    whose blocks are X'ᵀX', X'ᵀY', Y'ᵀY' and the column sums. No pass over the rows.
    """
    n, q = moments.n, moments.q
    delta = moments.mean - centre
    gram = (moments.C + q * np.outer(delta, delta)) / np.outer(scale, scale)  # (m, m)
    sums = q * delta / scale  # (m,)
    S = np.empty((n + 1, n + 1))
    S[:n, :n], S[:n, n], S[n, :n], S[n, n] = gram[:n, :n], sums[:n], sums[:n], q
    T = np.vstack([gram[:n, n:], sums[n:]])  # (n+1, p)
    yty = np.diagonal(gram[n:, n:]).copy()
    return Statistics(torch.from_numpy(S), torch.from_numpy(T), torch.from_numpy(yty), q)
