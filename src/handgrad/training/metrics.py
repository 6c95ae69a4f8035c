"""MSE and R² of a linear model on a split, in the targets' original units; gradient norms."""

from __future__ import annotations

import math

import numpy as np
import torch

from handgrad.training.statistics import BLOCK_ROWS


@torch.no_grad()
def sse_per_target(
    X: torch.Tensor,
    Y: torch.Tensor,
    W: torch.Tensor,
    b: torch.Tensor,
    y_scale: torch.Tensor,
    exact: bool = False,
) -> torch.Tensor:
    """Σᵢ (Ŷᵢⱼ − Yᵢⱼ)² for each target j, float64 (p,), in original units.

    ``y_scale`` (p,) undoes target standardisation (residuals scale by it). With
    ``exact``, the products run in float64 too: the model's own error, free of the
    rounding of float32 arithmetic.
    """
    if exact:
        W, b = W.double(), b.double()
    total = torch.zeros(Y.shape[1], dtype=torch.float64, device=Y.device)
    for start in range(0, X.shape[0], BLOCK_ROWS):
        Xb, Yb = X[start : start + BLOCK_ROWS], Y[start : start + BLOCK_ROWS]
        if exact:
            Xb, Yb = Xb.double(), Yb.double()
        R = torch.addmm(b, Xb, W).sub_(Yb)  # (rows, p)
        total += (R.double() ** 2).sum(dim=0)
    return total.cpu() * y_scale.double() ** 2


def mse_and_r2(sse: torch.Tensor, sst: torch.Tensor, q: int) -> tuple[float, float]:
    """The project's MSE, (1/q) Σ over all q·p entries, and the variance-weighted R².

    R² = 1 − Σⱼ SSEⱼ / Σⱼ SSTⱼ: scikit-learn's ``r2_score(multioutput="variance_weighted")``,
    which for one target is the ordinary R². It needs only the total SSE, so it is
    known from the MSE alone: R² = 1 − q·mse / Σⱼ SSTⱼ.
    """
    mse = float(sse.sum()) / q
    return mse, r2_from_mse(mse, float(sst.sum()), q)


def r2_from_mse(mse: float, sst_total: float, q: int) -> float:
    """R² = 1 − q·mse / Σⱼ SSTⱼ, with ``sst_total`` = Σⱼ SSTⱼ (NaN when it is 0)."""
    return 1.0 - q * mse / sst_total if sst_total > 0 else float("nan")


def gradient_norm(grad_W: torch.Tensor, grad_b: torch.Tensor) -> float:
    """‖(∂W, ∂b)‖, read back once; on the CPU through NumPy, cheaper for small tensors."""
    if grad_W.device.type == "cpu":
        a, c = grad_W.numpy(), grad_b.numpy()
        return math.sqrt(float(np.vdot(a, a)) + float(np.vdot(c, c)))
    return math.hypot(float(grad_W.norm()), float(grad_b.norm()))
