"""``Dataset``: a table of numeric features and targets, with the names of its columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only; `handgrad train --help` imports this module
    import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Features X and targets Y in memory, as float64 (float32 kept as given), with names.

    Attributes
    ----------
    X : np.ndarray of shape (q, n)
        Features, one example a row.
    Y : np.ndarray of shape (q, p)
        Targets; always 2-D, p >= 1.
    feature_names : tuple of str
        n names, in the order of X's columns.
    target_names : tuple of str
        p names, in the order of Y's columns.
    name : str
        Where the data came from: a data set's name or a file's path.
    """

    X: np.ndarray
    Y: np.ndarray
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    name: str

    def __post_init__(self) -> None:
        q, n = self.X.shape
        if self.Y.ndim != 2 or self.Y.shape[0] != q:
            raise ValueError(f"Y must have shape ({q}, p); got {self.Y.shape}")
        if len(self.feature_names) != n or len(self.target_names) != self.Y.shape[1]:
            raise ValueError("feature_names and target_names must name every column")

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]
