"""The one training core: minimise mse(XW + b, Y) by gradient descent.

``handgrad train``, ``GDRegressor`` and the examples all call ``Trainer``. Each epoch:

1. take the training rows in one batch, or in shuffled mini-batches (the order comes
   from the seed and the epoch number alone, so a resumed run shuffles the same way);
2. per batch, compute the loss and the gradients of W and b along the chosen path
   (``paths.py``), hand them to the optimizer, step;
3. record the train loss, the validation and test MSE and R², the rate, the gradient's
   norm; step the scheduler;
4. stop on max_epochs, on a stalled loss (tol, n_iter_no_change), on early stopping, on
   divergence, or when the caller's callback asks.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from handgrad.config import TrainConfig
from handgrad.errors import UserError
from handgrad.training import passes
from handgrad.training.metrics import gradient_norm, mse_and_r2, r2_from_mse
from handgrad.training.optim import GradientDescent, make_optimizer, make_scheduler
from handgrad.training.paths import choose_path
from handgrad.training.prepare import Prepared, Split
from handgrad.training.reference import Reference, least_squares
from handgrad.training.statistics import Statistics, sse_from_statistics, theta_of

# Training stops as diverged once the loss exceeds its best by this factor.
DIVERGENCE_FACTOR = 1e4
HISTORY_KEYS = (
    "train_mse",
    "val_mse",
    "test_mse",
    "r2_train",
    "r2_val",
    "r2_test",
    "lr",
    "grad_norm",
)


class DivergedError(UserError):
    """The loss became NaN or Inf, or grew far past its best: the rate is too large."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=1)


@dataclass
class TrainState:
    """Everything a checkpoint needs to resume bit for bit."""

    epoch: int  # epochs completed
    W: torch.Tensor
    b: torch.Tensor
    optimizer: dict
    scheduler: dict | None
    best_loss: float
    best_W: torch.Tensor
    best_b: torch.Tensor
    bad_epochs: int
    history: dict[str, list] = field(default_factory=dict)


