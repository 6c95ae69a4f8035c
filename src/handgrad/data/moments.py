"""The moments pass: per split, the count, mean and co-moment matrix of [X, Y], streamed.

For the columns A = [X, Y] (m = n + p) of one split's rows, the pass keeps the row
count q, the mean μ (m,) and the co-moment matrix C = Σᵢ (aᵢ − μ)(aᵢ − μ)ᵀ (m, m), all
float64. Each chunk's own (q, μ, C) is computed about the chunk's mean, then merged by
Chan et al.'s parallel formula:

    q = q_a + q_b,   δ = μ_b − μ_a,   μ = μ_a + δ q_b / q,
    C = C_a + C_b + δ δᵀ q_a q_b / q,

so a column far from zero keeps its precision (nothing of the form E[x²] − E[x]² is
ever formed). C's diagonal is each column's M2 (the variance times q); its blocks give
the standardised sufficient statistics of ``training/statistics.py`` exactly, so this
one pass over the data is all the ``stats`` path needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from handgrad.data.splitting import RowSplit
from handgrad.data.stream import checked_chunk


@dataclass
class Moments:
    """q, μ (m,) and C (m, m) of one split's rows of A = [X, Y]; min and max of X."""

    m: int
    n: int
    q: int = 0
    mean: np.ndarray = field(default=None)
    C: np.ndarray = field(default=None)
    low: np.ndarray = field(default=None)
    high: np.ndarray = field(default=None)

    def __post_init__(self) -> None:
        self.mean = np.zeros(self.m)
        self.C = np.zeros((self.m, self.m))
        self.low = np.full(self.n, np.inf)
        self.high = np.full(self.n, -np.inf)

    def add(self, A: np.ndarray) -> None:
        """Merge the rows A (rows, m), float64, into these moments (A is overwritten)."""
        rows = A.shape[0]
        if rows == 0:
            return
        np.minimum(self.low, A[:, : self.n].min(axis=0), out=self.low)
        np.maximum(self.high, A[:, : self.n].max(axis=0), out=self.high)
        mean_b = A.mean(axis=0)
        A -= mean_b
        C_b = A.T @ A  # (m, rows) @ (rows, m): by syrk, a product with its own transpose
        total = self.q + rows
        delta = mean_b - self.mean
        self.C += C_b
        self.C += np.outer(delta, delta) * (self.q * rows / total)
        self.mean += delta * (rows / total)
        self.q = total

    @property
    def std(self) -> np.ndarray:
        """Each column's population standard deviation (m,)."""
        return np.sqrt(np.maximum(np.diagonal(self.C), 0.0) / max(self.q, 1))


def moments_pass(source, split: RowSplit, dtype: str = "float64") -> list[Moments]:
    """One pass over ``source``: the moments of the train, validation and test rows.

    Every cell is checked on the way (``checked_chunk``), so a bad cell ends the run
    here, before anything is trained or written.
    """
    n, p = len(source.feature_names), len(source.target_names)
    result = [Moments(n + p, n) for _ in range(3)]
    buffer = np.empty((0, n + p))
    for chunk in source.chunks():
        checked_chunk(source, chunk, dtype)
        rows = chunk.rows
        if buffer.shape[0] < rows:
            buffer = np.empty((rows, n + p))
        A = buffer[:rows]
        A[:, :n], A[:, n:] = chunk.X, chunk.Y
        labels = split.labels(chunk.start, rows)
        if labels is None:
            result[0].add(A)
            continue
        for k, moments in enumerate(result):
            moments.add(A[labels == k])
    return result
