"""``TrainConfig``: every setting of a training run, with its default and the reason for it.

The command line (``handgrad train``) and the estimator (``GDRegressor``) both map onto
this one dataclass, and ``check()`` validates it once, at the entry.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from handgrad.errors import UserError

OPTIMIZERS = ("gd", "sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULERS = ("none", "step", "exponential", "cosine", "plateau")
GRADIENTS = ("manual", "autograd")
PATHS = ("auto", "chained", "fused", "stats")
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run. Defaults reach the least-squares optimum on the
    embedded data sets to a relative gap below 1e-4.
    """

    # Plenty for full-batch descent at 1/L on standardised data; ``tol`` stops sooner.
    max_epochs: int = 20_000
    # "auto" is 1/L, L the largest eigenvalue of the Hessian: the largest step that
    # never overshoots along the steepest direction of the quadratic loss.
    learning_rate: float | str = "auto"
    # None is full batch: the exact gradient, and the fastest way to the optimum.
    batch_size: int | None = None
    # "gd" is the lab's update w <- w - lr * grad; other names are torch.optim's.
    optimizer: str = "gd"
    # For optimizer="sgd": heavy-ball momentum, and Nesterov's variant of it.
    momentum: float = 0.0
    nesterov: bool = False
    # A torch.optim.lr_scheduler by short name; "none" keeps the rate fixed.
    scheduler: str = "none"
    # step: epochs between decays; gamma: decay factor (None: 0.1 for step and
    # plateau, 0.999 for exponential).
    lr_step_size: int = 1000
    lr_gamma: float | None = None
    # Stop once the training loss has improved by less than tol * (best loss) for
    # n_iter_no_change epochs in a row. Relative, so that it does not depend on units.
    tol: float = 1e-7
    n_iter_no_change: int = 20
    # Stop on the validation loss instead, and restore the best weights.
    early_stopping: bool = False
    # Fractions of the rows held out; the validation split defaults to 0.1 when
    # early stopping needs one.
    val_fraction: float | None = None
    test_fraction: float = 0.2
    # Reshuffle the mini-batches every epoch, from seed and epoch number.
    shuffle: bool = True
    seed: int = 0
    # Standardise features (and optionally targets) on the training split: it makes
    # the Hessian well conditioned, so descent converges in far fewer epochs.
    standardize: bool = True
    standardize_targets: bool = False
    # "manual" chains the hand-written backward passes with no autograd graph.
    grad: str = "manual"
    # Which exact computation of the gradient: "auto" picks the fastest.
    path: str = "auto"
    device: str = "auto"
    dtype: str = "float32"
    # Under torchrun: add the ranks' partial sums chunk by chunk in chunk order, so that
    # results are bit-identical for any number of processes (issue 13).
    deterministic: bool = False

    @property
    def resolved_val_fraction(self) -> float:
        if self.val_fraction is None:
            return 0.1 if self.early_stopping else 0.0
        return self.val_fraction

    @property
    def resolved_gamma(self) -> float:
        if self.lr_gamma is not None:
            return self.lr_gamma
        return 0.999 if self.scheduler == "exponential" else 0.1

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _fail(name: str, rule: str, value) -> UserError:
    return UserError(f"{name} must be {rule}; got {value!r}.")


def _choice(name: str, value, choices) -> None:
    if value not in choices:
        raise UserError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}.")


def check(config: TrainConfig) -> TrainConfig:
    """Validate ``config``; raise ``UserError`` naming the setting, the rule and the value."""
    c = config
    if not isinstance(c.max_epochs, int) or c.max_epochs <= 0:
        raise _fail("max_epochs", "a positive whole number", c.max_epochs)
    lr = c.learning_rate
    if isinstance(lr, str):
        if lr != "auto":
            raise _fail("learning_rate", 'a positive number or "auto"', lr)
    elif not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise _fail("learning_rate", 'a positive number or "auto"', lr)
    if c.batch_size is not None and (not isinstance(c.batch_size, int) or c.batch_size <= 0):
        raise _fail("batch_size", "a positive whole number, or None for full batch", c.batch_size)
    _choice("optimizer", c.optimizer, OPTIMIZERS)
    _choice("scheduler", c.scheduler, SCHEDULERS)
    _choice("grad", c.grad, GRADIENTS)
    _choice("path", c.path, PATHS)
    _choice("device", c.device, DEVICES)
    _choice("dtype", c.dtype, DTYPES)
    if not 0 <= c.momentum < 1:
        raise _fail("momentum", "in [0, 1)", c.momentum)
    if c.nesterov and (c.optimizer != "sgd" or c.momentum == 0):
        raise UserError('nesterov needs optimizer "sgd" with a momentum above 0.')
    if not (isinstance(c.tol, int | float) and c.tol >= 0):
        raise _fail("tol", "a number >= 0", c.tol)
    if not isinstance(c.n_iter_no_change, int) or c.n_iter_no_change <= 0:
        raise _fail("n_iter_no_change", "a positive whole number", c.n_iter_no_change)
    if not isinstance(c.lr_step_size, int) or c.lr_step_size <= 0:
        raise _fail("lr_step_size", "a positive whole number", c.lr_step_size)
    if c.lr_gamma is not None and not 0 < c.lr_gamma <= 1:
        raise _fail("lr_gamma", "in (0, 1]", c.lr_gamma)
    for name, value in (("test_fraction", c.test_fraction), ("val_fraction", c.val_fraction)):
        if value is not None and not (isinstance(value, int | float) and 0 <= value < 1):
            raise _fail(name, "in [0, 1)", value)
    if c.resolved_val_fraction + c.test_fraction >= 1:
        raise UserError(
            f"val_fraction + test_fraction must leave rows to train on; got "
            f"{c.resolved_val_fraction} + {c.test_fraction} >= 1."
        )
    if c.early_stopping and c.resolved_val_fraction == 0:
        raise UserError("early_stopping needs a validation split: set val_fraction above 0.")
    if c.path == "stats" and c.batch_size is not None:
        raise UserError('path "stats" is full-batch only: leave batch_size unset.')
    return config