class Trainer:
    """Train W (n, p) and b (p,) on ``data`` (already split and standardised).

    Parameters
    ----------
    data : Prepared
        From ``handgrad.training.prepare.prepare``.
    config : TrainConfig
        Checked by ``handgrad.config.check``.
    """

    def __init__(self, data: Prepared, config: TrainConfig) -> None:
        self.data, self.config = data, config
        train = data.train
        n, p = len(data.feature_names), len(data.target_names)
        # Gathered by prepare's one pass over the data (training/statistics.py).
        self.stats = train.stats
        self.reference: Reference = least_squares(self.stats)
        # Splits are evaluated every epoch: from their statistics, in O(n²p), whenever
        # that is cheaper than a pass over their rows.
        self._split_stats = {
            split.name: split.stats for split in data.splits if n + 1 < split.n_samples
        }
        self.learning_rate = self._resolve_learning_rate()
        self.path = choose_path(config, train.n_samples, n, self.stats)
        self._full_batch = config.batch_size is None or config.batch_size >= train.n_samples
        self._sst_total = float(train.sst.sum())
        self.W = torch.zeros(n, p, dtype=data.dtype, device=data.device)
        self.b = torch.zeros(p, dtype=data.dtype, device=data.device)
        self.optimizer = make_optimizer(config, [self.W, self.b], self.learning_rate)
        self.scheduler = make_scheduler(config, self.optimizer)
        self.epoch = 0
        self.best_loss = math.inf
        self.best_W, self.best_b = self.W.clone(), self.b.clone()
        self.bad_epochs = 0
        self.history: dict[str, list] = {key: [] for key in HISTORY_KEYS}
        self.stop_reason: str | None = None
        self.train_seconds = 0.0
        self._y_scale = data.y_scaler.scale
        # Near an exact fit the loss is rounding noise about 0, even below it: divergence
        # is judged against at least this fraction of the loss at W = 0, b = 0.
        initial_loss = float((self.stats.yty * self._y_scale**2).sum()) / train.n_samples
        self._loss_floor = 1e-10 * initial_loss

    # --- set-up ------------------------------------------------------------------
    def _resolve_learning_rate(self) -> float:
        if self.config.learning_rate != "auto":
            return float(self.config.learning_rate)
        return 1.0 / self.reference.largest_eigenvalue

    # --- checkpoints ---------------------------------------------------------------
    def state(self) -> TrainState:
        return TrainState(
            epoch=self.epoch,
            W=self.W.clone(),
            b=self.b.clone(),
            optimizer=self.optimizer.state_dict(),
            scheduler=None if self.scheduler is None else self.scheduler.state_dict(),
            best_loss=self.best_loss,
            best_W=self.best_W.clone(),
            best_b=self.best_b.clone(),
            bad_epochs=self.bad_epochs,
            history={key: list(values) for key, values in self.history.items()},
        )

    def load_state(self, state: TrainState) -> None:
        with torch.no_grad():
            self.W.copy_(state.W)
            self.b.copy_(state.b)
        self.optimizer.load_state_dict(state.optimizer)
        if self.scheduler is not None and state.scheduler is not None:
            self.scheduler.load_state_dict(state.scheduler)
        self.epoch, self.best_loss, self.bad_epochs = state.epoch, state.best_loss, state.bad_epochs
        self.best_W, self.best_b = state.best_W.clone(), state.best_b.clone()
        self.history = {key: list(state.history.get(key, [])) for key in HISTORY_KEYS}

    # --- the loop -------------------------------------------------------------------
    def _batches(self, split: Split):
        config = self.config
        return passes.batches(split, config.batch_size, config.shuffle, config.seed, self.epoch)

    def _train_epoch(self) -> tuple[float, float]:
        """One pass over the training rows.

        Returns the epoch's train loss (mean over its rows) and the norm of the last
        step's gradient with respect to (W, b).
        """
        train, path, W, b = self.data.train, self.path, self.W, self.b
        if self._full_batch:  # the lab's case: one step, nothing to add up
            loss, grad_W, grad_b = passes.full_batch(path, train, W, b)
            self._step(grad_W, grad_b)
            return float(loss), gradient_norm(grad_W, grad_b)
        total = 0.0
        for X, Y in self._batches(train):
            loss, grad_W, grad_b = path(X, Y, W, b)
            self._step(grad_W, grad_b)
            # Summed on the device; read back once per epoch, not once per batch.
            total = total + loss * X.shape[0]
        return float(total) / train.n_samples, gradient_norm(grad_W, grad_b)

    def _step(self, grad_W: torch.Tensor, grad_b: torch.Tensor) -> None:
        optimizer = self.optimizer
        if type(optimizer) is GradientDescent:  # w <- w - lr * grad, without torch.optim's hooks
            lr = optimizer.param_groups[0]["lr"]
            self.W.sub_(grad_W, alpha=lr)
            self.b.sub_(grad_b, alpha=lr)
        else:
            self.W.grad, self.b.grad = grad_W, grad_b
            optimizer.step()

    def _evaluate(self, name: str, split: Split | None) -> tuple[float, float]:
        if split is None:
            return math.nan, math.nan
        stats: Statistics | None = self._split_stats.get(name)
        if stats is not None:
            sse = sse_from_statistics(stats, theta_of(self.W, self.b)) * self._y_scale**2
        else:
            sse = passes.split_sse(split, self.W, self.b, self._y_scale)
        return mse_and_r2(sse, split.sst, split.n_samples)

    def _record(self, train_loss: float, grad_norm: float) -> tuple[float, float]:
        """Append this epoch's metrics; return (monitored loss, train MSE in original units)."""
        train = self.data.train
        if self.config.standardize_targets:
            train_mse, r2_train = self._evaluate("train", train)
        else:
            train_mse = train_loss
            r2_train = r2_from_mse(train_mse, self._sst_total, train.n_samples)
        val_mse, r2_val = self._evaluate("val", self.data.val)
        test_mse, r2_test = self._evaluate("test", self.data.test)
        lr = self.optimizer.param_groups[0]["lr"]
        values = (train_mse, val_mse, test_mse, r2_train, r2_val, r2_test, lr, grad_norm)
        for key, value in zip(HISTORY_KEYS, values, strict=True):
            self.history[key].append(value)
        return (val_mse if self.config.early_stopping else train_mse), train_mse

    def _check_divergence(self, train_mse: float) -> None:
        bound = DIVERGENCE_FACTOR * max(self.best_loss, self._loss_floor)
        if math.isfinite(train_mse) and train_mse <= bound:
            return
        with torch.no_grad():
            self.W.copy_(self.best_W)
            self.b.copy_(self.best_b)
        self.stop_reason = "diverged"
        stable = 2.0 / self.reference.largest_eigenvalue
        rate = self.optimizer.param_groups[0]["lr"]
        raise DivergedError(
            f"training diverged at epoch {self.epoch} (train MSE {train_mse:.4g}): the "
            f"learning rate {rate:.4g} is too large. For full-batch descent on this data "
            f"the largest stable rate is 2/L = {stable:.4g}; try --lr {stable / 2:.4g} "
            f"(the 'auto' rate 1/L), or a tenth of the current rate for other optimizers."
        )

    def _step_schedule_and_stop(self, monitored: float) -> bool:
        config = self.config
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(monitored)
        elif self.scheduler is not None:
            with warnings.catch_warnings():
                # Plain descent updates W and b itself, not through optimizer.step(),
                # which the scheduler watches for; the updates do come first.
                warnings.filterwarnings(
                    "ignore", "Detected call of `lr_scheduler.step", UserWarning
                )
                self.scheduler.step()
        threshold = self.best_loss - config.tol * abs(self.best_loss)
        if math.isinf(self.best_loss) or monitored < threshold:
            self.best_loss, self.bad_epochs = monitored, 0
            self.best_W.copy_(self.W)
            self.best_b.copy_(self.b)
        else:
            self.bad_epochs += 1
        if self.bad_epochs >= config.n_iter_no_change:
            self.stop_reason = "early_stopping" if config.early_stopping else "tol"
            return True
        return False

    def fit(
        self, callback: Callable[[Trainer], bool] | None = None, max_epochs: int | None = None
    ) -> Trainer:
        """Run epochs until a stopping rule fires or ``max_epochs`` (default: the config's).

        ``callback(trainer)`` runs after each epoch; returning True stops with reason
        "interrupted". Raises ``DivergedError`` (weights restored to the best) on divergence.
        """
        limit = self.config.max_epochs if max_epochs is None else max_epochs
        self.stop_reason = None
        started = time.perf_counter()
        try:
            while self.epoch < limit:
                train_loss, grad_norm = self._train_epoch()
                self.epoch += 1
                monitored, train_mse = self._record(train_loss, grad_norm)
                self._check_divergence(train_mse)
                if self._step_schedule_and_stop(monitored):
                    break
                if callback is not None and callback(self):
                    self.stop_reason = "interrupted"
                    break
            else:
                self.stop_reason = "max_epochs"
        finally:
            self.train_seconds += time.perf_counter() - started
        if self.config.early_stopping and self.stop_reason != "interrupted":
            with torch.no_grad():
                self.W.copy_(self.best_W)
                self.b.copy_(self.best_b)
        return self

    # --- results --------------------------------------------------------------------
    def metrics(self) -> dict:
        """Final metrics of the current weights, exact (float64), in original units."""
        data, ref = self.data, self.reference
        out = {}
        # One pass over the data for every split, at the weights and at the optimum.
        sses = passes.final_sse(data, [(self.W, self.b), (ref.W, ref.b)], self._y_scale)
        for name, split in (("train", data.train), ("val", data.val), ("test", data.test)):
            if split is None:
                out[f"{name}_mse"], out[f"r2_{name}"] = None, None
                continue
            sse = sses[name][0]
            out[f"{name}_mse"], out[f"r2_{name}"] = mse_and_r2(sse, split.sst, split.n_samples)
        train = data.train
        sse_opt = sses["train"][1]
        optimum = float(sse_opt.sum()) / train.n_samples
        out["optimum_train_mse"] = optimum
        out["gap_to_optimum"] = (out["train_mse"] - optimum) / max(optimum, 1e-300)
        out["optimum_unique"] = ref.unique
        out["epochs"] = self.epoch
        out["stop_reason"] = self.stop_reason
        out["train_seconds"] = self.train_seconds
        out["learning_rate"] = self.learning_rate
        out["path"] = f"{self.path.name}" + (
            f" ({self.config.grad})" if self.path.name == "chained" else ""
        )
        return out
