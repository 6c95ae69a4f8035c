"""A finished run's metrics: MSE and R² on every split and per target, the optimum, the
gap, whether it converged, and how the run was set up.

The final SSE of each split comes from the split's float64 statistics, the ones every
epoch's metrics come from (``statistics.sse_from_statistics``): no pass over the data,
and under torchrun no exchange, so a ``stats`` fit meets the other ranks once, for the
statistics. Near an exact fit, or with large cancelling weights, that formula cancels
large terms: when its rounding bound (``statistics.sse_rounding``) exceeds
``FINAL_RTOL`` of any split's SSE, at the weights or at the optimum, the SSE is measured
instead by one float64 pass over the rows (``passes.final_sse``), and the run says so:
one warning line and ``final_metrics_from: "rows"`` in metrics.json. Under torchrun that
pass is the writer's alone, over every group: the metrics it writes are of the weights
it saves, and no rank waits on another for them.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch

from handgrad.devices import device_name
from handgrad.errors import DataWarning
from handgrad.training import convergence, passes
from handgrad.training.metrics import mse_and_r2
from handgrad.training.statistics import sse_from_statistics, sse_rounding

if TYPE_CHECKING:
    from handgrad.training.trainer import Trainer

# The largest rounding bound, relative to each split's SSE, at which the final metrics
# are taken from the statistics: far below the 6 digits the summary prints and the gap
# of 1e-3 that "converged" means. Measured errors are 10-100 times below the bound
# (about 1e-12 of the SSE on the embedded and synthetic sets; tests/test_final_metrics.py).
FINAL_RTOL = 1e-8


def final_sse(trainer: Trainer) -> tuple[dict[str, list[torch.Tensor]], float]:
    """Each split's SSE (p,), original units, at [the weights, the optimum], and the
    largest rounding bound of the statistics relative to an SSE (see the module's
    docstring: above ``FINAL_RTOL``, the SSEs are those of a pass over the rows)."""
    data, ref = trainer.data, trainer.reference
    y_units = data.y_scaler.scale.double().numpy() ** 2  # training units to the targets'
    params = [trainer._parameters_on_cpu(), (ref.W.numpy(), ref.b.numpy())]
    sses, rounding = {}, 0.0
    for split in data.splits:
        sses[split.name] = []
        for W, b in params:
            sse = sse_from_statistics(split.stats, W, b)
            bound = sse_rounding(split.stats, W, b)
            # An SSE of 0 with rounding possible has no relative precision at all; with a
            # bound of 0 (all-zero weights on a constant target) it is exact.
            ratio = np.divide(bound, sse, out=np.where(bound > 0, np.inf, 0.0), where=sse > 0)
            rounding = max(rounding, float(ratio.max()))
            sses[split.name].append(torch.from_numpy(sse * y_units))
    if rounding <= FINAL_RTOL:
        return sses, rounding
    device = data.device
    optimum = (ref.W.to(device), ref.b.to(device))
    return passes.final_sse(data, [trainer.weights, optimum], data.y_scaler.scale), rounding


def final_metrics(trainer: Trainer) -> dict:
    """Final metrics of the current weights, in float64, in original units.

    ``per_target`` lists each target's MSE and R² on every split; ``converged`` says
    whether the train MSE is within ``convergence.CONVERGED_GAP`` of the optimum;
    ``final_metrics_from`` whether the SSEs came from the statistics or from the rows.
    """
    data = trainer.data
    out, per_target = {}, [{"name": name} for name in data.target_names]
    sses, rounding = final_sse(trainer)
    if rounding > FINAL_RTOL:
        why = (
            "the statistics give an SSE of 0, whose rounding they cannot bound (an exact fit)"
            if np.isinf(rounding)
            else f"from the statistics alone their rounding could reach {rounding:.1e} of "
            f"an SSE (more than {FINAL_RTOL:g}), as near an exact fit or with large "
            "weights that cancel"
        )
        warnings.warn(
            f"the final metrics were measured by a pass over the rows: {why}.",
            DataWarning,
            stacklevel=3,  # the caller of Trainer.metrics
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
    out["final_metrics_from"] = "statistics" if rounding <= FINAL_RTOL else "rows"
    # Relative to the smallest SSE; None (JSON has no infinity) when an SSE was 0.
    out["statistics_rounding"] = None if np.isinf(rounding) else rounding
    out["optimum_unique"] = trainer.reference.unique
    out["condition_number"] = trainer.reference.condition_number
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
    out["device"] = device_name(data.device)
    out["per_target"] = per_target
    return out
