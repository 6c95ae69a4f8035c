"""Figure 1, op overhead: forward and backward of linear → mse, handgrad against native.

Both sides float32 on the CPU, both through autograd. handgrad: ``mse(linear(X, W, b),
Y)`` through its hand-written Functions (``Function.apply``, input checks included).
Peer: the natural native code, ``F.linear(X, W_t, b)`` with weight (p, n), then
``((Ŷ − Y) ** 2).sum() / q``. The timing of each side includes clearing the gradients,
the forward and ``loss.backward()`` for W and b (X and Y are data); nothing else.
Agreement: the loss and the gradients of W and b, each to float32 rounding.
Goals, handgrad time / peer time: small ops pay the Python cost of two custom Functions
and of the input checks, so the goal is looser there (≤ 1.5); at size, the same BLAS
calls dominate (≤ 1.1, ≤ 1.0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the idiom of PyTorch's docs)

import handgrad
from benchmarks.timing import (
    Check,
    Result,
    interleaved_timings,
    relative_difference,
    repeats,
    rounding_tolerance,
)

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
            loss = handgrad.mse(handgrad.linear(X, W, b), Y)
            loss.backward()
            return loss

        def native(W_t=W_t, b=b_native, X=X, Y=Y, q=q):
            W_t.grad = b.grad = None
            loss = ((F.linear(X, W_t, b) - Y) ** 2).sum() / q
            loss.backward()
            return loss

        hand_loss, native_loss = hand(), native()
        # The path meant: handgrad's own Functions, MSE on top of Linear, in the graph.
        graph = hand_loss.grad_fn
        if (type(graph).__name__, type(graph.next_functions[0][0]).__name__) != (
            "MSEBackward",
            "LinearBackward",
        ):
            raise RuntimeError(f"fig 1 meant to time handgrad's Functions; the graph is {graph}")
        why = "float32 rounding of the sums on both sides (benchmarks.timing.rounding_tolerance)"
        checks = [
            Check(
                "loss, relative difference",
                relative_difference(hand_loss, native_loss),
                rounding_tolerance(q * p),
                why,
            ),
            Check(
                "∂W, ‖Δ‖/‖∂W‖",
                relative_difference(W.grad.T, W_t.grad),
                rounding_tolerance(q),
                why,
            ),
            Check(
                "∂b, ‖Δ‖/‖∂b‖",
                relative_difference(b.grad, b_native.grad),
                rounding_tolerance(q),
                why,
            ),
        ]
        t = interleaved_timings(
            {"handgrad": hand, "native": native},
            repeats=repeats(quick, 21),
            min_seconds=0.002 if quick else 0.02,
        )
        results.append(
            Result.timed(
                "1 op overhead",
                f"linear→mse fwd+bwd (q, n, p) = ({q}, {n}, {p})",
                t["handgrad"],
                t["native"],
                peer_name="F.linear + ((Ŷ−Y)²).sum()/q, autograd",
                goal=goal,
                handgrad_side="float32, linear then mse (handgrad), Function.apply, autograd",
                peer_side="float32, F.linear then ((Ŷ−Y)²).sum()/q, autograd",
                includes="zero the gradients, forward, loss.backward() for W and b",
                checks=checks,
            )
        )
    return results
