"""Figure 4, time to solution: ``GDRegressor().fit`` against scikit-learn's fits.

Synthetic float32 data, 200,000 × 100 → 10 (Y = XW + b + noise). Whole fits with
default parameters, each to its own default tolerance, timed in the same process in
alternating rounds (medians): ``GDRegressor()``, ``LinearRegression()`` and
``MultiOutputRegressor(SGDRegressor())``. Each one's training R² and MSE are reported,
so that speed is not bought with accuracy. Goals: ≤ 1.0x LinearRegression's time,
≤ 0.2x SGDRegressor's.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from sklearn.linear_model import LinearRegression, SGDRegressor
from sklearn.multioutput import MultiOutputRegressor

from benchmarks.timing import Result
from handgrad import GDRegressor
from handgrad.data.dataset import Dataset
from handgrad.training import Trainer, prepare

N, P = 100, 10


def _data(q: int):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((q, N), dtype=np.float32)
    W = rng.standard_normal((N, P), dtype=np.float32)
    Y = X @ W + 0.5 + 0.5 * rng.standard_normal((q, P), dtype=np.float32)
    return X, Y


def _scores(model, X, Y) -> tuple[float, float]:
    """R² (variance-weighted over targets) and MSE (per example, summed over targets)."""
    residual = model.predict(X).astype(np.float64) - Y
    sse = float((residual**2).sum())
    sst = float(((Y - Y.mean(axis=0, dtype=np.float64)) ** 2).sum())
    return 1.0 - sse / sst, sse / X.shape[0]


def _stages(model: GDRegressor, X, Y) -> str:
    """Where a default fit's time goes: the same stages as ``fit``, timed one by one."""
    config = model._config()
    dataset = Dataset(
        X=X,
        Y=Y,
        feature_names=tuple(f"x{j}" for j in range(X.shape[1])),
        target_names=tuple(f"y{j}" for j in range(Y.shape[1])),
        name="fig4",
    )
    started = time.perf_counter()
    data = prepare(dataset, config)
    prepared = time.perf_counter()
    trainer = Trainer(data, config)  # statistics S, T and the closed-form reference
    built = time.perf_counter()
    trainer.fit()
    return (
        f"GDRegressor's stages, timed once after the rounds: prepare (copy, split, "
        f"standardise) {prepared - started:.3g} s, statistics + reference "
        f"{built - prepared:.3g} s, {trainer.epoch} epochs {trainer.train_seconds:.3g} s"
    )


def run(quick: bool) -> list[Result]:
    q = 20_000 if quick else 200_000
    X, Y = _data(q)
    makers = {
        "GDRegressor": GDRegressor,
        "LinearRegression": LinearRegression,
        "SGDRegressor": lambda: MultiOutputRegressor(SGDRegressor()),
    }
    GDRegressor().fit(X[:1000], Y[:1000]), LinearRegression().fit(X[:1000], Y[:1000])
    seconds: dict[str, list[float]] = {name: [] for name in makers}
    models = {}
    names = list(makers)
    for round_ in range(1 if quick else 3):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            models[name] = makers[name]().fit(X, Y)
            seconds[name].append(time.perf_counter() - started)
    t = {name: statistics.median(s) for name, s in seconds.items()}
    scores = {name: _scores(model, X, Y) for name, model in models.items()}
    gd = models["GDRegressor"]
    accuracy = "; ".join(f"{name} R² {r2:.6f}, MSE {mse:.6g}" for name, (r2, mse) in scores.items())
    notes = [
        f"training-set accuracy: {accuracy}",
        f"GDRegressor: path {gd._trainer.path.name!r}, {gd.n_iter_} epochs, "
        f"{t['GDRegressor']:.3g} s; LinearRegression {t['LinearRegression']:.3g} s; "
        f"SGDRegressor ×{P} {t['SGDRegressor']:.3g} s",
        _stages(gd, X, Y),
    ]
    size = f"({q:,}, {N}) → {P} float32"
    return [
        Result(
            figure="4 time to solution",
            case=f"GDRegressor().fit vs LinearRegression().fit, {size}",
            handgrad=t["GDRegressor"],
            peer=t["LinearRegression"],
            peer_name="LinearRegression().fit",
            goal=1.0,
            notes=notes,
        ),
        Result(
            figure="4 time to solution",
            case=f"GDRegressor().fit vs MultiOutputRegressor(SGDRegressor()).fit, {size}",
            handgrad=t["GDRegressor"],
            peer=t["SGDRegressor"],
            peer_name="MultiOutputRegressor(SGDRegressor()).fit",
            goal=0.2,
            notes=notes[:1],
        ),
    ]
