"""Figure 3, large full-batch epoch: q = 10⁶, n = 100, p = 1, float32.

One epoch is the loss, the W and b gradients and the update W −= lr ∂W, b −= lr ∂b.
handgrad's fastest exact path is the fused, graph-free ``loss_and_grads`` (one blocked
pass over X); the peer is a native autograd epoch (``F.linear`` + squared-error sum / q,
``loss.backward()``, update); the floor is one read of X, ``X.sum()``. All three are
timed in the same interleaved rounds. Goals: ≥ 2.5x faster than native (ratio ≤ 0.4)
and within 2x of one read of X (ratio ≤ 2).
"""

from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F  # noqa: N812 (the idiom of PyTorch's docs)

from benchmarks.timing import Result, interleaved_medians

fused = importlib.import_module("handgrad.functions.linear_mse")
blocked = importlib.import_module("handgrad.functions.blocked_pass")

LEARNING_RATE = 0.01


def run(quick: bool) -> list[Result]:
    q, n, p = (100_000 if quick else 1_000_000), 100, 1
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(q, n, generator=g), torch.randn(q, p, generator=g)
    W, b = 0.1 * torch.randn(n, p, generator=g), torch.zeros(p)
    W_t = W.T.contiguous().requires_grad_()  # (p, n)
    b_native = b.clone().requires_grad_()

    def hand_epoch():
        _, grad_W, grad_b = fused.loss_and_grads(X, W, b, Y)
        W.sub_(LEARNING_RATE * grad_W)
        b.sub_(LEARNING_RATE * grad_b)

    def native_epoch():
        loss = ((F.linear(X, W_t, b_native) - Y) ** 2).sum() / q
        loss.backward()
        with torch.no_grad():
            W_t.sub_(LEARNING_RATE * W_t.grad)
            b_native.sub_(LEARNING_RATE * b_native.grad)
        W_t.grad = b_native.grad = None

    # Same starting point, then every epoch keeps the two in step; checked at the end.
    # "matvec" (one X W alone) is a diagnostic: the cost of the BLAS call both epochs make.
    t = interleaved_medians(
        {
            "handgrad": hand_epoch,
            "native": native_epoch,
            "read": X.sum,
            "matvec": lambda: torch.mm(X, W),
        },
        repeats=3 if quick else 15,
        warmup=1,
        min_seconds=0.0,
    )
    same = torch.allclose(W.T, W_t.detach(), rtol=1e-3, atol=1e-5) and torch.allclose(
        b, b_native.detach(), rtol=1e-3, atol=1e-5
    )
    size = f"(q, n, p) = ({q:,}, {n}, {p})"
    check = f"W, b after all epochs equal native's (rtol 1e-3): {same}"
    blocks = -(-q // blocked.block_rows(n, X.element_size()))
    why = (
        f"for scale: one torch X W (MKL's matrix-vector product) alone took "
        f"{t['matvec'] * 1e3:.1f} ms = {t['matvec'] / t['read']:.2f}x one read of X, and the "
        "native epoch makes two such products over all of X; the fused epoch makes its two "
        f"(X W from memory, Xᵀ R from cache) in {blocks} blocks of "
        f"{blocked.BLOCK_BYTES // 1024} KiB with NumPy's BLAS (see blocked_pass.py)"
    )
    return [
        Result(
            figure="3 full-batch epoch",
            case=f"fused epoch vs native autograd epoch {size}",
            handgrad=t["handgrad"],
            peer=t["native"],
            peer_name="F.linear + sum/q, backward(), update",
            goal=0.4,
            notes=[check, f"speed-up over native: {t['native'] / t['handgrad']:.2f}x", why],
        ),
        Result(
            figure="3 full-batch epoch",
            case=f"fused epoch vs one read of X {size}",
            handgrad=t["handgrad"],
            peer=t["read"],
            peer_name="X.sum()",
            goal=2.0,
            notes=[why],
        ),
    ]
