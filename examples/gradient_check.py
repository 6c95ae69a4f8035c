"""The classic lab's check: are the hand-written backward passes right?

Runs ``torch.autograd.gradcheck`` (first derivatives, forward mode too) and
``gradgradcheck`` (second derivatives) on ``Linear`` and ``MSE`` in float64, the
precision finite differences need.

Run: ``python examples/gradient_check.py``
"""

from __future__ import annotations

import torch
from torch.autograd import gradcheck, gradgradcheck

from handgrad import MSE, Linear


def main() -> None:
    torch.manual_seed(0)
    q, n, p = 10, 5, 3

    def rand(*shape):
        return torch.randn(shape, dtype=torch.float64, requires_grad=True)

    cases = {
        "Linear(X, W, b)": (Linear, (rand(q, n), rand(n, p), rand(p))),
        "MSE(Y_hat, Y)": (MSE, (rand(q, p), rand(q, p))),
    }
    for name, (function, inputs) in cases.items():
        first = gradcheck(function.apply, inputs, check_forward_ad=True)
        second = gradgradcheck(function.apply, inputs)
        print(
            f"{name:16s} gradcheck: {'ok' if first else 'FAILED'}  "
            f"gradgradcheck: {'ok' if second else 'FAILED'}"
        )


if __name__ == "__main__":
    main()
