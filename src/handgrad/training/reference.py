"""The closed-form least-squares optimum, and the curvature (L, μ) that sets the steps.

Both come from the sufficient statistics of the training split (``statistics.py``),
gathered in one blocked pass, so streaming data would work the same.

The optimum is solved in a numerically stable way, never through the raw normal
equations S θ = T (whose condition number is κ(X̃)², 1e20 for columns spanning 1e-4 to
1e6): the centred moments C are scaled to unit diagonal, D⁻¹CD⁻¹ (a correlation
matrix, whose condition number depends only on how collinear the columns are, not on
their units), its eigendecomposition gives the rank (eigenvalues above a tolerance) and
the pseudo-inverse, and the scaling and the centring are undone: W = D⁻¹ V Λ⁺ Vᵀ D⁻¹ Cxy,
b = ȳ − x̄ᵀW. It equals ``numpy.linalg.lstsq`` on the data to about 1e-10 in the loss.

The loss C(θ) = (1/q)‖X̃θ − Y‖² of θ = [W; bᵀ] has Hessian H = (2/q)·S for each of the p
output columns; L and μ are its largest and smallest non-zero eigenvalues: descent at a
fixed step is stable below 2/L, and κ = L/μ sets how many epochs it needs
(``docs/derivations.md``, "The Hessian and the learning rate").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from handgrad.training.statistics import Statistics

# Eigenvalues of the unit-diagonal Gram matrix below this fraction of the largest count
# as zero: those of a Gram matrix carry an absolute error of about n·ε·λ_max, so a
# singular value of the scaled data below √(RANK_RTOL) ≈ 1e-7 of the largest cannot be
# told from zero through the statistics.
RANK_RTOL = 1e-14


@dataclass
class Reference:
    """The least-squares solution θ = [W; bᵀ], its loss, and the Hessian's spectrum."""

    W: torch.Tensor  # (n, p) float64
    b: torch.Tensor  # (p,) float64
    sse: np.ndarray  # (p,) each target's SSE at the optimum, in training units
    largest_eigenvalue: float  # L of H = (2/q)·S
    smallest_eigenvalue: float  # μ: the smallest non-zero eigenvalue of H
    unique: bool  # False when X̃ has deficient rank: many θ reach the same minimum
    rank: int  # of X̃ = [X, 1]

    @property
    def condition_number(self) -> float:
        return self.largest_eigenvalue / self.smallest_eigenvalue


def least_squares(stats: Statistics) -> Reference:
    """The minimum-norm (in scaled units) least-squares θ, by the stable solve above."""
    c = stats.centred
    n = c.C.shape[0]
    # A constant column's variance may round to just below 0: it is 0 (a test's fuzzed
    # CSV once printed numpy's "invalid value encountered in sqrt" for one).
    scale = np.sqrt(np.maximum(np.diagonal(c.C), 0.0))
    scale = np.where(scale > 0, scale, 1.0)  # a constant column: its weight stays 0
    corr = c.C / scale[:, None] / scale[None, :]  # (n, n), unit diagonal
    values, vectors = np.linalg.eigh(corr)
    keep = values > RANK_RTOL * n * values[-1]
    rhs = vectors[:, keep].T @ (c.Cxy / scale[:, None])  # (r, p)
    W = (vectors[:, keep] @ (rhs / values[keep][:, None])) / scale[:, None]  # (n, p)
    b = c.mean_y - c.mean_x @ W
    explained = np.einsum("ij,ij->j", W, c.Cxy)
    sse = np.maximum(c.cyy - explained, 0.0)
    rank = int(keep.sum()) + 1  # the intercept's column adds one
    largest, smallest = _hessian_extremes(stats, rank)
    return Reference(
        W=torch.from_numpy(np.ascontiguousarray(W)),
        b=torch.from_numpy(np.ascontiguousarray(b)),
        sse=sse,
        largest_eigenvalue=largest,
        smallest_eigenvalue=smallest,
        unique=rank == n + 1,
        rank=rank,
    )


def _hessian_extremes(stats: Statistics, rank: int) -> tuple[float, float]:
    """L and μ of H = (2/q)·S, S in the training units (the units the steps are taken in).

    The eigenvalues of S come from LAPACK on S itself: the largest to full relative
    precision; the smallest non-zero one, the rank-th from the top, to an absolute
    precision of about ε·L, enough to set a step (κ beyond 1e14 is hopeless anyway).
    """
    # NumPy's LAPACK, on the CPU: handing an (n+1)-sized problem to torch's own thread
    # pool right after the statistics pass cost up to 100 ms (101 × 101, 2 busy cores)
    # against about 1 ms here.
    eigenvalues = np.linalg.eigvalsh(stats.S.numpy()) * (2.0 / stats.q)
    largest = float(eigenvalues[-1])
    smallest = float(eigenvalues[-rank]) if rank > 0 else largest
    return largest, max(smallest, largest * 1e-16, 1e-300)
