"""What a finished (or stopped) run leaves in its directory, and the summary it prints."""

from __future__ import annotations

import math

import torch

import handgrad
from handgrad.model import LinearModel
from handgrad.runs import figures
from handgrad.runs.atomic import write_json
from handgrad.runs.checkpoint import save_checkpoint
from handgrad.runs.rundir import RunDirectory
from handgrad.runs.tensorboard import write_history
from handgrad.training.trainer import Trainer

STOP_REASONS = {
    "tol": "the loss stopped improving (tol)",
    "early_stopping": "the validation loss stopped improving; best weights restored",
    "max_epochs": "reached the epoch limit",
    "interrupted": "interrupted; resume with --resume",
    "diverged": "diverged; best weights kept",
}
# The predicted-against-true figure shows at most this many rows (the first of the split).
FIGURE_ROWS = 20_000


def model_of(trainer: Trainer) -> LinearModel:
    data = trainer.data
    return LinearModel(
        W=trainer.W.detach().double().cpu(),
        b=trainer.b.detach().double().cpu(),
        x_scaler=data.x_scaler,
        y_scaler=data.y_scaler,
        feature_names=data.feature_names,
        target_names=data.target_names,
    )


def _finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_progress(run: RunDirectory, trainer: Trainer, logged: int) -> int:
    """Checkpoint and TensorBoard so far; returns the epochs now logged."""
    save_checkpoint(run.checkpoint, trainer.state(), trainer.train_seconds)
    run.tensorboard.mkdir(exist_ok=True)
    return write_history(run.tensorboard, trainer.history, logged)


def write_results(run: RunDirectory, trainer: Trainer, metrics: dict, save_model: bool) -> None:
    """metrics.json, the figures and, unless the run diverged, the model."""
    history = {k: [_finite_or_none(v) for v in values] for k, values in trainer.history.items()}
    write_json(
        run.metrics,
        {k: _finite_or_none(v) for k, v in metrics.items()}
        | {"handgrad_version": handgrad.__version__, "history": history},
    )
    figures.loss_curves(trainer.history, metrics["optimum_train_mse"], run.loss_figure)
    data = trainer.data
    if len(data.target_names) == 1:
        split_name, split = ("test", data.test) if data.test is not None else ("train", data.train)
        model = model_of(trainer)
        with torch.no_grad():
            X, Y = split.head(FIGURE_ROWS)  # a streamed split is not read whole for a figure
            X_raw = data.x_scaler.inverse(X.double().cpu())
            y_true = data.y_scaler.inverse(Y.double().cpu()).numpy()[:, 0]
        y_pred = model.predict(X_raw.numpy())[:, 0]
        name = data.target_names[0]
        figures.predicted_vs_true(y_true, y_pred, name, split_name, run.prediction_figure)
    if save_model:
        model_of(trainer).save(run.model)


def summary(metrics: dict, trainer: Trainer, run: RunDirectory) -> str:
    def fmt(value, spec=".6g"):
        return "-" if value is None else format(value, spec)

    rate = f"{trainer.learning_rate:.4g}"
    if trainer.config.learning_rate == "auto":
        rate += " (auto: 1/L)"
    lines = [
        f"  path            {metrics['path']}, learning rate {rate}",
        f"  epochs          {metrics['epochs']}  ({STOP_REASONS.get(metrics['stop_reason'], '')})",
        f"  train time      {metrics['train_seconds']:.3f} s",
    ]
    for split, label in (("train", "train MSE"), ("val", "validation MSE"), ("test", "test MSE")):
        if metrics[f"{split}_mse"] is not None:
            mse, r2 = fmt(metrics[f"{split}_mse"]), fmt(metrics[f"r2_{split}"], ".4f")
            lines.append(f"  {label:<15} {mse:>12}   R² {r2}")
    lines.append(
        f"  optimum (train) {fmt(metrics['optimum_train_mse']):>12}   "
        f"gap {metrics['gap_to_optimum']:.2e}  (closed-form least squares)"
    )
    lines.append(f"run directory: {run.path}")
    return "\n".join(lines)
