"""The figures of a run: loss curves, and predicted against true.

Drawn with ``matplotlib.figure.Figure`` and its Agg canvas, not ``pyplot``: no display,
no global registry of figures, and a second less to import. Log-scale ticks are labelled
in plain text (``1e-05``) rather than TeX-like math, whose parser took most of the
drawing time, and the margins are fixed rather than measured by ``tight_layout``, which
draws every figure twice.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from handgrad.runs.atomic import write_atomic


class _DistinctLogFormatter(LogFormatter):
    """``LogFormatter``, with as many significant digits as it takes for the labels it
    shows to differ: on an axis spanning less than a decade it labels minor ticks with one
    digit, so 2.1e-8, 2.2e-8, ... all read "2e-08"."""

    def format_ticks(self, values):
        labels = super().format_ticks(values)
        shown = [k for k, label in enumerate(labels) if label]
        for digits in range(1, 8):
            if len({labels[k] for k in shown}) == len(shown):
                break
            for k in shown:
                labels[k] = self.fix_minus(f"{values[k]:.{digits + 1}g}")
        return labels


def _log_scale(ax, which: str) -> None:
    """Put the ``which`` ("x" or "y") axis of ``ax`` on a log scale with plain labels."""
    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    axis.set_major_formatter(LogFormatter())
    # Minor ticks are labelled too when the axis spans less than about a decade.
    axis.set_minor_formatter(_DistinctLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.4)))


def draw(job: dict) -> None:
    """Draw the figures a run's ``job`` describes (plain data, so that it travels as JSON).

    ``job["loss"]``: the keyword arguments of ``loss_curves``; ``job["scatter"]``: those of
    ``predicted_vs_true``, with the arrays as nested lists.
    """
    loss_curves(**(job["loss"] | {"path": Path(job["loss"]["path"])}))
    scatter = job["scatter"]
    predicted_vs_true(
        np.asarray(scatter["Y_true"]),
        np.asarray(scatter["Y_pred"]),
        scatter["names"],
        scatter["r2"],
        scatter["split"],
        Path(scatter["path"]),
    )


def _save(fig: Figure, path: Path) -> None:
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def loss_curves(history: dict[str, list], optimum: float | None, path: Path) -> None:
    """Two panels: the MSE of each split by epoch (log-log), and the train MSE's gap to
    the closed-form optimum (log scale), which shows the rate of convergence.
    """
    fig = Figure(figsize=(10, 4.2))
    ax, gap_ax = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.12, top=0.92, wspace=0.3)
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
    _log_scale(ax, "x")
    if any_positive:  # an exact fit (MSE 0 throughout) has nothing to show on a log scale
        _log_scale(ax, "y")
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
            _log_scale(gap_ax, "y")
    gap_ax.set_xlabel("epoch")
    gap_ax.set_ylabel("(train MSE − optimum) / optimum")
    gap_ax.set_title("Relative gap to the optimum")
    gap_ax.grid(True, which="both", alpha=0.3)
    _save(fig, path)


# Panels in predicted_vs_true.png at most: beyond, the targets with the lowest R².
MAX_PANELS = 12


def predicted_vs_true(
    Y_true: np.ndarray,
    Y_pred: np.ndarray,
    names: list[str],
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
    width, height = 3.6 * columns + 0.6, 3.6 * rows + 0.6
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(rows, columns, squeeze=False)
    # Margins in inches, whatever the grid's size: labels on the left and below, titles above.
    fig.subplots_adjust(
        left=0.8 / width,
        right=1 - 0.15 / width,
        bottom=0.6 / height,
        top=1 - 0.6 / height,
        wspace=0.4,
        hspace=0.45,
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
    _save(fig, path)
