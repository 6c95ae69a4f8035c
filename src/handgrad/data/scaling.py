"""``Standardizer``: per-column centring and scaling, fitted on the training split only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Rows per block of the moments pass: a float64 block of a few MB stays in cache.
MOMENT_ROWS = 2048


def column_moments(A: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each column's mean, standard deviation, minimum and maximum, float64 (n,) each.

    One blocked pass over A (q, n) on the CPU, with NumPy's vectorised row sums (much
    faster than a reduction over dim 0 in torch here). The sums run on x − x₀, x₀ the
    first row, so that a column far from zero keeps its precision: the variance is
    E[(x − x₀)²] − E[x − x₀]², with both terms of the size of the spread.
    """
    a = A.detach().cpu().numpy()
    q = a.shape[0]
    shift = a[0].astype(np.float64)
    low, high = a[0].copy(), a[0].copy()
    first = np.zeros_like(shift)
    second = np.zeros_like(shift)
    for start in range(0, q, MOMENT_ROWS):
        block = a[start : start + MOMENT_ROWS]
        np.minimum(low, block.min(axis=0), out=low)
        np.maximum(high, block.max(axis=0), out=high)
        d = block - shift  # (rows, n) float64
        first += d.sum(axis=0)
        second += np.einsum("ij,ij->j", d, d)
    mean_d = first / q
    variance = np.maximum(second / q - mean_d * mean_d, 0.0)
    columns = (shift + mean_d, np.sqrt(variance), low, high)
    return tuple(torch.from_numpy(np.asarray(c, dtype=np.float64)) for c in columns)


@dataclass
class Standardizer:
    """z = (x - mean) / scale, column by column.

    A constant column gets scale 1, as in scikit-learn's ``StandardScaler``: it becomes
    all zeros, its gradient is zero and its weight stays at 0, instead of a division by
    zero. ``identity(n)`` is the no-op used when standardisation is off.

    Attributes
    ----------
    mean : torch.Tensor of shape (n,)
    scale : torch.Tensor of shape (n,)
    """

    mean: torch.Tensor
    scale: torch.Tensor

    @classmethod
    def fit(cls, A: torch.Tensor) -> Standardizer:
        """Fit on A (q, n), in float64 whatever A's dtype, for exact statistics."""
        mean, std, _, _ = column_moments(A)
        return cls.from_moments(mean, std)

    @classmethod
    def from_moments(cls, mean: torch.Tensor, std: torch.Tensor) -> Standardizer:
        scale = torch.where(std > 1e-12 * mean.abs().clamp_min(1.0), std, torch.ones_like(std))
        return cls(mean, scale)

    @classmethod
    def identity(cls, n: int) -> Standardizer:
        return cls(torch.zeros(n, dtype=torch.float64), torch.ones(n, dtype=torch.float64))

    def transform(self, A: torch.Tensor) -> torch.Tensor:
        return (A - self.mean.to(A)) / self.scale.to(A)

    def inverse(self, Z: torch.Tensor) -> torch.Tensor:
        return Z * self.scale.to(Z) + self.mean.to(Z)

    def to_tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}_mean": self.mean, f"{prefix}_scale": self.scale}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], prefix: str) -> Standardizer:
        return cls(tensors[f"{prefix}_mean"].double(), tensors[f"{prefix}_scale"].double())
