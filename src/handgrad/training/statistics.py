"""Sufficient statistics of a split for least squares, gathered in one blocked pass.

With X̃ = [X, 1] (q, n+1):  S = X̃ᵀX̃ (n+1, n+1),  T = X̃ᵀY (n+1, p),  and yᵀy per
target (p,). For θ = [W; bᵀ] (n+1, p), each target's squared error is

    SSEⱼ = Σᵢ (X̃θ − Y)ᵢⱼ² = θⱼᵀ S θⱼ − 2 θⱼᵀ Tⱼ + yⱼᵀyⱼ,

and the gradient of mse = (1/q) Σⱼ SSEⱼ is (2/q)(Sθ − T). Both cost O(n²p), not
O(qnp): the closed-form reference, the ``stats`` descent path and cheap per-epoch
evaluation all use them. Everything is float64: SSE is a difference of large terms.

The pass sums the products of x − x₀ and y − y₀, (x₀, y₀) the first row, not of x and y:
a column far from zero (a year, a price) keeps its precision, and the centred moments
C = Σ (x − x̄)(x − x̄)ᵀ, Cxy and cyy that the reference solves with come out without the
cancellation of S − q x̄x̄ᵀ. S, T and yᵀy are rebuilt from them (``_from_shifted``).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import nan

import numpy as np
import torch

# Rows per block in a pass over X: bounds the float64 copy of a block kept at once.
BLOCK_ROWS = 65_536
# The SSE's rounding from the statistics, in units of ε (sⱼ² + q tⱼ²) (``sse_rounding``),
# measured against a long-double pass over the rows: at most 1.03 (collinear columns at
# the optimum), 0.96 (a shift 10 spreads from the mean), about 0.2 on the embedded and
# synthetic sets, streamed or merged by groups (tests/test_final_metrics.py). 8: a margin.
SSE_ROUNDING_FACTOR = 8.0


@dataclass
class Statistics:
    S: torch.Tensor  # (n+1, n+1)
    T: torch.Tensor  # (n+1, p)
    yty: torch.Tensor  # (p,)
    q: int
    # Centred moments, float64 on the CPU: the reference's stable solve and the exact
    # per-epoch SSE use them (None when built by hand from S, T alone).
    centred: Centred | None = None


@dataclass
class Centred:
    """Moments about the column means: x̄ (n,), ȳ (p,), C = Σ(x − x̄)(x − x̄)ᵀ (n, n),
    Cxy = Σ(x − x̄)(y − ȳ)ᵀ (n, p), cyy = Σ(y − ȳ)² (p,), and max ‖x̃ᵢ‖² over the rows.

    gx (n,) and gy (p,) are the squares the pass summed, Σ(x − s)² and Σ(y − s)² about
    its shifts s (``data/moments.py``): the scale of the rounding in C, Cxy and cyy.
    """

    mean_x: np.ndarray
    mean_y: np.ndarray
    C: np.ndarray
    Cxy: np.ndarray
    cyy: np.ndarray
    max_row_norm2: float
    gx: np.ndarray
    gy: np.ndarray


# Bytes of the float64 block [X_blk, 1, Y_blk] of the CPU pass: measured on the shared
# 2-core EPYC, 200,000 × 100 → 10: 2 MiB blocks 140-155 ms, 8 MiB 115-145 ms, 32 MiB
# 105-110 ms (the former torch pass, four products per block: 400 ms in float64).
AUGMENTED_BLOCK_BYTES = 32 << 20


@torch.no_grad()
def statistics(X: torch.Tensor, Y: torch.Tensor) -> Statistics:
    """S, T and yᵀy of X (q, n) and Y (q, p), in float64, one blocked pass."""
    if X.device.type == "cpu" and Y.device.type == "cpu":
        return _statistics_numpy(X.numpy(), Y.numpy())
    # Another device: the same shifted Gram matrix, block by block, brought to the CPU
    # once at the end (the statistics live there in float64 by design).
    q, n = X.shape
    m = n + 1 + Y.shape[1]
    x0, y0 = X[0].double(), Y[0].double()
    gram = torch.zeros(m, m, dtype=torch.float64, device=X.device)
    max_norm2 = torch.zeros((), dtype=torch.float64, device=X.device)
    for start in range(0, q, BLOCK_ROWS):
        Xb = X[start : start + BLOCK_ROWS].double()
        ones = torch.ones(Xb.shape[0], 1, dtype=torch.float64, device=X.device)
        A = torch.cat([Xb - x0, ones, Y[start : start + BLOCK_ROWS].double() - y0], dim=1)
        gram += A.T @ A  # (m, rows) @ (rows, m)
        max_norm2 = torch.maximum(max_norm2, (Xb * Xb).sum(dim=1).max())
    to_cpu = torch.device("cpu")
    return _from_shifted(
        gram.to(to_cpu).numpy(),
        q,
        n,
        x0.to(to_cpu).numpy(),
        y0.to(to_cpu).numpy(),
        float(max_norm2) + 1.0,
    )


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
    A_buf = np.empty((min(step, q), m))  # [X_blk − x₀, 1, Y_blk − y₀]
    A_buf[:, n] = 1.0
    x0, y0 = X[0].astype(np.float64), Y[0].astype(np.float64)
    gram = np.zeros((m, m))
    max_norm2 = 0.0
    for start in range(0, q, step):
        A = A_buf[: min(step, q - start)]
        np.subtract(X[start : start + A.shape[0]], x0, out=A[:, :n])
        np.subtract(Y[start : start + A.shape[0]], y0, out=A[:, n + 1 :])
        gram += A.T @ A  # (m, rows) @ (rows, m) -> (m, m), by syrk
        Xb = X[start : start + A.shape[0]]
        max_norm2 = max(max_norm2, float(np.einsum("ij,ij->i", Xb, Xb, dtype=np.float64).max()))
    return _from_shifted(gram, q, n, x0, y0, max_norm2 + 1.0)


def _from_shifted(gram: np.ndarray, q: int, n: int, x0, y0, max_norm2: float) -> Statistics:
    """S, T, yᵀy and the centred moments from the Gram matrix of [X − x₀, 1, Y − y₀]."""
    d, e = gram[:n, n] / q, gram[n + 1 :, n] / q  # mean shifts x̄ − x₀, ȳ − y₀
    C = gram[:n, :n] - q * np.outer(d, d)
    Cxy = gram[:n, n + 1 :] - q * np.outer(d, e)
    gy = np.diagonal(gram[n + 1 :, n + 1 :])
    cyy = gy - q * e * e
    gx = np.diagonal(gram[:n, :n]).copy()
    centred = Centred(x0 + d, y0 + e, C, Cxy, np.maximum(cyy, 0.0), max_norm2, gx, gy.copy())
    mx, my = centred.mean_x, centred.mean_y
    S = np.empty((n + 1, n + 1))
    S[:n, :n] = C + q * np.outer(mx, mx)
    S[:n, n] = S[n, :n] = q * mx
    S[n, n] = q  # exact
    T = np.vstack([Cxy + q * np.outer(mx, my), q * my])
    yty = centred.cyy + q * my * my
    return Statistics(torch.from_numpy(S), torch.from_numpy(T), torch.from_numpy(yty), q, centred)


def theta_of(W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """θ = [W; bᵀ] (n+1, p) in float64."""
    return torch.cat([W, b.unsqueeze(0)]).double()


def sse_from_statistics(stats: Statistics, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each target's SSE (p,) at W (n, p), b (p,) (float64, on the CPU), from the centred
    moments.

    Σᵢ (x̃ᵢθ − yᵢ)² splits into a centred part and the error of the means:
    SSEⱼ = wⱼᵀCwⱼ − 2wⱼᵀCxyⱼ + cyyⱼ + q (x̄ᵀwⱼ + bⱼ − ȳⱼ)². Near the optimum its terms
    cancel only down to the unexplained variance, not down from ‖y‖² as θᵀSθ − 2θᵀT + yᵀy
    would, so it stays exact for targets far from zero (prices, years). NumPy, not
    torch: for these (n+1)-sized products a torch call's dispatch costs more than its
    arithmetic, and this runs once per split per epoch.
    """
    c = stats.centred
    offset = c.mean_x @ W + b - c.mean_y  # (p,)
    centred = (W * (c.C @ W - 2.0 * c.Cxy)).sum(axis=0) + c.cyy  # (p,)
    return np.maximum(centred, 0.0) + stats.q * offset * offset


