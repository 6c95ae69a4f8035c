"""The mean squared error over examples, with its backward pass written by hand."""

from __future__ import annotations

import torch

from handgrad.functions.tracing import is_compiling, without_jvp
from handgrad.functions.validate import check_mse


class MSE(torch.autograd.Function):
    r"""mse(Ŷ, Y) = (1/q) Σᵢⱼ (Ŷᵢⱼ − Yᵢⱼ)², a 0-dim tensor.

    Shapes: Ŷ and Y (q, p). The sum runs over all q·p entries and is divided by the
    number of examples q only. That is **not** ``torch.nn.MSELoss()``, which divides
    by q·p: ``mse(Ŷ, Y) == p * torch.nn.functional.mse_loss(Ŷ, Y)``. The two agree
    when p = 1. The derivation is in ``docs/derivations.md``, section "MSE".

    With D = Ŷ − Y of shape (q, p) and g = ∂C/∂mse, a scalar:

    - ∂C/∂Ŷ = (2/q) · g · D     (q, p)
    - ∂C/∂Y = −(2/q) · g · D    (q, p): the same magnitude, the opposite sign

    Forward mode (``jvp``): d mse = (2/q) Σᵢⱼ Dᵢⱼ (dŶᵢⱼ − dYᵢⱼ).
    """

    # forward, backward and jvp use only vmappable torch ops, so torch.func can batch them.
    generate_vmap_rule = True

    @staticmethod
    def forward(Y_hat, Y):
        D = Y_hat - Y  # (q, p)
        return (D * D).sum() / Y_hat.shape[0]

    @staticmethod
    def setup_context(ctx, inputs, output):
        Y_hat, Y = inputs
        # D is recomputed in backward from the inputs, so that double backward
        # differentiates through it.
        ctx.save_for_backward(Y_hat, Y)
        ctx.save_for_forward(Y_hat, Y)

    @staticmethod
    def backward(ctx, g):
        Y_hat, Y = ctx.saved_tensors
        grad_Y_hat = grad_Y = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            grad_D = (2.0 / Y_hat.shape[0]) * g * (Y_hat - Y)  # (q, p)
            if ctx.needs_input_grad[0]:
                grad_Y_hat = grad_D
            if ctx.needs_input_grad[1]:
                grad_Y = -grad_D
        return grad_Y_hat, grad_Y

    @staticmethod
    def jvp(ctx, dY_hat, dY):
        Y_hat, Y = ctx.saved_tensors
        if dY_hat is None and dY is None:
            return None
        if dY is None:
            dD = dY_hat
        elif dY_hat is None:
            dD = -dY
        else:
            dD = dY_hat - dY  # (q, p)
        return (2.0 / Y_hat.shape[0]) * ((Y_hat - Y) * dD).sum()


_TRACEABLE = without_jvp(MSE)  # for torch.compile: see tracing.py


def mse(Y_hat: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Compute (1/q) Σ (Ŷ − Y)² through the hand-written ``MSE`` Function.

    Parameters
    ----------
    Y_hat : torch.Tensor of shape (q, p)
        Predictions.
    Y : torch.Tensor of shape (q, p)
        Targets.

    Returns
    -------
    torch.Tensor
        A 0-dim tensor: the squared error summed over all entries, divided by q.
        ``torch.nn.functional.mse_loss`` divides by q·p instead; multiply it by p
        to get this value.

    Raises
    ------
    TypeError, ValueError
        When an argument is not a floating-point tensor, or the shapes, dtypes or
        devices do not agree; the message names the argument.
    """
    check_mse(Y_hat, Y)
    return (_TRACEABLE if is_compiling() else MSE).apply(Y_hat, Y)
