"""Figure 7: every default run reaches the optimum, or says it did not.

The matrix of issue 10: {diabetes, linnerud, breast cancer's ``mean radius`` from the
other columns, a multi-output set with features scaled 1e-4 … 1e6 and targets near
3.5e5} × {full batch, batch 32, batch 1} × {gd, sgd with momentum 0.9, adam}, seeds 0–4,
every other setting at its default, through ``GDRegressor`` and through the command
line. Each cell reports the worst relative gap to the closed-form optimum and the
epochs; the goal is a gap below 1e-3 in every cell (``converged: true``). It is not a
timing: the "handgrad" column is the worst gap, the "peer" column the goal.
"""

from __future__ import annotations

import numpy as np

from handgrad.data.dataset import Dataset

DATA = ("diabetes", "linnerud", "breast_cancer", "scaled")
BATCHES = (None, 32, 1)
OPTIMIZERS = (("gd", 0.0), ("sgd", 0.9), ("adam", 0.0))
GOAL = 1e-3


def breast_cancer() -> Dataset:
    """scikit-learn's breast cancer table: ``mean radius`` from the other 29 columns,
    strongly collinear (κ of the standardised Hessian about 1.8e4)."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    names = tuple(str(name) for name in bunch.feature_names)
    return Dataset(
        X=np.ascontiguousarray(bunch.data[:, 1:]),
        Y=bunch.data[:, :1].copy(),
        feature_names=names[1:],
        target_names=names[:1],
        name="breast cancer (mean radius)",
    )


def badly_scaled(samples: int = 600, seed: int = 0) -> Dataset:
    """10 features whose scales run from 1e-4 to 1e6 (and sit off zero), 3 targets near
    3.5e5 whose R² differ (about 0.99, 0.95 and 0.89)."""
    rng = np.random.default_rng(seed)
    scales = np.logspace(-4, 6, 10)
    Z = rng.standard_normal((samples, 10))
    X = (Z + 3.0) * scales
    effects = rng.standard_normal((10, 3)) * 1e4
    noise = np.array([0.1, 0.23, 0.35]) * np.sqrt((effects**2).sum(axis=0))
    Y = 3.5e5 + Z @ effects + rng.standard_normal((samples, 3)) * noise
    return Dataset(
        X=X,
        Y=Y,
        feature_names=tuple(f"x{i}" for i in range(10)),
        target_names=("y0", "y1", "y2"),
        name="badly scaled",
    )


def dataset(name: str) -> Dataset:
    from handgrad.data.datasets import load_dataset

    if name == "breast_cancer":
        return breast_cancer()
    if name == "scaled":
        return badly_scaled()
    return load_dataset(name)
