"""The embedded data sets: nothing is downloaded."""

from __future__ import annotations

import numpy as np

from handgrad.data.dataset import Dataset
from handgrad.errors import UserError

DATASETS = ("diabetes", "linnerud", "synthetic")


def diabetes() -> Dataset:
    """scikit-learn's diabetes data: 442 patients, 10 features, 1 target (progression)."""
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes()
    return Dataset(
        X=np.asarray(bunch.data, dtype=np.float64),
        Y=np.asarray(bunch.target, dtype=np.float64).reshape(-1, 1),
        feature_names=tuple(bunch.feature_names),
        target_names=("progression",),
        name="diabetes",
    )


def linnerud() -> Dataset:
    """scikit-learn's Linnerud data: 3 exercises (features) -> 3 body measurements."""
    from sklearn.datasets import load_linnerud

    bunch = load_linnerud()
    return Dataset(
        X=np.asarray(bunch.data, dtype=np.float64),
        Y=np.asarray(bunch.target, dtype=np.float64),
        feature_names=tuple(bunch.feature_names),
        target_names=tuple(bunch.target_names),
        name="linnerud",
    )


def synthetic(
    samples: int = 1000, features: int = 10, targets: int = 1, noise: float = 0.1, seed: int = 0
) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """A linear problem Y = X W + b + noise with known W (n, p) and b (p,).

    With ``samples=50, features=13, targets=3`` it is the classic lab's random problem.
    Returns the data set, W and b.
    """
    for name, value in (("samples", samples), ("features", features), ("targets", targets)):
        if value <= 0:
            raise UserError(f"--{name} must be a positive whole number; got {value}.")
    if noise < 0:
        raise UserError(f"--noise must be >= 0; got {noise}.")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((samples, features))
    W = rng.standard_normal((features, targets))
    b = rng.standard_normal(targets)
    Y = X @ W + b + noise * rng.standard_normal((samples, targets))
    data = Dataset(
        X=X,
        Y=Y,
        feature_names=tuple(f"x{i}" for i in range(features)),
        target_names=tuple(f"y{j}" for j in range(targets)),
        name=f"synthetic({samples}x{features}->{targets}, noise={noise})",
    )
    return data, W, b


def load_dataset(name: str, **synthetic_options) -> Dataset:
    """One of ``DATASETS`` by name; ``synthetic_options`` size the synthetic one."""
    if name == "diabetes":
        return diabetes()
    if name == "linnerud":
        return linnerud()
    if name == "synthetic":
        return synthetic(**synthetic_options)[0]
    raise UserError(f"unknown data set {name!r}; choose one of: {', '.join(DATASETS)}.")
