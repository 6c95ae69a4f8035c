"""The closed-form least-squares optimum, and the curvature L that sets the step size.

Both come from the sufficient statistics of the training split, gathered in one
blocked pass in float64 (so streaming data would work the same way):

    X̃ = [X, 1] (q, n+1),  S = X̃ᵀX̃ (n+1, n+1),  T = X̃ᵀY (n+1, p).

The loss C(θ) = (1/q)‖X̃θ − Y‖² of θ = [W; bᵀ] has Hessian (2/q)·S for each of the p
output columns; L is its largest eigenvalue, and descent at a fixed step is stable
below 2/L (``docs/derivations.md``, "The Hessian and the learning rate").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from handgrad.training.metrics import BLOCK_ROWS


@dataclass
class Statistics:
    """S = X̃ᵀX̃ (n+1, n+1) and T = X̃ᵀY (n+1, p), float64, over q rows."""

    S: torch.Tensor
    T: torch.Tensor
    q: int


@torch.no_grad()
def statistics(X: torch.Tensor, Y: torch.Tensor) -> Statistics:
    """Gather S and T in one blocked pass over X (q, n) and Y (q, p), in float64."""
    q, n = X.shape
    S = torch.zeros(n + 1, n + 1, dtype=torch.float64, device=X.device)
    T = torch.zeros(n + 1, Y.shape[1], dtype=torch.float64, device=X.device)
    for start in range(0, q, BLOCK_ROWS):
        Xb = X[start : start + BLOCK_ROWS].double()
        Yb = Y[start : start + BLOCK_ROWS].double()
        S[:n, :n] += Xb.T @ Xb  # (n, rows) @ (rows, n)
        S[:n, n] += Xb.sum(dim=0)
        T[:n] += Xb.T @ Yb  # (n, rows) @ (rows, p)
        T[n] += Yb.sum(dim=0)
    S[n, :n] = S[:n, n]
    S[n, n] = q
    return Statistics(S, T, q)


@dataclass
class Reference:
    """The least-squares solution θ = [W; bᵀ] and the Hessian's extreme eigenvalues."""

    W: torch.Tensor  # (n, p) float64
    b: torch.Tensor  # (p,) float64
    largest_eigenvalue: float  # L of (2/q)·S
    smallest_eigenvalue: float
    unique: bool  # False when S is singular: many θ reach the same minimum


def least_squares(stats: Statistics) -> Reference:
    """Solve the normal equations S θ = T; the minimum-norm θ when S is singular."""
    eigenvalues = torch.linalg.eigvalsh(stats.S) * (2.0 / stats.q)
    largest = float(eigenvalues[-1])
    unique = bool(eigenvalues[0] > largest * 1e-12)
    theta = torch.linalg.lstsq(stats.S.cpu(), stats.T.cpu(), driver="gelsd").solution
    return Reference(
        W=theta[:-1],
        b=theta[-1],
        largest_eigenvalue=largest,
        smallest_eigenvalue=max(float(eigenvalues[0]), 0.0),
        unique=unique,
    )
