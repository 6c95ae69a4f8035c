"""Numeric gradients: central finite differences in float64, on copies of the inputs.

The checker compares vector-Jacobian products. For a random ``grad_output`` V shaped like
the output, the scalar L(x) = Σ V ⊙ f(x) has gradient ∂L/∂x = Vᵀ J, which is exactly
what a backward pass returns when given V. Its numeric estimate needs two forward
calls per input element:

    ∂L/∂xₖ ≈ (L(x + ε eₖ) − L(x − ε eₖ)) / 2ε

with an error of order ε² (truncation) plus 1e-16/ε (rounding): about 1e-10 for
ε = 1e-6 in float64, and useless in float32, which is why everything here is float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch


def to_float64(inputs: Sequence[Any]) -> list[Any]:
    """Detached float64 copies of the floating-point tensors; everything else as is."""
    return [
        # contiguous, so that finite differences can perturb it through a flat view
        x.detach().to(torch.float64).clone(memory_format=torch.contiguous_format)
        if isinstance(x, torch.Tensor) and x.dtype.is_floating_point
        else x
        for x in inputs
    ]


def random_grad_output(output: torch.Tensor, seed: int) -> torch.Tensor:
    """A seeded random ``grad_output`` shaped like ``output``, in float64.

    Each entry is ±u with u uniform in [0.5, 1.5]: never near zero, so that no output
    element is weighted out of the check, and random, so that a wrong Jacobian gives
    a wrong product with probability one.
    """
    generator = torch.Generator().manual_seed(seed)
    magnitude = 0.5 + torch.rand(output.shape, generator=generator, dtype=torch.float64)
    sign = torch.randint(0, 2, output.shape, generator=generator).to(torch.float64) * 2 - 1
    return magnitude * sign


def numeric_vjp(
    call: Callable[..., torch.Tensor],
    inputs: list[Any],
    grad_output: torch.Tensor,
    indices: Sequence[int],
    eps: float,
) -> dict[int, torch.Tensor]:
    """Estimate ∂L/∂x for each input in ``indices``, L = Σ grad_output ⊙ call(*inputs).

    Parameters
    ----------
    call : callable
        Runs the forward; called under ``torch.no_grad()``.
    inputs : list
        float64 inputs (see :func:`to_float64`); perturbed in place and restored.
    grad_output : torch.Tensor
        The weights V, shaped like the output.
    indices : sequence of int
        Positions of the inputs to differentiate.
    eps : float
        The finite-difference step ε.

    Returns
    -------
    dict of int to torch.Tensor
        One float64 gradient per index, shaped like its input.
    """

    def loss() -> float:
        return float((call(*inputs).to(torch.float64) * grad_output).sum())

    gradients = {}
    with torch.no_grad():
        for i in indices:
            x = inputs[i]
            flat = x.view(-1)  # x is a contiguous copy, so the view writes into it
            gradient = torch.empty(x.numel(), dtype=torch.float64)
            for k in range(x.numel()):
                original = float(flat[k])
                flat[k] = original + eps
                plus = loss()
                flat[k] = original - eps
                minus = loss()
                flat[k] = original
                gradient[k] = (plus - minus) / (2 * eps)
            gradients[i] = gradient.view(x.shape)
    return gradients
