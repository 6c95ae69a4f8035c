"""The classic lab's check: are the hand-written backward passes right?

``handgrad.check`` compares each Function's backward with float64 finite differences,
input by input, and also runs manual chaining through ``Context``, double backward
(``gradgradcheck``) and forward mode (``jvp``). It is given float32 inputs here on
purpose: it computes the numeric side in float64 whatever the inputs' dtype, where
``torch.autograd.gradcheck`` would fail correct code in float32.

Run: ``python examples/gradient_check.py``
"""

from __future__ import annotations

import torch

import handgrad
from handgrad import MSE, Linear


def main() -> int:
    torch.manual_seed(0)
    q, n, p = 10, 5, 3

    def rand(*shape):
        return torch.randn(shape, dtype=torch.float32, requires_grad=True)

    cases = {
        "Linear(X, W, b)": (Linear, (rand(q, n), rand(n, p), rand(p))),
        "MSE(Y_hat, Y)": (MSE, (rand(q, p), rand(q, p))),
    }
    all_ok = True
    for name, (function, inputs) in cases.items():
        report = handgrad.check(function, *inputs)
        print(f"== {name}")
        print(report)
        all_ok &= report.ok
    print("all gradients ok" if all_ok else "SOME GRADIENTS ARE WRONG")
    return 0 if all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
