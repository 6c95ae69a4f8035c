"""Numeric gradients: central finite differences in float64, on copies of the inputs.

The checker compares vector-Jacobian products. For random ``grad_outputs`` V_j shaped
like the outputs, the scalar L(x) = Σ_j Σ V_j ⊙ f_j(x) has gradient ∂L/∂x = Σ_j V_jᵀ J_j,
which is exactly what a backward pass returns when given the V_j. Its numeric estimate
needs two forward calls per input element:

    ∂L/∂xₖ ≈ (L(x + ε eₖ) − L(x − ε eₖ)) / 2ε

with an error of order ε² (truncation) plus 1e-16/ε (rounding): about 1e-10 for
ε = 1e-6 in float64, and useless in float32, which is why everything here is float64.
The same calls give each output's share L_j, so the estimate is kept per output too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from handgrad.checking.outputs import Outputs, weighted_sums
from handgrad.checking.placement import to_float64  # noqa: F401  (re-exported)


def numeric_vjp(
    call: Callable[..., Any],
    inputs: list[Any],
    grad_outputs: Sequence[Any],
    outputs: Outputs,
    indices: Sequence[int],
    eps: float,
) -> dict[int, torch.Tensor]:
    """Estimate ∂L_j/∂x for each output j and each input in ``indices``.

    Parameters
    ----------
    call : callable
        Runs the forward; called under ``torch.no_grad()``.
    inputs : list
        float64 inputs (see :func:`handgrad.checking.placement.to_float64`), on any
        device; perturbed in place and restored.
    grad_outputs : sequence of torch.Tensor
        The weights V_j, one per output.
    outputs : Outputs
        Which outputs are differentiable, and where they are defined.
    indices : sequence of int
        Positions of the inputs to differentiate.
    eps : float
        The finite-difference step ε.

    Returns
    -------
    dict of int to torch.Tensor
        For each index, a float64 CPU tensor of shape (number of outputs, *input shape):
        its sum over axis 0 is ∂L/∂x. An element is NaN or inf where a step left the
        forward's domain.
    """
    gradients = {}
    with torch.no_grad():
        for i in indices:
            x = inputs[i]
            flat = x.view(-1)  # x is a contiguous copy, so the view writes into it
            gradient = torch.empty((outputs.count, x.numel()), dtype=torch.float64)
            for k in range(x.numel()):
                original = float(flat[k])
                flat[k] = original + eps
                plus = weighted_sums(call(*inputs), grad_outputs, outputs)
                flat[k] = original - eps
                minus = weighted_sums(call(*inputs), grad_outputs, outputs)
                flat[k] = original
                gradient[:, k] = (
                    torch.tensor(plus, dtype=torch.float64)
                    - torch.tensor(minus, dtype=torch.float64)
                ) / (2 * eps)
            gradients[i] = gradient.view(outputs.count, *x.shape)
    return gradients


def mark_unstable(
    call: Callable[..., Any],
    inputs: list[Any],
    grad_outputs: Sequence[Any],
    outputs: Outputs,
    numeric: dict[int, torch.Tensor],
    suspects: dict[int, torch.Tensor],
    eps: float,
    atol: float,
    rtol: float,
) -> None:
    """Set to NaN the numeric gradients that change when the step shrinks tenfold.

    Near a pole (log x at x = 2ε) or a kink (|x| at x = ε/2), central differences
    measure the step, not the derivative, and a right backward would look wrong. Only
    the ``suspects`` (a boolean mask per input: where analytic and numeric disagree)
    are recomputed, at two forward calls each; where the two estimates disagree, the
    element has no reliable numeric gradient and gets no diagnosis.
    """
    with torch.no_grad():
        for i, mask in suspects.items():
            flat = inputs[i].view(-1)
            table = numeric[i].view(outputs.count, -1)
            for k in torch.nonzero(mask.reshape(-1)).flatten().tolist():
                original = float(flat[k])
                flat[k] = original + eps / 10
                plus = weighted_sums(call(*inputs), grad_outputs, outputs)
                flat[k] = original - eps / 10
                minus = weighted_sums(call(*inputs), grad_outputs, outputs)
                flat[k] = original
                finer = (sum(plus) - sum(minus)) / (2 * eps / 10)
                coarse = float(table[:, k].sum())
                if not abs(finer - coarse) <= atol + rtol * abs(finer):
                    table[:, k] = float("nan")
