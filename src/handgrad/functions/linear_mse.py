"""The fused loss mse(XW + b, Y): one blocked pass over X gives the loss and its gradients."""

from __future__ import annotations

import threading

import torch

from handgrad.functions import blocked_pass
from handgrad.functions.tracing import is_compiling, without_jvp
from handgrad.functions.validate import check_linear_mse


def loss_and_grads(
    X: torch.Tensor, W: torch.Tensor, b: torch.Tensor, Y: torch.Tensor, *, grads: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    r"""mse(XW + b, Y) and its gradients in W and b, in one blocked pass over X, no graph.

    For each block of rows: R = X_blk W + b − Y_blk, then Σ R², X_blkᵀ R and Σᵢ Rᵢ are
    added up while X_blk is in cache (``blocked_pass.sums``). Partial sums are kept in
    float64 when the inputs are float32, so the error does not grow with the number of
    blocks. Inputs are trusted (validate at the public entry, ``linear_mse``).

    Parameters
    ----------
    X : torch.Tensor of shape (q, n)
    W : torch.Tensor of shape (n, p)
    b : torch.Tensor of shape (p,)
    Y : torch.Tensor of shape (q, p)
    grads : bool, default=True
        Whether to accumulate the gradients too; False returns ``(loss, None, None)``.

    Returns
    -------
    loss : 0-dim tensor
        (1/q) Σᵢⱼ Rᵢⱼ².
    grad_W : tensor of shape (n, p) or None
        (2/q) Xᵀ R.
    grad_b : tensor of shape (p,) or None
        (2/q) Σᵢ Rᵢ.
    """
    q = X.shape[0]
    sse, XtR, R_sum = blocked_pass.sums(X, W, b, Y, grads)
    loss = (sse / q).to(X.dtype)
    if not grads:
        return loss, None, None
    return loss, (XtR * (2.0 / q)).to(X.dtype), (R_sum * (2.0 / q)).to(X.dtype)


def _residual(X, W, b, Y):
    """R = XW + b − Y, differentiable: (q, n) @ (n, p) + (p,) − (q, p) -> (q, p)."""
    return torch.addmm(b, X, W) - Y


# forward hands the gradient sums to setup_context through this slot: a setup_context-style
# forward has no ctx, and returning the sums as extra outputs would change the
# Function's signature. setup_context takes them only if they belong to its output.
_handoff = threading.local()


class LinearMSE(torch.autograd.Function):
    r"""mse(XW + b, Y) = (1/q) Σᵢⱼ Rᵢⱼ², with R = XW + b − Y, fused into one Function.

    Shapes: X (q, n), W (n, p), b (p,), Y (q, p), R (q, p); output a 0-dim tensor.
    The sum is divided by the number of examples q only, as in ``MSE``.

    Forward makes one pass over X in row blocks (``loss_and_grads``). When an input
    requires grad, the same pass also adds up Xᵀ R and Σᵢ Rᵢ while each block is in
    cache, so backward need not read X again. When none does (e.g. the manual path,
    ``handgrad.forward`` on plain tensors), forward cannot know that a backward will
    follow; backward then makes that pass itself, still without a (q, n) temporary.

    Derivation. C = (1/q) Σᵢⱼ Rᵢⱼ², so ∂C/∂R = (2/q) R. R is linear in each input,
    ∂R = ∂X W + X ∂W + 1 ∂bᵀ − ∂Y; by the chain rule, with g = ∂L/∂C a scalar:

    - ∂L/∂W = (2/q) g Xᵀ R          (n, q) @ (q, p) -> (n, p)
    - ∂L/∂b = (2/q) g Σᵢ Rᵢ          the column sums of R -> (p,)
    - ∂L/∂X = (2/q) g R Wᵀ          (q, p) @ (p, n) -> (q, n)
    - ∂L/∂Y = −(2/q) g R            (q, p)

    These are ``Linear``'s gradients with G = ∂C/∂Ŷ = (2/q) g R, ``MSE``'s. Backward
    scales the sums saved by forward; R itself, needed for ∂L/∂X and ∂L/∂Y, is
    recomputed from X (one (q, p) tensor; no (q, n) temporary). When backward runs in
    grad mode (``create_graph=True``), everything is recomputed from the saved inputs
    by differentiable ops, so double backward differentiates the formulas above.

    Forward mode (``jvp``): dC = (2/q) Σᵢⱼ Rᵢⱼ (dX W + X dW + db − dY)ᵢⱼ.
    """

    # forward, backward and jvp use only vmappable torch ops, so torch.func can batch them.
    generate_vmap_rule = True

    @staticmethod
    def forward(X, W, b, Y):
        inputs = (X, W, b, Y)
        # Hand the sums over only on plain eager tensors: under torch.func or Dynamo,
        # forward and setup_context are not called back to back on the same tensors.
        fuse = (
            any(t.requires_grad for t in inputs)
            and not is_compiling()
            and not torch._C._are_functorch_transforms_active()
        )
        loss, grad_W, grad_b = loss_and_grads(X, W, b, Y, grads=fuse)
        _handoff.sums = (loss, grad_W, grad_b) if fuse else None
        return loss

    @staticmethod
    def setup_context(ctx, inputs, output):
        X, W, b, Y = inputs
        sums = getattr(_handoff, "sums", None)
        _handoff.sums = None
        # grad_W1, grad_b1: the gradients for g = 1, or None when forward did not add them up.
        grad_W1 = grad_b1 = None
        if sums is not None and sums[0] is output:
            _, grad_W1, grad_b1 = sums
        ctx.save_for_backward(X, W, b, Y, grad_W1, grad_b1)
        ctx.save_for_forward(X, W, b, Y)

    @staticmethod
    def backward(ctx, g):
        X, W, b, Y, grad_W1, grad_b1 = ctx.saved_tensors
        grad_X = grad_W = grad_b = grad_Y = None
        need_X, need_W, need_b, need_Y = ctx.needs_input_grad
        scale = (2.0 / X.shape[0]) * g  # 0-dim
        if torch.is_grad_enabled():  # double backward: differentiable recomputation
            R = _residual(X, W, b, Y)  # (q, p)
            G = scale * R  # (q, p), ∂L/∂Ŷ
            grad_W = X.T @ G if need_W else None  # (n, q) @ (q, p) -> (n, p)
            grad_b = G.sum(dim=0) if need_b else None  # (q, p) -> (p,)
        else:
            if (need_W or need_b) and grad_W1 is None:  # forward did not add them up
                _, grad_W1, grad_b1 = loss_and_grads(X, W, b, Y)
            grad_W = g * grad_W1 if need_W else None  # (n, p); grad_W1 holds the 2/q
            grad_b = g * grad_b1 if need_b else None  # (p,)
            G = scale * _residual(X, W, b, Y) if need_X or need_Y else None  # (q, p)
        if need_X:
            grad_X = G @ W.T  # (q, p) @ (p, n) -> (q, n)
        if need_Y:
            grad_Y = -G  # (q, p)
        return grad_X, grad_W, grad_b, grad_Y

    @staticmethod
    def jvp(ctx, dX, dW, db, dY):
        X, W, b, Y = ctx.saved_tensors[:4]
        dR = None
        for term in (
            None if dX is None else dX @ W,  # (q, n) @ (n, p) -> (q, p)
            None if dW is None else X @ dW,  # (q, n) @ (n, p) -> (q, p)
            db,  # (p,), broadcast over the rows
            None if dY is None else -dY,  # (q, p)
        ):
            if term is not None:
                dR = term if dR is None else dR + term
        if dR is None:
            return None
        R = _residual(X, W, b, Y)  # (q, p)
        return (2.0 / X.shape[0]) * (R * dR).sum()


class _TracedLinearMSE(without_jvp(LinearMSE)):
    """``LinearMSE`` as ``torch.compile`` traces it: the same formulas, in plain torch ops.

    The eager Function hands the gradient sums from forward to ``setup_context`` through
    a thread-local slot, and its backward branches on the grad mode and on what forward
    saved: state that a tracer records once. On PyTorch 2.11 (CUDA), compiling the eager
    Function gave a wrong ∂L/∂X in every element; 2.13 did not reproduce it, and the
    cause was not isolated. This twin keeps no such state: forward is R = XW + b − Y
    and (1/q) Σ R², backward the derivation's four lines, which the compiler turns into
    large products by itself.
    """

    @staticmethod
    def forward(X, W, b, Y):
        R = _residual(X, W, b, Y)  # (q, p)
        return (R * R).sum() / X.shape[0]

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, g):
        X, W, b, Y = ctx.saved_tensors
        need_X, need_W, need_b, need_Y = ctx.needs_input_grad
        G = (2.0 / X.shape[0]) * g * _residual(X, W, b, Y)  # (q, p), ∂L/∂Ŷ
        return (
            G @ W.T if need_X else None,  # (q, p) @ (p, n) -> (q, n)
            X.T @ G if need_W else None,  # (n, q) @ (q, p) -> (n, p)
            G.sum(dim=0) if need_b else None,  # (q, p) -> (p,)
            -G if need_Y else None,  # (q, p)
        )


_TRACEABLE = _TracedLinearMSE  # for torch.compile: see tracing.py


def linear_mse(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Compute mse(XW + b, Y) = (1/q) Σ (XW + b − Y)² through the fused ``LinearMSE``.

    Equal to ``mse(linear(X, W, b), Y)`` in value and every gradient, in one pass over X
    and with no (q, n) temporary.

    Parameters
    ----------
    X : torch.Tensor of shape (q, n)
        Inputs, one example a row.
    W : torch.Tensor of shape (n, p)
        Weights.
    b : torch.Tensor of shape (p,)
        Bias, added to every row.
    Y : torch.Tensor of shape (q, p)
        Targets.

    Returns
    -------
    torch.Tensor
        A 0-dim tensor: the squared error summed over all entries, divided by q.

    Raises
    ------
    TypeError, ValueError
        When an argument is not a floating-point tensor, or the shapes, dtypes or
        devices do not agree; the message names the argument.
    """
    check_linear_mse(X, W, b, Y)
    return (_TRACEABLE if is_compiling() else LinearMSE).apply(X, W, b, Y)
