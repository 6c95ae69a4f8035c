"""From a ``Dataset`` to tensors ready to train on: split, standardise, place on a device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from handgrad.config import TrainConfig
from handgrad.data.dataset import Dataset
from handgrad.data.scaling import Standardizer
from handgrad.errors import UserError


@dataclass
class Split:
    """One split's tensors, in training units (features standardised; targets too when asked).

    ``sst`` is each target's total sum of squares about this split's mean, in the
    targets' original units, float64 (p,): the denominator of R².
    """

    X: torch.Tensor  # (q, n)
    Y: torch.Tensor  # (q, p)
    sst: torch.Tensor  # (p,)

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]


@dataclass
class Prepared:
    train: Split
    val: Split | None
    test: Split | None
    x_scaler: Standardizer
    y_scaler: Standardizer
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    constant_features: tuple[str, ...]


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA, else Apple's MPS, else the CPU. Fails clearly when one is missing."""
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cuda" and not cuda:
        raise UserError("--device cuda: no CUDA device is available here; use --device cpu.")
    if name == "mps" and not mps:
        raise UserError("--device mps: no Apple MPS device is available here; use --device cpu.")
    return torch.device(name)


def split_indices(q: int, val_fraction: float, test_fraction: float, seed: int):
    """Seeded row indices for (train, val, test); each held-out split gets >= 1 row if asked."""
    order = np.random.default_rng(seed).permutation(q)
    n_test = max(1, round(q * test_fraction)) if test_fraction > 0 else 0
    n_val = max(1, round(q * val_fraction)) if val_fraction > 0 else 0
    if q - n_test - n_val < 1:
        raise UserError(
            f"{q} rows leave none to train on after the test ({n_test}) and validation "
            f"({n_val}) splits; lower --test-fraction/--val-fraction or give more data."
        )
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]


def prepare(dataset: Dataset, config: TrainConfig) -> Prepared:
    """Split ``dataset``, fit the standardisers on the training rows, build the tensors."""
    device = resolve_device(config.device)
    dtype = getattr(torch, config.dtype)
    X = torch.from_numpy(np.array(dataset.X, dtype=np.float64))  # a copy: inputs may be read-only
    Y = torch.from_numpy(np.array(dataset.Y, dtype=np.float64))
    train_rows, val_rows, test_rows = split_indices(
        dataset.n_samples, config.resolved_val_fraction, config.test_fraction, config.seed
    )
    n, p = X.shape[1], Y.shape[1]
    X_train = X[train_rows]
    x_scaler = Standardizer.fit(X_train) if config.standardize else Standardizer.identity(n)
    y_scaler = Standardizer.fit(Y[train_rows]) if config.standardize_targets else None
    y_scaler = y_scaler or Standardizer.identity(p)
    spread = X_train.max(dim=0).values - X_train.min(dim=0).values
    constant = tuple(name for name, s in zip(dataset.feature_names, spread, strict=True) if s == 0)

    def make(rows) -> Split | None:
        if len(rows) == 0:
            return None
        Xs, Ys = X[rows], Y[rows]
        sst = ((Ys - Ys.mean(dim=0)) ** 2).sum(dim=0)
        return Split(
            X=x_scaler.transform(Xs).to(device=device, dtype=dtype).contiguous(),
            Y=y_scaler.transform(Ys).to(device=device, dtype=dtype).contiguous(),
            sst=sst,
        )

    return Prepared(
        train=make(train_rows),
        val=make(val_rows),
        test=make(test_rows),
        x_scaler=x_scaler,
        y_scaler=y_scaler,
        feature_names=dataset.feature_names,
        target_names=dataset.target_names,
        constant_features=constant,
    )
