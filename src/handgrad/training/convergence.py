"""When a run has reached the optimum, when it is stuck, and what to say when it is not there.

The trainer knows the exact optimum (``reference.py``), so it measures progress as the
relative gap (MSE − optimum)/optimum rather than as the loss's own changes:

- an epoch sets a *record* when its loss closes at least ``RECORD_FRACTION`` of the gap
  left by the best loss so far. An oscillating loss (momentum, a noisy batch) keeps
  setting records while it converges; a stalled one does not, whatever the scale of the
  targets. ``n_iter_no_change`` epochs without a record is a stall: the "halve" schedule
  then halves the rate, and once it may not any more, the run stops;
- a run *converged* when its final gap is at most ``CONVERGED_GAP``. One that ends above
  it, for any reason, says so in one line (``advice``) and records ``converged: false``.
"""

from __future__ import annotations

import math

from handgrad.training.precondition import AUTO_KAPPA


class NotConvergedWarning(UserWarning):
    """A run ended farther than ``CONVERGED_GAP`` from the optimum."""


# A record closes at least this fraction of the remaining gap: plain descent on a
# condition number κ closes about 2/κ per epoch, so a record comes every few epochs up
# to κ ~ 1e5, while the rounding noise of a run at its floor sets fewer and fewer.
RECORD_FRACTION = 1e-4
# A run whose train MSE is within this relative gap of the optimum counts as converged.
CONVERGED_GAP = 1e-3


def relative_gap(mse: float, optimum: float, baseline: float) -> float:
    """(mse − optimum)/optimum. ``baseline`` is the MSE of predicting the mean: an exact
    fit (optimum 0 up to rounding) is measured against 1e-12 of it instead of 0."""
    return (mse - optimum) / max(optimum, 1e-12 * baseline, 1e-300)


def is_record(value: float, best: float, optimum: float | None, tol: float) -> bool:
    """Whether ``value`` improves on ``best`` enough to count as progress.

    With ``optimum`` known (the train loss), by ``RECORD_FRACTION`` of the gap best −
    optimum; else (a validation loss) by ``tol`` of ``best`` itself.
    """
    if not math.isfinite(best):
        return math.isfinite(value)
    if optimum is None:
        return value < best - tol * abs(best)
    return value < best - RECORD_FRACTION * max(best - optimum, 0.0)


def converged(gap: float | None) -> bool:
    return gap is not None and math.isfinite(gap) and gap <= CONVERGED_GAP


# Setting names as each front end spells them.
CLI_NAMES = {
    "max_epochs": "--epochs",
    "learning_rate": "--lr auto",
    "optimizer": "--optimizer",
    "batch_size": "--batch-size",
    "standardize": "--no-standardize",
    "dtype": "--dtype float64",
    "precondition": "--precondition whiten",
}
ESTIMATOR_NAMES = {
    "max_epochs": "max_epochs",
    "learning_rate": 'learning_rate="auto"',
    "optimizer": "optimizer",
    "batch_size": "batch_size",
    "standardize": "standardize=False",
    "dtype": 'dtype="float64"',
    "precondition": 'precondition="whiten"',
}


def advice(metrics: dict, trainer, names: dict[str, str] = CLI_NAMES) -> str:
    """One line: not converged, the gap, why it stopped, and what to try."""
    config, plan = trainer.config, trainer.plan
    hints = []
    if not config.standardize:
        hints.append(f"drop {names['standardize']} (κ = {trainer.reference.condition_number:.2g})")
    if config.learning_rate != "auto":
        hints.append(f"use {names['learning_rate']}")
    if plan.optimizer in ("gd", "sgd") and trainer.full_batch and config.optimizer != "auto":
        hints.append(
            f"leave {names['optimizer']} at its default (heavy ball needs about √κ epochs, "
            f"κ = {trainer.reference.condition_number:.3g})"
        )
    kappa = trainer.reference.condition_number
    if not trainer.full_batch and trainer.whitening is None and kappa > AUTO_KAPPA:
        hints.append(f"{names['precondition']} (κ = {kappa:.3g})")
    if not trainer.full_batch:
        hints.append(f"a larger {names['batch_size']}")
    if config.dtype == "float32" and metrics["stop_reason"] == "tol":
        hints.append(f"{names['dtype']}")
    if metrics["stop_reason"] == "max_epochs" or not hints:
        hints.append(f"more {names['max_epochs']} (now {trainer.max_epochs})")
    reason = {
        "max_epochs": "it reached the epoch limit",
        "tol": "the loss stopped improving",
        "early_stopping": "the validation loss stopped improving",
        "interrupted": "it was interrupted",
        "diverged": "it diverged",
    }.get(metrics["stop_reason"], "it stopped")
    return (
        f"not converged: the train MSE is {metrics['gap_to_optimum']:.2e} above the "
        f"optimum (relative; converged means ≤ {CONVERGED_GAP:g}) after "
        f"{metrics['epochs']} epochs, as {reason}; try {', or '.join(hints)}."
    )
