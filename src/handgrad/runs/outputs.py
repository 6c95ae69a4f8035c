"""What a finished (or stopped) run leaves in its directory, and the summary it prints."""

from __future__ import annotations

import math

import torch

import handgrad
from handgrad.model import LinearModel
from handgrad.runs.atomic import write_json
from handgrad.runs.checkpoint import save_checkpoint
from handgrad.runs.rundir import RunDirectory
from handgrad.runs.tensorboard import write_history
from handgrad.training.trainer import Trainer

STOP_REASONS = {
    "converged": "reached the optimum (tol)",
    "tol": "the loss stopped improving",
    "early_stopping": "the validation loss stopped improving; best weights restored",
    "max_epochs": "reached the epoch limit",
    "interrupted": "interrupted; resume with --resume",
    "diverged": "diverged; best weights kept",
}
# The predicted-against-true figure shows at most this many rows (the first of the split).
FIGURE_ROWS = 20_000


def model_of(trainer: Trainer) -> LinearModel:
    data = trainer.data
    W, b = trainer.weights
    return LinearModel(
        W=W,
        b=b,
        x_scaler=data.x_scaler,
        y_scaler=data.y_scaler,
        feature_names=data.feature_names,
        target_names=data.target_names,
    )


def _finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite_or_none(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    return value


def save_progress(run: RunDirectory, trainer: Trainer, logged: int) -> int:
    """Checkpoint and TensorBoard so far; returns the epochs now logged."""
    save_checkpoint(run.checkpoint, trainer.state(), trainer.train_seconds)
    run.tensorboard.mkdir(exist_ok=True)
    return write_history(run.tensorboard, trainer.history, logged)


def write_results(
    run: RunDirectory, trainer: Trainer, metrics: dict, save_model: bool, draw=None
) -> None:
    """metrics.json, the figures and, unless the run diverged, the model.

    ``draw(job)`` draws the figures (``figures.draw``, the default, or a ``Painter``'s).
    """
    history = {k: [_finite_or_none(v) for v in values] for k, values in trainer.history.items()}
    write_json(
        run.metrics,
        {k: _finite_or_none(v) for k, v in metrics.items()}
        | {"handgrad_version": handgrad.__version__, "history": history},
    )
    loss = {"history": trainer.history, "optimum": metrics["optimum_train_mse"]}
    job = {"loss": loss | {"path": str(run.loss_figure)}, "scatter": None}
    data = trainer.data
    split_name, split = ("test", data.test) if data.test is not None else ("train", data.train)
    model = model_of(trainer)
    with torch.no_grad():
        X, Y = split.head(FIGURE_ROWS)  # a streamed split is not read whole for a figure
        X_raw = data.x_scaler.inverse(X.double().cpu())
        Y_true = data.y_scaler.inverse(Y.double().cpu()).numpy()
    Y_pred = model.predict(X_raw.numpy())
    job["scatter"] = {
        "Y_true": Y_true.tolist(),
        "Y_pred": Y_pred.tolist(),
        "names": list(data.target_names),
        "r2": [target[f"r2_{split_name}"] for target in metrics["per_target"]],
        "split": split_name,
        "path": str(run.prediction_figure),
    }
    if draw is None:
        from handgrad.runs import figures

        draw = figures.draw
    draw(job)
    if save_model:
        model_of(trainer).save(run.model)


def summary(metrics: dict, trainer: Trainer, run: RunDirectory) -> str:
    def fmt(value, spec=".6g"):
        return "-" if value is None else format(value, spec)

    rate, plan = f"{trainer.learning_rate:.4g}", trainer.plan
    if plan.rule:
        rate += f" (auto: {plan.rule})"
    optimizer = plan.optimizer + (" (chosen by auto)" if trainer.config.optimizer == "auto" else "")
    schedule = "" if plan.scheduler == "none" else f", schedule {plan.scheduler}"
    auto_device = trainer.config.device == "auto"
    if plan.scheduler == "halve" and not trainer.full_batch:
        schedule += " + iterate averaging"
    lines = [
        f"  path            {metrics['path']}, optimizer {optimizer}{schedule}",
        f"  device          {metrics['device']}{' (chosen by auto)' if auto_device else ''}",
        f"  learning rate   {rate}",
        *([f"  precondition    {trainer.precondition_note}"] if trainer.precondition_note else []),
        *([f"  batch           {trainer.batch_note}"] if trainer.batch_note else []),
        f"  epochs          {metrics['epochs']}  ({STOP_REASONS.get(metrics['stop_reason'], '')})",
        f"  train time      {metrics['train_seconds']:.3f} s  (the epochs; not reading the data)",
    ]
    for split, label in (("train", "train MSE"), ("val", "validation MSE"), ("test", "test MSE")):
        if metrics[f"{split}_mse"] is not None:
            mse, r2 = fmt(metrics[f"{split}_mse"]), fmt(metrics[f"r2_{split}"], ".4f")
            lines.append(f"  {label:<15} {mse:>12}   R² {r2}")
    lines.append(
        f"  optimum (train) {fmt(metrics['optimum_train_mse']):>12}   "
        f"gap {metrics['gap_to_optimum']:.2e}  (closed-form least squares; "
        f"{'converged' if metrics['converged'] else 'NOT converged'})"
    )
    lines += per_target_lines(metrics["per_target"])
    lines.append(f"run directory: {run.path}")
    return "\n".join(lines)


# Targets listed one per line in the summary; beyond, the weakest ones (metrics.json
# has them all).
SUMMARY_TARGETS = 10


def per_target_lines(per_target: list[dict]) -> list[str]:
    """Each target's MSE and R² on every split, weakest first when they must be cut."""
    if len(per_target) < 2:
        return []
    split = "test" if per_target[0].get("r2_test") is not None else "train"
    shown = per_target
    if len(per_target) > SUMMARY_TARGETS:
        shown = sorted(per_target, key=lambda t: _r2_key(t, split))[:SUMMARY_TARGETS]
    header = f"  per target ({len(per_target)})" + (
        f", the {SUMMARY_TARGETS} weakest by {split} R²" if shown is not per_target else ""
    )
    lines = [header]
    width = min(max(len(t["name"]) for t in shown), 24)
    for target in shown:
        parts = []
        for name in ("train", "val", "test"):
            if target.get(f"{name}_mse") is not None:
                parts.append(
                    f"{name} MSE {target[f'{name}_mse']:.6g} R² {target[f'r2_{name}']:.4f}"
                )
        lines.append(f"    {target['name'][:width]:<{width}}  " + "   ".join(parts))
    return lines


def _r2_key(target: dict, split: str) -> float:
    value = target.get(f"r2_{split}")
    return math.inf if value is None or not math.isfinite(value) else value
