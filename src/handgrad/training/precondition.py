"""Whitening: descent in coordinates where every direction has the same curvature.

Why
---
Mini-batch descent on an ill-conditioned problem is slow twice over: its rate is bounded
by the largest curvature a batch can have, while its slowest direction, of curvature μ,
shrinks by only lr·μ per step; and the noise of the batches never dies at a fixed
rate. On scikit-learn's breast-cancer table (``mean radius`` from the other columns,
κ ≈ 1.9e4 after standardising) a batch-32 run reached a relative gap of 7e-4 only at the
20,000-epoch limit, and batch 1 stood at 0.67 after 1,500 epochs. Standardising is the
diagonal part of the cure; whitening is the whole of it, from the statistics the
moments pass gathered anyway, for the cost of two (n+1)-sized products per step.

The mathematics
---------------
θ = [W; bᵀ] (n+1, p), X̃ = [X, 1] (q, n+1), S = X̃ᵀX̃, and the Hessian of the loss is
H = (2/q)·S for every output column. In centred terms S/q = [[Σ + x̄x̄ᵀ, x̄], [x̄ᵀ, 1]], Σ the
covariance C/q of the training rows. With D = diag(Σ)^{1/2} and the eigendecomposition
D⁻¹ΣD⁻¹ = QΛQᵀ (a correlation matrix: its conditioning is that of the columns'
collinearity alone, not of their units or their distance from zero), keep the r
eigenvalues the reference keeps (``reference.py``: the same rank, by the same rule), let
A = D⁻¹ Q_r Λ_r^{-1/2} (n, r), so that AᵀΣA = I_r, and

    M = [[A, 0], [−x̄ᵀA, 1]]   (n+1, r+1),   so that   Mᵀ S M / q = I_{r+1}

(S/q·M = [[ΣA, x̄], [0, 1]], and Mᵀ times that is [[AᵀΣA, 0], [0, 1]]). The intercept's
coordinate is the prediction at the mean row, b + x̄ᵀW: centring is what keeps a column at
1e8 ± 1 from looking collinear with the column of ones.

Write θ = M V, V (r+1, p). Then the loss as a function of V has

    ∂C/∂V = Mᵀ ∂C/∂θ           # (r+1, n+1) @ (n+1, p) -> (r+1, p)
    ∂²C/∂V² = (2/q) MᵀSM = 2I   # κ = 1: L = μ = 2,

and a row's own curvature is 2‖Mᵀx̃ᵢ‖² = 2q·hᵢᵢ (hᵢᵢ its leverage; the mean is 2(r+1)): the
largest of these bounds a batch-1 rate, as ‖x̃ᵢ‖² does unwhitened (``schedule.py``).
Back in θ, a step of V is θ ← θ − lr·MMᵀg = θ − lr·(S/q)⁺g: descent preconditioned by
the inverse of the rows' second moments. The optimizer's state (momentum, Adam's
moments) lives in V; θ = MV after every step. To start from given weights (a restart
from the best ones), V = M⁺θ with M⁺ = [[Λ_r^{1/2}Q_rᵀD, 0], [x̄ᵀ, 1]] (M⁺M = I), exact for
θ in the range of M, where every iterate stays. M is saved with a checkpoint and taken
from it on resume: an eigendecomposition recomputed from statistics that differ in
their last bits (other ranks, another order) may rotate a degenerate eigenspace, and V
and the optimizer's state mean something only in the basis they were built in.
"""

from __future__ import annotations

import numpy as np
import torch

from handgrad.errors import UserError
from handgrad.training.reference import RANK_RTOL, Reference
from handgrad.training.statistics import Statistics

# "auto" whitens a mini-batch run whose Hessian's condition number exceeds this: below
# it, the 1/L_B rate and the iterate average converge in a few hundred epochs at most
# (diabetes, κ ≈ 420, batch 1).
AUTO_KAPPA = 1000.0
# ... and whose n + 1 is at most this: two (n+1) × r × p products per step then cost no
# more than a batch of a few hundred rows' gradient; beyond it, say so and go plain.
AUTO_MAX_COLUMNS = 512


