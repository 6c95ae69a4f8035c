"""``TrainConfig``: every setting of a training run, with its default and the reason for it.

The command line (``handgrad train``) and the estimator (``GDRegressor``) both map onto
this one dataclass, and ``check()`` validates it once, at the entry.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from handgrad.errors import UserError

OPTIMIZERS = ("auto", "gd", "sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULERS = ("auto", "none", "step", "exponential", "cosine", "plateau")
GRADIENTS = ("manual", "autograd")
PATHS = ("auto", "chained", "fused", "small", "stats")
DTYPES = ("float32", "float64")
PRECONDITIONS = ("auto", "none", "whiten")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run. Defaults reach the least-squares optimum to a
    relative gap below 1e-3 for every batch size and optimizer, or say that they did not
    (``handgrad.training.schedule`` resolves the "auto" ones for the data).
    """

    # None: 20,000, or for full-batch descent at a fixed step the epochs its slowest
    # direction needs (schedule.py); reaching the optimum (``tol``) stops far sooner.
    max_epochs: int | None = None
    # "auto" is derived from the data for the batch size and optimizer used: 1/L for
    # plain full-batch descent (L the largest eigenvalue of the Hessian, the largest
    # step that never overshoots), 1/L_B for a batch of B rows (schedule.py).
    learning_rate: float | str = "auto"
    # None is full batch: the exact gradient, and the fastest way to the optimum.
    batch_size: int | None = None
    # "auto": heavy ball with the optimal momentum for full batch at the auto rate,
    # else "gd", the lab's update w <- w - lr * grad; other names are torch.optim's.
    optimizer: str = "auto"
    # For optimizer="sgd": heavy-ball momentum, and Nesterov's variant of it.
    momentum: float = 0.0
    nesterov: bool = False
    # A schedule by short name; "auto" halves the rate on a stall for mini-batch and
    # adaptive runs (their noise ball shrinks with it) and keeps it fixed otherwise.
    scheduler: str = "auto"
    # step: epochs between decays (None: 1000); gamma: decay factor (None: 0.1 for
    # step and plateau, 0.999 for exponential).
    lr_step_size: int | None = None
    lr_gamma: float | None = None
    # Stop once the train MSE is within tol (relative) of the closed-form optimum; None:
    # 1e-7 for full batch in float32, 1e-10 in float64, 1e-4 for mini-batch. With early
    # stopping, the relative improvement of the validation loss that counts.
    tol: float | None = None
    # Epochs without a new best loss before the rate is halved ("auto" schedule) or the
    # run stops as stalled.
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
    # None: standardise the targets for the adaptive optimizers only (their steps are
    # about lr whatever the targets' units); metrics stay in the targets' units.
    standardize_targets: bool | None = None
    # "auto" whitens the features of a mini-batch run whose Hessian is ill-conditioned
    # (κ > 1000): its steps then see the same curvature in every direction, where the
    # noise of small batches and a slowest direction κ times slower than the fastest
    # would otherwise keep it from the optimum (training/precondition.py). "whiten"
    # always does, "none" never: the plain update on the standardised features.
    precondition: str = "auto"
    # "manual" chains the hand-written backward passes with no autograd graph.
    grad: str = "manual"
    # Which exact computation of the gradient: "auto" picks the fastest.
    path: str = "auto"
    # "auto": CUDA where there is one, else another accelerator torch has, else the CPU;
    # "cuda:1", "xpu" or any other device torch knows are taken as given
    # (devices.resolve_device checks that this machine has it).
    device: str = "auto"
    dtype: str = "float32"
    # Add the partial sums group by group in the data's order (torchrun), so that
    # results are bit-identical for any number of processes (issue 13).
    deterministic: bool = False

    @property
    def resolved_val_fraction(self) -> float:
        if self.val_fraction is None:
            return 0.1 if self.early_stopping else 0.0
        return self.val_fraction

    @property
    def resolved_standardize_targets(self) -> bool:
        if self.standardize_targets is None:
            return self.optimizer in ("adam", "adamw", "rmsprop", "adagrad")
        return self.standardize_targets

    @property
    def resolved_step_size(self) -> int:
        return 1000 if self.lr_step_size is None else self.lr_step_size

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
    if c.max_epochs is not None and (not isinstance(c.max_epochs, int) or c.max_epochs <= 0):
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
    if not isinstance(c.device, str):  # which devices exist: devices.resolve_device
        raise _fail("device", 'a device name such as "auto", "cpu", "cuda" or "cuda:1"', c.device)
    _choice("dtype", c.dtype, DTYPES)
    _choice("precondition", c.precondition, PRECONDITIONS)
    if not 0 <= c.momentum < 1:
        raise _fail("momentum", "in [0, 1)", c.momentum)
    if c.tol is not None and not (isinstance(c.tol, int | float) and c.tol >= 0):
        raise _fail("tol", "a number >= 0", c.tol)
    if not isinstance(c.n_iter_no_change, int) or c.n_iter_no_change <= 0:
        raise _fail("n_iter_no_change", "a positive whole number", c.n_iter_no_change)
    if c.lr_step_size is not None and (not isinstance(c.lr_step_size, int) or c.lr_step_size <= 0):
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


@dataclass(frozen=True)
class Ignored:
    """A setting given a value that would have no effect, and what it needs."""

    setting: str  # the TrainConfig field
    value: object
    needs: str  # the field whose value would give it an effect
    current: object  # that field's value now
    wanted: str  # what that field would have to be

    def message(self, spell) -> str:
        """The error, with ``spell(field, value)`` writing a setting as the front end
        does ("--momentum 0.9", or "momentum=0.9"; ``value`` None: the name alone)."""
        return (
            f"{spell(self.setting, self.value)} has no effect with "
            f"{spell(self.needs, self.current)}: it needs {spell(self.needs, None)} "
            f"{self.wanted}; set that, or drop {spell(self.setting, None)}."
        )


def ignored_settings(config: TrainConfig) -> list[Ignored]:
    """Settings that differ from their default but would change nothing in this run.

    The command line and the estimator turn each into an error in their own words
    ("--momentum 0.9 has no effect with --optimizer auto: it needs --optimizer sgd"),
    so that no setting is silently recorded and unused.
    """
    c, found = config, []
    if c.momentum != 0 and c.optimizer != "sgd":
        found.append(Ignored("momentum", c.momentum, "optimizer", c.optimizer, "sgd"))
    if c.nesterov and c.optimizer != "sgd":
        found.append(Ignored("nesterov", True, "optimizer", c.optimizer, "sgd"))
    elif c.nesterov and c.momentum == 0:
        found.append(Ignored("nesterov", True, "momentum", c.momentum, "above 0"))
    if c.lr_gamma is not None and c.scheduler not in ("step", "exponential", "plateau"):
        wanted = "step, exponential or plateau"
        found.append(Ignored("lr_gamma", c.lr_gamma, "scheduler", c.scheduler, wanted))
    if c.lr_step_size is not None and c.scheduler != "step":
        found.append(Ignored("lr_step_size", c.lr_step_size, "scheduler", c.scheduler, "step"))
    return found
