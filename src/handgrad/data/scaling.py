"""``Standardizer``: per-column centring and scaling, fitted on the training split only."""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
        std, mean = torch.std_mean(A.double(), dim=0, correction=0)  # one pass
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
