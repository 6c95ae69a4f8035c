"""Figure 1, op overhead: forward and backward of linear → mse, handgrad against native.

handgrad: ``mse(linear(X, W, b), Y)`` through its hand-written Functions and autograd.
Peer: the natural native code, ``F.linear(X, W_t, b)`` with weight (p, n), then
``((Ŷ − Y) ** 2).sum() / q``. Both call ``loss.backward()`` for W and b (X and Y are
data) and clear the gradients. Goals, handgrad time / peer time: small ops pay the
Python cost of two custom Functions and of the input checks, so the goal is looser
there (≤ 1.5); at size, the same BLAS calls dominate (≤ 1.1, ≤ 1.0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the idiom of PyTorch's docs)

import handgrad
from benchmarks.timing import Result, interleaved_medians

CASES = [((50, 13, 3), 1.5), ((1024, 100, 10), 1.1), ((65536, 256, 16), 1.0)]


def run(quick: bool) -> list[Result]:
    results = []
    for (q, n, p), goal in CASES:
        g = torch.Generator().manual_seed(0)
        X, Y = torch.randn(q, n, generator=g), torch.randn(q, p, generator=g)
        W = (0.1 * torch.randn(n, p, generator=g)).requires_grad_()
        b = torch.zeros(p, requires_grad=True)
        W_t = W.detach().T.contiguous().requires_grad_()  # F.linear's layout, (p, n)
        b_native = b.detach().clone().requires_grad_()

        def hand(W=W, b=b, X=X, Y=Y):
            W.grad = b.grad = None
            handgrad.mse(handgrad.linear(X, W, b), Y).backward()

        def native(W_t=W_t, b=b_native, X=X, Y=Y, q=q):
            W_t.grad = b.grad = None
            (((F.linear(X, W_t, b) - Y) ** 2).sum() / q).backward()

        hand(), native()
        torch.testing.assert_close(W.grad.T, W_t.grad, rtol=1e-4, atol=1e-5)
        t = interleaved_medians(
            {"handgrad": hand, "native": native},
            repeats=3 if quick else 21,
            min_seconds=0.002 if quick else 0.02,
        )
        results.append(
            Result(
                figure="1 op overhead",
                case=f"linear→mse fwd+bwd (q, n, p) = ({q}, {n}, {p})",
                handgrad=t["handgrad"],
                peer=t["native"],
                peer_name="F.linear + ((Ŷ−Y)²).sum()/q, autograd",
                goal=goal,
                notes=["gradients of W and b checked equal to the peer's (rtol 1e-4)"],
            )
        )
    return results
