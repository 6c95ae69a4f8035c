"""The affine map f(X, W, b) = XW + b, with its backward pass written by hand."""

from __future__ import annotations

import torch

from handgrad.functions.tracing import is_compiling, without_jvp
from handgrad.functions.validate import check_linear


class Linear(torch.autograd.Function):
    r"""f(X, W, b) = XW + b, the bias broadcast over the rows.

    Shapes: X (q, n), W (n, p), b (p,), output Ŷ (q, p); q examples, n features,
    p outputs. The derivation is in ``docs/derivations.md``, section "Linear".

    Given G = ∂C/∂Ŷ of shape (q, p) for a scalar C downstream:

    - ∂C/∂X = G Wᵀ           (q, p) @ (p, n) -> (q, n)
    - ∂C/∂W = Xᵀ G           (n, q) @ (q, p) -> (n, p)
    - ∂C/∂b = Σᵢ Gᵢ:          the column sums of G -> (p,)

    The bias gradient is summed over the batch: b is shared by every row, so each
    row's contribution adds up. Returning G itself, of shape (q, p), is a bug that
    autograd hides by summing it for you.

    Forward mode (``jvp``): dŶ = dX W + X dW + db.
    """

    # forward, backward and jvp use only vmappable torch ops, so torch.func can batch them.
    generate_vmap_rule = True

    @staticmethod
    def forward(X, W, b):
        return torch.addmm(b, X, W)  # b + X @ W: (q, n) @ (n, p) + (p,) -> (q, p)

    @staticmethod
    def setup_context(ctx, inputs, output):
        X, W, _ = inputs
        ctx.save_for_backward(X, W)
        ctx.save_for_forward(X, W)

    @staticmethod
    def backward(ctx, G):
        X, W = ctx.saved_tensors
        grad_X = grad_W = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_X = G @ W.T  # (q, p) @ (p, n) -> (q, n)
        if ctx.needs_input_grad[1]:
            grad_W = X.T @ G  # (n, q) @ (q, p) -> (n, p)
        if ctx.needs_input_grad[2]:
            grad_b = G.sum(dim=0)  # (q, p) -> (p,)
        return grad_X, grad_W, grad_b

    @staticmethod
    def jvp(ctx, dX, dW, db):
        X, W = ctx.saved_tensors
        dY = None
        for term in (
            None if dX is None else dX @ W,  # (q, n) @ (n, p) -> (q, p)
            None if dW is None else X @ dW,  # (q, n) @ (n, p) -> (q, p)
            db,  # (p,), broadcast over the rows
        ):
            if term is not None:
                dY = term if dY is None else dY + term
        return dY.expand(X.shape[0], W.shape[1]) if dY is not None else None


_TRACEABLE = without_jvp(Linear)  # for torch.compile: see tracing.py


def linear(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Compute XW + b through the hand-written ``Linear`` Function.

    Parameters
    ----------
    X : torch.Tensor of shape (q, n)
        Inputs, one example a row.
    W : torch.Tensor of shape (n, p)
        Weights.
    b : torch.Tensor of shape (p,)
        Bias, added to every row.

    Returns
    -------
    torch.Tensor of shape (q, p)

    Raises
    ------
    TypeError, ValueError
        When an argument is not a floating-point tensor, or the shapes, dtypes or
        devices do not agree; the message names the argument.
    """
    check_linear(X, W, b)
    return (_TRACEABLE if is_compiling() else Linear).apply(X, W, b)
