"""The closed-form least-squares optimum, and the curvature L that sets the step size.

Both come from the sufficient statistics S = X̃ᵀX̃ and T = X̃ᵀY of the training split
(``statistics.py``), gathered in one blocked pass, so streaming data would work the same.

The loss C(θ) = (1/q)‖X̃θ − Y‖² of θ = [W; bᵀ] has Hessian (2/q)·S for each of the p
output columns; L is its largest eigenvalue, and descent at a fixed step is stable
below 2/L (``docs/derivations.md``, "The Hessian and the learning rate").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from handgrad.training.statistics import Statistics


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
    # NumPy's LAPACK, on the CPU: the statistics pass just ran NumPy's BLAS there, and
    # handing a (n+1)-sized problem to torch's own thread pool right after cost up to
    # 100 ms (eigvalsh of 101 × 101, 2 busy cores) against about 1 ms here.
    S, T = stats.S.cpu().numpy(), stats.T.cpu().numpy()
    eigenvalues = np.linalg.eigvalsh(S) * (2.0 / stats.q)
    largest = float(eigenvalues[-1])
    unique = bool(eigenvalues[0] > largest * 1e-12)
    theta = torch.from_numpy(np.linalg.lstsq(S, T, rcond=None)[0])  # gelsd: minimum norm
    return Reference(
        W=theta[:-1],
        b=theta[-1],
        largest_eigenvalue=largest,
        smallest_eigenvalue=max(float(eigenvalues[0]), 0.0),
        unique=unique,
    )