def sse_rounding(stats: Statistics, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A bound (p,) on the rounding error of ``sse_from_statistics(stats, W, b)``.

    Each entry of C, Cxy and cyy is a float64 sum whose rounding is about ε times the
    squares it was summed from: |ΔCᵢₖ| ≲ ε √(gᵢ gₖ) (Cauchy-Schwarz; g = gx, gy, the
    squares about the pass's shifts). Through wⱼᵀCwⱼ − 2wⱼᵀCxyⱼ + cyyⱼ that adds up to at
    most ε sⱼ², sⱼ = Σᵢ |Wᵢⱼ| √gxᵢ + √gyⱼ, and the evaluation's own rounding is of the
    same size: the terms that cancel are each at most sⱼ². So the SSE's relative error is
    about ε sⱼ² / SSEⱼ: tiny for an ordinary fit, but it grows without bound when the fit
    is almost exact (SSE ≪ cyy) or the weights are large and cancel (collinear columns),
    where a pass over the rows, which rounds each residual, stays exact.

    The other term, q oⱼ² with oⱼ = x̄ᵀwⱼ + bⱼ − ȳⱼ, cancels only inside oⱼ, whose terms
    and their rounding (the means', ε|μ| each) are at most tⱼ = Σᵢ |x̄ᵢ Wᵢⱼ| + |bⱼ| + |ȳⱼ|:
    oⱼ is off by about ε tⱼ, and q oⱼ² by q (2|oⱼ| ε tⱼ + (ε tⱼ)² + ε oⱼ²).
    ``SSE_ROUNDING_FACTOR`` scales both parts to cover the worst error measured.
    """
    c = stats.centred
    eps = np.finfo(np.float64).eps
    s = np.abs(W).T @ np.sqrt(c.gx) + np.sqrt(c.gy)  # (p,)
    t = np.abs(c.mean_x) @ np.abs(W) + np.abs(b) + np.abs(c.mean_y)  # (p,)
    o = np.abs(c.mean_x @ W + b - c.mean_y)  # (p,)
    offset = stats.q * (2.0 * o * eps * t + (eps * t) ** 2 + eps * o * o)
    return SSE_ROUNDING_FACTOR * (eps * s * s + offset)


def statistics_from_moments(moments, centre: np.ndarray, scale: np.ndarray) -> Statistics:
    """S, T and yᵀy of one split in training units, from its streamed moments.

    ``moments`` holds q, μ and the co-moment matrix C of A = [X, Y] in raw units
    (``data/moments.py``); training units are A' = (A − c) / d, c = ``centre`` and
    d = ``scale`` (m,). Then, exactly, with δ = μ − c:

        Σᵢ a'ᵢ a'ᵢᵀ = D⁻¹ (C + q δδᵀ) D⁻¹,   Σᵢ a'ᵢ = q δ / d,

    whose blocks are X'ᵀX', X'ᵀY', Y'ᵀY' and the column sums. No pass over the rows.
    The centred moments in training units, C / (d dᵀ) about (μ − c)/d, are exact too
    (the reference's stable solve and the per-epoch SSE use them); the largest row norm
    is not gathered (NaN): only a mini-batch plan needs it (``passes.max_row_norm2``).
    """
    n, q = moments.n, moments.q
    delta = (moments.anchor - centre) + moments.offset  # μ − c, about a row of the data
    gram = (moments.C + q * np.outer(delta, delta)) / np.outer(scale, scale)  # (m, m)
    sums = q * delta / scale  # (m,)
    S = np.empty((n + 1, n + 1))
    S[:n, :n], S[:n, n], S[n, :n], S[n, n] = gram[:n, :n], sums[:n], sums[:n], q
    T = np.vstack([gram[:n, n:], sums[n:]])  # (n+1, p)
    yty = np.diagonal(gram[n:, n:]).copy()
    mean = delta / scale
    C = moments.C / np.outer(scale, scale)
    G = moments.G / (scale * scale)
    cyy = np.diagonal(C)[n:].copy()
    centred = Centred(mean[:n], mean[n:], C[:n, :n], C[:n, n:], cyy, nan, G[:n], G[n:])
    return Statistics(torch.from_numpy(S), torch.from_numpy(T), torch.from_numpy(yty), q, centred)
