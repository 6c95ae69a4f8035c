"""Figure 3, large full-batch epoch: q = 10⁶, n = 100, p = 1, float32 on the CPU.

One epoch is the loss, the W and b gradients and the update W −= lr ∂W, b −= lr ∂b;
every side's timing includes exactly that, on the same float32 X and Y in memory.

- handgrad: the fused, graph-free ``loss_and_grads`` (``FusedPath("manual")``, what the
  trainer runs for large mini-batches): one blocked pass over X, NumPy's BLAS.
- Peer 1, native graph-free: the same formulas in plain torch ops, no autograd:
  R = addmm(b, X, W) − Y, loss = ΣR²/q, ∂W = (2/q) Xᵀ R, ∂b = (2/q) Σᵢ Rᵢ. It reads X
  twice (X W, then Xᵀ R).
- Peer 2, native autograd: ``F.linear`` + squared-error sum / q, ``loss.backward()``.
- Floor: one read of X, ``X.sum()``.

All are timed in the same interleaved rounds. Agreement: from the same W and b, the
loss and both gradients of every side, to float32 rounding. Goals: no slower than the
graph-free peer (ratio ≤ 1), ≥ 2.5x faster than autograd (ratio ≤ 0.4), within 2x of
one read of X (ratio ≤ 2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the idiom of PyTorch's docs)

from benchmarks.timing import (
    Check,
    Result,
    interleaved_timings,
    relative_difference,
    repeats,
    rounding_tolerance,
)
from handgrad.functions import blocked_pass
from handgrad.training.paths import FusedPath

LEARNING_RATE = 0.01


def _graph_free(X, Y, W, b):
    """Loss and gradients in plain torch ops: X W (q, n) @ (n, p), then Xᵀ R (n, q) @ (q, p).

    Arguments in the paths' order, (X, Y, W, b).
    """
    q = X.shape[0]
    R = torch.addmm(b, X, W).sub_(Y)  # (q, p)
    loss = R.pow(2).sum() / q
    return loss, (X.T @ R).mul_(2.0 / q), R.sum(dim=0).mul_(2.0 / q)


def _autograd(X, Y, W_t, b):
    """Loss and gradients through autograd; W_t in F.linear's (p, n) layout."""
    W_t, b = W_t.detach().requires_grad_(), b.detach().requires_grad_()
    loss = ((F.linear(X, W_t, b) - Y) ** 2).sum() / X.shape[0]
    loss.backward()
    return loss.detach(), W_t.grad.T, b.grad


def run(quick: bool) -> list[Result]:
    q, n, p = (100_000 if quick else 1_000_000), 100, 1
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(q, n, generator=g), torch.randn(q, p, generator=g)
    W0, b0 = 0.1 * torch.randn(n, p, generator=g), torch.zeros(p)
    fused = FusedPath("manual")
    assert fused.name == "fused"

    # Agreement from the same starting point, with the very functions that are timed.
    expected = fused(X, Y, W0, b0)
    why = "float32 rounding of sums over q rows on both sides"
    checks = []
    for peer, result in (
        ("graph-free", _graph_free(X, Y, W0, b0)),
        ("autograd", _autograd(X, Y, W0.T.contiguous(), b0)),
    ):
        for name, a, c, terms in zip(
            ("loss", "∂W", "∂b"), expected, result, (q * p, q, q), strict=True
        ):
            checks.append(
                Check(
                    f"{name} vs {peer}, ‖Δ‖/‖·‖",
                    relative_difference(a, c),
                    rounding_tolerance(terms),
                    why,
                )
            )

    params = {side: [W0.clone(), b0.clone()] for side in ("handgrad", "free", "autograd")}
    params["autograd"][0] = W0.T.contiguous()

    def epoch(step, side):
        W, b = params[side]
        _, grad_W, grad_b = step(X, Y, W, b)
        W.sub_(LEARNING_RATE * (grad_W.T if side == "autograd" else grad_W))
        b.sub_(LEARNING_RATE * grad_b)

    # "matvec" (one X W alone) is a diagnostic: the cost of the BLAS call the peers make.
    t = interleaved_timings(
        {
            "handgrad": lambda: epoch(fused, "handgrad"),
            "free": lambda: epoch(_graph_free, "free"),
            "autograd": lambda: epoch(_autograd, "autograd"),
            "read": X.sum,
            "matvec": lambda: torch.mm(X, W0),
        },
        repeats=repeats(quick, 11),
        warmup=1,
        min_seconds=0.0,
    )
    size = f"(q, n, p) = ({q:,}, {n}, {p})"
    blocks = -(-q // blocked_pass.block_rows(n, X.element_size()))
    why_note = (
        f"for scale: one torch X W alone took {t['matvec'].median * 1e3:.1f} ms = "
        f"{t['matvec'].median / t['read'].median:.2f}x one read of X; the fused epoch makes "
        f"its two products (X W from memory, Xᵀ R from cache) in {blocks} blocks of "
        f"{blocked_pass.BLOCK_BYTES // 1024} KiB with NumPy's BLAS (see blocked_pass.py)"
    )
    common = dict(
        handgrad_side="float32, fused loss_and_grads (FusedPath manual), one blocked pass",
        includes="loss, ∂W, ∂b and the update, on the same X and Y in memory",
        notes=[why_note],
    )
    return [
        Result.timed(
            "3 full-batch epoch",
            f"fused epoch vs native graph-free epoch {size}",
            t["handgrad"],
            t["free"],
            peer_name="addmm, Xᵀ R, sum: plain torch, no autograd",
            peer_side="float32, plain torch ops, no autograd, X read twice",
            goal=1.0,
            checks=checks[:3],
            **common,
        ),
        Result.timed(
            "3 full-batch epoch",
            f"fused epoch vs native autograd epoch {size}",
            t["handgrad"],
            t["autograd"],
            peer_name="F.linear + sum/q, backward(), update",
            peer_side="float32, F.linear + ((Ŷ−Y)²).sum()/q, autograd",
            goal=0.4,
            checks=checks[3:],
            **common,
        ),
        Result.timed(
            "3 full-batch epoch",
            f"fused epoch vs one read of X {size}",
            t["handgrad"],
            t["read"],
            peer_name="X.sum()",
            peer_side="float32, X.sum(): a floor, computes nothing of the epoch",
            goal=2.0,
            checks=checks[:3],
            **common,
        ),
    ]