def choose(config, reference: Reference, full_batch: bool, n: int) -> tuple[bool, str]:
    """Whether this run whitens (``config.precondition``), and why, for the summary."""
    kappa = reference.condition_number
    whitened = (True, f"whitened features (κ {kappa:.2g} -> 1)")
    if config.precondition != "auto":
        return whitened if config.precondition == "whiten" else (False, "")
    if full_batch or kappa <= AUTO_KAPPA:
        return False, ""
    if n + 1 > AUTO_MAX_COLUMNS:
        return False, (
            f"not whitened: {n} features is more than auto whitens ({AUTO_MAX_COLUMNS - 1}); "
            "--precondition whiten would, at a cost per step"
        )
    return whitened


class Whitening:
    """The map θ = MV between a run's weights and the whitened coordinates V (module doc).

    Parameters
    ----------
    stats : Statistics
        The training split's, in training units (float64, CPU).
    dtype, device
        Those of the run's parameters, where V and the maps live.
    """

    def __init__(self, stats: Statistics, dtype: torch.dtype, device: torch.device) -> None:
        c = stats.centred
        n = c.C.shape[0]
        d = np.sqrt(np.diagonal(c.C) / stats.q)
        d = np.where(d > 0, d, 1.0)  # a constant column: no direction to keep
        values, vectors = np.linalg.eigh(c.C / stats.q / d[:, None] / d[None, :])
        keep = values > RANK_RTOL * n * values[-1]  # the reference's rule
        Q, lam = vectors[:, keep], values[keep]
        r = int(keep.sum())
        M = np.zeros((n + 1, r + 1))
        M[:n, :r] = (Q / d[:, None]) / np.sqrt(lam)  # A (n, r)
        M[n, :r] = -c.mean_x @ M[:n, :r]
        M[n, r] = 1.0
        M_pinv = np.zeros((r + 1, n + 1))
        M_pinv[:r, :n] = (Q * d[:, None]).T * np.sqrt(lam)[:, None]  # A⁺ (r, n)
        M_pinv[r, :n], M_pinv[r, n] = c.mean_x, 1.0
        self.rank = r + 1
        self._set(torch.from_numpy(M), torch.from_numpy(M_pinv), dtype, device)

    @classmethod
    def restored(cls, state: dict, dtype: torch.dtype, device: torch.device) -> Whitening:
        """The maps a ``state_dict`` holds, in ``dtype`` on ``device``."""
        whitening = cls.__new__(cls)
        whitening.rank = state["M"].shape[1]
        whitening._set(state["M"], state["M_pinv"], dtype, device)
        return whitening

    def _set(self, M: torch.Tensor, M_pinv: torch.Tensor, dtype, device) -> None:
        self.M = M.to(dtype=dtype, device=device).contiguous()
        self.M_T = self.M.T.contiguous()
        self.M_pinv = M_pinv.to(dtype=dtype, device=device).contiguous()

    def state_dict(self) -> dict:
        return {"M": self.M.cpu().clone(), "M_pinv": self.M_pinv.cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        """Take the maps a checkpoint was taken with (see the module doc)."""
        if tuple(state["M"].shape) != tuple(self.M.shape):
            raise UserError(
                "this checkpoint's whitened coordinates have another rank than the data's "
                "now; the data changed in a way its fingerprint missed. Start a new run."
            )
        self._set(state["M"], state["M_pinv"], self.M.dtype, self.M.device)

    def coordinates(self, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """V = M⁺θ of the weights (W, b), θ = [W; bᵀ]: (r+1, n+1) @ (n+1, p) -> (r+1, p)."""
        return self.M_pinv[:, :-1] @ W + self.M_pinv[:, -1:] * b

    def gradient(self, grad_W: torch.Tensor, grad_b: torch.Tensor) -> torch.Tensor:
        """∂C/∂V = Mᵀ ∂C/∂θ: (r+1, n+1) @ (n+1, p) -> (r+1, p)."""
        return torch.addmm(self.M_T[:, -1:] * grad_b, self.M_T[:, :-1], grad_W)

    @torch.no_grad()
    def weights_into(self, V: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> None:
        """W, b ← θ = MV, in place: (n+1, r+1) @ (r+1, p) -> (n+1, p)."""
        torch.mm(self.M[:-1], V, out=W)
        torch.mv(V.T, self.M[-1], out=b)

    def max_row_norm2(self, X: torch.Tensor) -> float:
        """max ‖Mᵀx̃ᵢ‖² over the rows of a chunk X (rows, n), x̃ = [x, 1], in float64."""
        M = self.M.double()
        Z = torch.addmm(M[-1:], X.double(), M[:-1])  # (rows, n) @ (n, r+1) + M[-1] -> (rows, r+1)
        return float((Z * Z).sum(dim=1).max())
