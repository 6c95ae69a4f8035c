"""The one training core: minimise mse(XW + b, Y) by gradient descent.

``handgrad train``, ``GDRegressor`` and the examples all call ``Trainer``. Each epoch:

1. take the training rows in one batch, or in shuffled mini-batches (the order comes
   from the seed and the epoch number alone, so a resumed run shuffles the same way);
2. per batch, compute the loss and the gradients of W and b along the chosen path
   (``paths.py``), hand them to the optimizer, step;
3. record the train MSE, the validation and test MSE and R², all of the weights as they
   are after the epoch (so the curves line up and the best weights are the ones whose
   loss was recorded as the best), the rate, the gradient's norm; step the schedule;
4. stop at the optimum (the relative gap below tol), on a stall (``convergence.py``), on
   early stopping, on divergence, at max_epochs, or when the caller's callback asks.

The optimizer, the rate and the schedule "auto" resolve in ``schedule.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from handgrad.config import TrainConfig
from handgrad.data.stream import pass_threads
from handgrad.errors import UserError
from handgrad.training import convergence, passes, precondition
from handgrad.training.averaging import IterateAverage
from handgrad.training.metrics import gradient_norm, mse_and_r2, r2_from_mse
from handgrad.training.optim import GradientDescent, make_optimizer
from handgrad.training.paths import choose_path
from handgrad.training.precondition import Whitening
from handgrad.training.prepare import Prepared, Split
from handgrad.training.reference import Reference, least_squares
from handgrad.training.schedule import Plan, Schedule, plan
from handgrad.training.statistics import Statistics, sse_from_statistics

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
    best_epoch: int = 0
    progress_best: float = math.inf  # the loss of the last record (convergence.py)
    average: dict | None = None  # the iterate average of a stochastic run (averaging.py)
    # Where an epoch stopped part way: (groups done, chunks done of the next group, the
    # last step's gradient norm), in the epoch's order (passes.batches); None between epochs.
    position: tuple | None = None
    coordinates: torch.Tensor | None = None  # V of a whitened run (precondition.py)
    whitening: dict | None = None  # its maps M and M⁺, in whose basis V lives


def on_cpu(state: TrainState) -> TrainState:
    """``state`` with every tensor in it copied to the CPU, in dicts and lists too."""

    def move(value):
        if isinstance(value, torch.Tensor):
            return value.detach().to("cpu", copy=True)
        if isinstance(value, dict):
            return {key: move(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(move(item) for item in value)
        return value

    return TrainState(**{key: move(value) for key, value in vars(state).items()})


class Trainer:
    """Train W (n, p) and b (p,) on ``data`` (already split and standardised).

    Parameters
    ----------
    data : Prepared
        From ``handgrad.training.prepare.prepare``.
    config : TrainConfig
        Checked by ``handgrad.config.check``.
    reducer : handgrad.distributed.Reducer, optional
        Under torchrun: each rank passes over its own chunks, and the partial sums meet
        in one all-reduce per pass or step (``distributed/sharded.py``).
    whitening : Whitening, optional
        Step in these coordinates, whatever ``config.precondition`` says: those of an
        earlier trainer whose state this one continues (``GDRegressor.partial_fit``).
    """

    def __init__(self, data: Prepared, config: TrainConfig, reducer=None, whitening=None) -> None:
        self.data, self.config, self.reducer = data, config, reducer
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
        q = train.n_samples
        self.full_batch = config.batch_size is None or config.batch_size >= q
        # A batch of all rows or more is full batch: said, not silently done.
        self.batch_note = ""
        if config.batch_size is not None and config.batch_size >= q:
            self.batch_note = (
                f"batch size {config.batch_size} is at least the {q} training rows: "
                "each epoch is one full-batch step"
            )
        # An ill-conditioned mini-batch run steps in whitened coordinates V, θ = MV.
        whiten, self.precondition_note = precondition.choose(
            config, self.reference, self.full_batch, n
        )
        if whitening is not None:
            whiten, self.precondition_note = True, "whitened features (the fit's coordinates)"
        elif whiten:
            whitening = Whitening(self.stats, data.dtype, data.device)
        self.whitening = whitening
        # Only a mini-batch plan needs the largest row norm: one pass over the rows.
        max_row_norm2 = 0.0
        if not self.full_batch:
            max_row_norm2 = self.row_passes.max_row_norm2(train, self.whitening)
        self.plan: Plan = plan(config, self.reference, max_row_norm2, q, whitened=whiten)
        self.learning_rate = self.plan.learning_rate
        self.path = choose_path(config, q, n, self.stats, data.device)
        self.W = torch.zeros(n, p, dtype=data.dtype, device=data.device)
        self.b = torch.zeros(p, dtype=data.dtype, device=data.device)
        self.V = None if self.whitening is None else self.whitening.coordinates(self.W, self.b)
        momentum = self.plan.momentum
        self.optimizer = make_optimizer(
            self.plan.optimizer,
            [self.W, self.b] if self.V is None else [self.V],
            self.learning_rate,
            momentum,
            config.nesterov,
        )
        self.scheduler = Schedule(self.plan, self.optimizer, config)
        self.max_epochs = self.plan.max_epochs
        self.epoch = 0
        self.best_loss, self.best_epoch = math.inf, 0
        self.best_W, self.best_b = self.W.clone(), self.b.clone()
        self.average = IterateAverage(self.W, self.b, enabled=not self.full_batch)
        self.bad_epochs, self._progress_best = 0, math.inf
        self.history: dict[str, list] = {key: [] for key in HISTORY_KEYS}
        self.stop_reason: str | None = None
        self.train_seconds = 0.0
        # Mini-batch epochs: called after each chunk; True stops the epoch there, with
        # its position kept for a checkpoint (cli/train.py, for streamed data).
        self.chunk_hook: Callable[[Trainer], bool] | None = None
        self.position: tuple | None = None
        self._y_scale = data.y_scaler.scale
        self._y_units = y_units = self._y_scale.double().numpy() ** 2  # to targets' units
        self._sst_totals = {
            name: float(split.sst.sum())
            for name, split in (("train", train), ("val", data.val), ("test", data.test))
            if split is not None
        }
        self.optimum_sse = self.reference.sse * y_units  # (p,)
        self.optimum_mse = float(self.optimum_sse.sum()) / q
        # The MSE of predicting the mean: the scale an exact fit's gap is measured on.
        self.baseline = float((self.stats.centred.cyy * y_units).sum()) / q
        # Near an exact fit the loss is rounding noise about 0: divergence is judged
        # against at least this fraction of the loss at W = 0, b = 0.
        self._loss_floor = 1e-10 * float((self.stats.yty.numpy() * y_units).sum()) / q

    # --- checkpoints ---------------------------------------------------------------
    def state(self) -> TrainState:
        """The whole state, on the CPU: a checkpoint or a pickled estimator taken on one
        device loads on any other (``load_state`` puts it on this trainer's)."""
        return on_cpu(
            TrainState(
                epoch=self.epoch,
                W=self.W,
                b=self.b,
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(),
                best_loss=self.best_loss,
                best_W=self.best_W,
                best_b=self.best_b,
                bad_epochs=self.bad_epochs,
                history={key: list(values) for key, values in self.history.items()},
                best_epoch=self.best_epoch,
                progress_best=self._progress_best,
                average=self.average.state_dict(),
                position=self.position,
                coordinates=self.V,
                whitening=None if self.whitening is None else self.whitening.state_dict(),
            )
        )

    def load_state(self, state: TrainState) -> None:
        with torch.no_grad():
            self.W.copy_(state.W)
            self.b.copy_(state.b)
        self.optimizer.load_state_dict(state.optimizer)
        if state.scheduler is not None:
            self.scheduler.load_state_dict(state.scheduler)
        self.epoch, self.best_loss, self.bad_epochs = state.epoch, state.best_loss, state.bad_epochs
        self.best_epoch, self._progress_best = state.best_epoch, state.progress_best
        if state.average is not None:
            self.average.load_state_dict(state.average)
        self.best_W, self.best_b = (
            w.to(self.W.device, copy=True) for w in (state.best_W, state.best_b)
        )
        self.history = {key: list(state.history.get(key, [])) for key in HISTORY_KEYS}
        self.position = state.position
        if self.V is not None:
            if state.whitening is not None:  # V and the optimizer's state live in its basis
                self.whitening.load_state_dict(state.whitening)
            with torch.no_grad():
                saved = state.coordinates
                self.V.copy_(self.whitening.coordinates(self.W, self.b) if saved is None else saved)

    # --- the loop -------------------------------------------------------------------
    @property
    def row_passes(self):
        """The passes over the rows: this process's, or those of a torchrun job."""
        if self.reducer is None:
            return passes
        from handgrad.distributed.sharded import Passes

        return Passes(self.reducer)

    def _batches(self, split: Split, start=(0, 0), done=None):
        config = self.config
        return passes.batches(
            split, config.batch_size, config.shuffle, config.seed, self.epoch, start, done
        )

    def resume_position(self) -> tuple[tuple[int, int], float]:
        """Where this epoch starts, (groups done, chunks done), and the gradient norm to
        report if nothing is left of it; clears the position a checkpoint brought."""
        position, self.position = self.position, None
        return (position[:2], position[2]) if position else ((0, 0), math.nan)

    def _train_epoch(self) -> float:
        """One pass over the training rows; the norm of the last step's gradient.

        The losses the path computes along the way are those of the weights before each
        step: the epoch's train MSE is evaluated afterwards (``_record``), for the
        weights the epoch ends with.
        """
        train, path, W, b = self.data.train, self.path, self.W, self.b
        if self.reducer is not None:  # torchrun: one all-reduce per pass or per step
            return self.row_passes.train_epoch(self)
        if self.full_batch:  # the lab's case: one step, nothing to add up
            _, grad_W, grad_b = passes.full_batch(path, train, W, b)
            self._step(grad_W, grad_b)
            return gradient_norm(grad_W, grad_b)
        start, norm = self.resume_position()
        grads = None

        def done(at) -> bool:  # after a chunk: the hook may checkpoint here, or stop
            return self.chunk_done(at, grads, norm)

        with pass_threads(blas=False):  # small products: one thread (data/stream.py)
            for X, Y in self._batches(train, start, done):
                _, grad_W, grad_b = path(X, Y, W, b)
                self._minibatch_step(grad_W, grad_b)
                grads = grad_W, grad_b
        return gradient_norm(*grads) if grads else norm

    def chunk_done(self, at: tuple[int, int], grads, norm: float) -> bool:
        """After a chunk (under torchrun, a group) of a mini-batch epoch, at position
        ``at``: the chunk hook may checkpoint here, or stop the epoch (True)."""
        if self.chunk_hook is None:
            return False
        self.position = (*at, gradient_norm(*grads) if grads else norm)
        stop = self.chunk_hook(self)
        self.position = self.position if stop else None
        return stop

    def _minibatch_step(self, grad_W: torch.Tensor, grad_b: torch.Tensor) -> None:
        """A mini-batch step, then the iterate average's update (``averaging.py``)."""
        self._step(grad_W, grad_b)
        self.average.update(self.W, self.b)

    def _step(self, grad_W: torch.Tensor, grad_b: torch.Tensor) -> None:
        optimizer, whitening = self.optimizer, self.whitening
        params = (self.W, self.b)
        grads = (grad_W, grad_b)
        if whitening is not None:  # the step is taken in V, then θ = MV (precondition.py)
            params, grads = (self.V,), (whitening.gradient(grad_W, grad_b),)
        if isinstance(optimizer, GradientDescent):  # by hand: no torch.optim hooks
            optimizer.step_with(grads)
        else:
            for param, grad in zip(params, grads, strict=True):
                param.grad = grad
            optimizer.step()
        if whitening is not None:
            whitening.weights_into(self.V, self.W, self.b)

    def _parameters_on_cpu(self) -> tuple[np.ndarray, np.ndarray]:
        """W and b as float64 NumPy arrays: the one place where the parameters (on the
        data's device) meet the statistics (float64, on the CPU by design)."""
        cpu = torch.device("cpu")
        W, b = (weight.detach().to(cpu) for weight in self.weights)
        return W.numpy().astype(np.float64), b.numpy().astype(np.float64)

    def _evaluate(self, name: str, split: Split | None, params) -> tuple[float, float]:
        """MSE and R² of the weights ``params`` (from ``_parameters_on_cpu``) on ``split``."""
        if split is None:
            return math.nan, math.nan
        stats: Statistics | None = self.stats if name == "train" else self._split_stats.get(name)
        if stats is None:
            sse = passes.split_sse(split, *self.weights, self._y_scale)
            return mse_and_r2(sse, split.sst, split.n_samples)
        mse = float((sse_from_statistics(stats, *params) * self._y_units).sum()) / stats.q
        return mse, r2_from_mse(mse, self._sst_totals[name], stats.q)

    def gap(self, train_mse: float) -> float:
        """The relative gap of ``train_mse`` to the closed-form optimum."""
        return convergence.relative_gap(train_mse, self.optimum_mse, self.baseline)

    def current_gap(self) -> float:
        """The relative gap to the optimum of the model's weights now (from the statistics)."""
        train_mse, _ = self._evaluate("train", self.data.train, self._parameters_on_cpu())
        return self.gap(train_mse)

    def _record(self, grad_norm: float) -> tuple[float, float]:
        """Append this epoch's metrics; return (monitored loss, train MSE in original units)."""
        params = self._parameters_on_cpu()
        train_mse, r2_train = self._evaluate("train", self.data.train, params)
        val_mse, r2_val = self._evaluate("val", self.data.val, params)
        test_mse, r2_test = self._evaluate("test", self.data.test, params)
        lr = self.optimizer.param_groups[0]["lr"]
        values = (train_mse, val_mse, test_mse, r2_train, r2_val, r2_test, lr, grad_norm)
        for key, value in zip(HISTORY_KEYS, values, strict=True):
            self.history[key].append(value)
        return (val_mse if self.config.early_stopping else train_mse), train_mse

    def _check_divergence(self, train_mse: float) -> None:
        bound = DIVERGENCE_FACTOR * max(self.best_loss, self._loss_floor)
        if math.isfinite(train_mse) and train_mse <= bound:
            return
        self._restore_best()
        self.stop_reason = "diverged"
        rate = self.optimizer.param_groups[0]["lr"]
        L_B, kind = self.plan.curvature, "full-batch" if self.full_batch else "this batch size's"
        raise DivergedError(
            f"training diverged at epoch {self.epoch} (train MSE {train_mse:.4g}): the "
            f"learning rate {rate:.4g} is too large. For {kind} descent on this data the "
            f"largest stable rate is 2/L = {2 / L_B:.4g}; try --lr {1 / L_B:.4g}, or --lr "
            f"auto, which derives the rate from the data for each optimizer."
        )

    @property
    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's (W, b): the iterate average of a stochastic run, else the iterate."""
        return self.average.weights(self.W, self.b)

    def _restore_best(self) -> None:
        """Set the iterate to the weights recorded as the best; the average restarts."""
        with torch.no_grad():
            self.W.copy_(self.best_W)
            self.b.copy_(self.best_b)
            if self.V is not None:
                self.V.copy_(self.whitening.coordinates(self.W, self.b))
        self.average.restart()

    def _step_schedule_and_stop(self, monitored: float, train_mse: float) -> bool:
        config = self.config
        self.scheduler.step(self.epoch, monitored)
        early = config.early_stopping
        if monitored < self.best_loss or math.isinf(self.best_loss):  # the exact best
            self.best_loss, self.best_epoch = monitored, self.epoch
            W, b = self.weights
            self.best_W.copy_(W)
            self.best_b.copy_(b)
        if not early and self.gap(train_mse) <= self.plan.tol:
            self.stop_reason = "converged"
            return True
        progress_best = self._progress_best
        optimum = None if early else self.optimum_mse
        if convergence.is_record(monitored, progress_best, optimum, self.plan.tol):
            self._progress_best, self.bad_epochs = monitored, 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs >= (config.n_iter_no_change if early else self.plan.patience):
            # A stall: the "halve" schedule goes on at half the rate from the best
            # weights; only when it may not any more is it over.
            if not early and self.scheduler.decay():
                self.bad_epochs = 0
                self._restore_best()
                return False
            self.stop_reason = "early_stopping" if early else "tol"
            return True
        return False

    def fit(
        self, callback: Callable[[Trainer], bool] | None = None, max_epochs: int | None = None
    ) -> Trainer:
        """Run epochs until a stopping rule fires or ``max_epochs`` (default: the config's).

        ``callback(trainer)`` runs after each epoch; returning True stops with reason
        "interrupted". Raises ``DivergedError`` (weights restored to the best) on divergence.
        """
        limit = self.max_epochs if max_epochs is None else max_epochs
        self.stop_reason = None
        started = time.perf_counter()
        try:
            while self.epoch < limit:
                grad_norm = self._train_epoch()
                if self.position is not None:  # stopped part way by the chunk hook
                    self.stop_reason = "interrupted"
                    break
                self.epoch += 1
                monitored, train_mse = self._record(grad_norm)
                self._check_divergence(train_mse)
                if self._step_schedule_and_stop(monitored, train_mse):
                    break
                if callback is not None and callback(self):
                    self.stop_reason = "interrupted"
                    break
            else:
                self.stop_reason = "max_epochs"
        finally:
            self.train_seconds += time.perf_counter() - started
        if self.stop_reason in ("converged", "tol", "early_stopping"):
            self._restore_best()  # the weights whose loss was recorded as the best
        return self

    # --- results --------------------------------------------------------------------
    def metrics(self) -> dict:
        """Final metrics of the model's weights, exact (float64), in original units
        (``results.final_metrics``)."""
        from handgrad.training.results import final_metrics

        return final_metrics(self)
