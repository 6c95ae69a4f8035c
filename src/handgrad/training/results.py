"""A finished run's metrics: MSE and R² on every split and per target, the optimum, the
gap, whether it converged, and how the run was set up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handgrad.training import convergence
from handgrad.training.metrics import mse_and_r2

if TYPE_CHECKING:
    from handgrad.training.trainer import Trainer


def final_metrics(trainer: Trainer) -> dict:
    """Final metrics of the current weights, exact (float64), in original units.

    ``per_target`` lists each target's MSE and R² on every split; ``converged`` says
    whether the train MSE is within ``convergence.CONVERGED_GAP`` of the optimum.
    """
    data, ref = trainer.data, trainer.reference
    out, per_target = {}, [{"name": name} for name in data.target_names]
    # One pass over the data for every split, at the weights and at the optimum (under
    # torchrun, each rank over its own chunks: every rank calls this).
    device = data.device
    optimum_weights = (ref.W.to(device), ref.b.to(device))
    sses = trainer.row_passes.final_sse(
        data, [trainer.weights, optimum_weights], data.y_scaler.scale
    )
    for name, split in (("train", data.train), ("val", data.val), ("test", data.test)):
        if split is None:
            out[f"{name}_mse"], out[f"r2_{name}"] = None, None
            continue
        sse = sses[name][0]
        out[f"{name}_mse"], out[f"r2_{name}"] = mse_and_r2(sse, split.sst, split.n_samples)
        for j, target in enumerate(per_target):
            mse, r2 = mse_and_r2(sse[j : j + 1], split.sst[j : j + 1], split.n_samples)
            target[f"{name}_mse"], target[f"r2_{name}"] = mse, r2
    optimum = float(sses["train"][1].sum()) / data.train.n_samples
    out["optimum_train_mse"] = optimum
    out["gap_to_optimum"] = convergence.relative_gap(out["train_mse"], optimum, trainer.baseline)
    out["converged"] = convergence.converged(out["gap_to_optimum"])
    out["optimum_unique"] = ref.unique
    out["condition_number"] = ref.condition_number
    out["epochs"] = trainer.epoch
    out["best_epoch"] = trainer.best_epoch
    out["stop_reason"] = trainer.stop_reason
    out["train_seconds"] = trainer.train_seconds
    out["optimizer"] = trainer.plan.optimizer
    out["momentum"] = trainer.plan.momentum
    out["learning_rate"] = trainer.learning_rate
    out["learning_rate_rule"] = trainer.plan.rule
    out["scheduler"] = trainer.plan.scheduler
    out["whitened"] = trainer.whitening is not None
    out["precondition_note"] = trainer.precondition_note
    out["path"] = f"{trainer.path.name}" + (
        f" ({trainer.config.grad})" if trainer.path.name == "chained" else ""
    )
    out["per_target"] = per_target
    return out
