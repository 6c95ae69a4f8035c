"""The figures of a run: loss curves, and predicted against true."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from handgrad.runs.atomic import write_atomic  # noqa: E402


def _save(fig, path: Path) -> None:
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def loss_curves(history: dict[str, list], optimum: float | None, path: Path) -> None:
    """Two panels: the MSE of each split by epoch (log-log), and the train MSE's gap to
    the closed-form optimum (log scale), which shows the rate of convergence.
    """
    fig, (ax, gap_ax) = plt.subplots(1, 2, figsize=(10, 4.2))
    epochs = np.arange(1, len(history["train_mse"]) + 1)
    any_positive = False
    for key, label in (("train_mse", "train"), ("val_mse", "validation"), ("test_mse", "test")):
        values = np.array(history[key], dtype=float)
        if np.isfinite(values).any():
            ax.plot(epochs, values, label=label)
            any_positive |= bool((values > 0).any())
    has_optimum = optimum is not None and math.isfinite(optimum) and optimum > 0
    if has_optimum:
        ax.axhline(optimum, color="gray", linestyle="--", label="least-squares optimum (train)")
    ax.set_xscale("log")
    if any_positive:  # an exact fit (MSE 0 throughout) has nothing to show on a log scale
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE  (1/q) Σ (ŷ − y)²")
    ax.set_title("Loss by epoch")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    if has_optimum:
        gap = (np.array(history["train_mse"], dtype=float) - optimum) / optimum
        positive = gap > 0
        gap_ax.plot(epochs[positive], gap[positive], color="C0")
        if positive.any():
            gap_ax.set_yscale("log")
    gap_ax.set_xlabel("epoch")
    gap_ax.set_ylabel("(train MSE − optimum) / optimum")
    gap_ax.set_title("Relative gap to the optimum")
    gap_ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


# Panels in predicted_vs_true.png at most: beyond, the targets with the lowest R².
MAX_PANELS = 12


def predicted_vs_true(
    Y_true: np.ndarray,
    Y_pred: np.ndarray,
    names: tuple[str, ...],
    r2: list[float | None],
    split: str,
    path: Path,
) -> None:
    """One scatter panel per target, predictions against targets with the line y = x, in
    a grid of up to 4 columns. Beyond ``MAX_PANELS`` targets, the ones with the lowest
    R² are drawn, and the title says so."""
    p = Y_true.shape[1]
    order = list(range(p))
    if p > MAX_PANELS:
        key = [(v if v is not None and math.isfinite(v) else math.inf) for v in r2]
        order = sorted(order, key=lambda j: key[j])[:MAX_PANELS]
    columns = min(len(order), 4)
    rows = math.ceil(len(order) / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.6 * columns + 0.6, 3.6 * rows + 0.5), squeeze=False
    )
    for ax, j in zip(axes.flat, order, strict=False):
        y_true, y_pred = Y_true[:, j], Y_pred[:, j]
        ax.scatter(y_true, y_pred, s=10, alpha=0.7)
        low = float(min(y_true.min(), y_pred.min()))
        high = float(max(y_true.max(), y_pred.max()))
        ax.plot([low, high], [low, high], color="gray", linestyle="--", label="ŷ = y")
        ax.set_xlabel(f"true {names[j]}")
        ax.set_ylabel(f"predicted {names[j]}")
        if r2[j] is not None and math.isfinite(r2[j]):
            ax.set_title(f"{names[j]}: R² {r2[j]:.3f}", fontsize=10)
    for ax in list(axes.flat)[len(order) :]:
        ax.axis("off")
    title = f"Predicted against true ({split} split)"
    if p > MAX_PANELS:
        title += f": the {MAX_PANELS} targets of {p} with the lowest R²"
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
