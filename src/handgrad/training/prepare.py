"""From a ``Dataset`` to tensors ready to train on: split, standardise, place on a device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from handgrad.config import TrainConfig
from handgrad.data.dataset import Dataset
from handgrad.data.scaling import MOMENT_ROWS, Standardizer, column_moments
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


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor over ``array``, float32 or float64 as given (other dtypes become float64),
    copied only when NumPy must convert it or torch cannot wrap it (read-only memory)."""
    array = np.asarray(array)
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float64)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def _standardized(A: torch.Tensor, scaler: Standardizer, dtype, device) -> torch.Tensor:
    """scaler.transform(A) in ``dtype``, in cache-sized blocks through one reused float64
    buffer: no full-size temporary, and no fresh memory (page faults) per block."""
    a, mean, scale = A.numpy(), scaler.mean.numpy(), scaler.scale.numpy()
    out = np.empty(a.shape, dtype=torch.empty((), dtype=dtype).numpy().dtype)
    buffer = np.empty((min(MOMENT_ROWS, a.shape[0]), a.shape[1]))
    for start in range(0, a.shape[0], MOMENT_ROWS):
        rows = slice(start, start + MOMENT_ROWS)
        centred = np.subtract(a[rows], mean, out=buffer[: len(a[rows])])
        np.divide(centred, scale, out=out[rows], casting="same_kind")
    return torch.from_numpy(out).to(device)


def prepare(dataset: Dataset, config: TrainConfig) -> Prepared:
    """Split ``dataset``, fit the standardisers on the training rows, build the tensors.

    Each split's rows are taken in their order in memory (mini-batches are shuffled
    anyway), so a training split of every row needs no copy before standardising, and
    no full-size float64 temporary is ever made.
    """
    device = resolve_device(config.device)
    dtype = getattr(torch, config.dtype)
    X, Y = _tensor(dataset.X), _tensor(dataset.Y).double()
    q, n, p = X.shape[0], X.shape[1], Y.shape[1]
    splits = split_indices(q, config.resolved_val_fraction, config.test_fraction, config.seed)
    train_rows, val_rows, test_rows = (torch.from_numpy(np.sort(rows)) for rows in splits)

    def rows_of(A: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return A if len(rows) == q else A.index_select(0, rows)

    X_train, Y_train = rows_of(X, train_rows), rows_of(Y, train_rows)
    mean, std, low, high = column_moments(X_train)
    x_scaler = Standardizer.from_moments(mean, std) if config.standardize else None
    x_scaler = x_scaler or Standardizer.identity(n)
    y_scaler = Standardizer.fit(Y_train) if config.resolved_standardize_targets else None
    y_scaler = y_scaler or Standardizer.identity(p)
    names = dataset.feature_names
    constant = tuple(name for name, same in zip(names, low == high, strict=True) if same)

    def split(Xs: torch.Tensor, Ys: torch.Tensor) -> Split:
        return Split(
            X=_standardized(Xs, x_scaler, dtype, device),
            Y=_standardized(Ys, y_scaler, dtype, device),
            sst=((Ys - Ys.mean(dim=0)) ** 2).sum(dim=0),
        )

    def held_out(rows: torch.Tensor) -> Split | None:
        return split(rows_of(X, rows), rows_of(Y, rows)) if len(rows) else None

    return Prepared(
        train=split(X_train, Y_train),
        val=held_out(val_rows),
        test=held_out(test_rows),
        x_scaler=x_scaler,
        y_scaler=y_scaler,
        feature_names=dataset.feature_names,
        target_names=dataset.target_names,
        constant_features=constant,
    )
