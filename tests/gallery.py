"""A gallery of hand-written backward passes, each wrong in one known way, and correct ones.

Every wrong Function is a real mistake from writing backward passes by hand. ``CASES``
pairs each with the diagnosis the checker must give per tensor input (and the factor,
where one applies); ``CORRECT`` lists Functions the checker must never flag.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from handgrad import MSE, Linear, linear, mse


def tensors(*shapes: tuple[int, ...], dtype=torch.float64, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=generator, dtype=torch.float64).to(dtype) for s in shapes]


# --- MSE, mse(Ŷ, Y) = (1/q) Σ (Ŷ − Y)², gone wrong ---------------------------------------


class MSEMissingTwo(MSE):
    """Forgets the 2 from the square: ∂/∂Ŷ = (1/q) g D."""

    @staticmethod
    def backward(ctx, g):
        Y_hat, Y = ctx.saved_tensors
        grad_D = g * (Y_hat - Y) / Y_hat.shape[0]
        return grad_D, -grad_D


class MSESameSign(MSE):
    """Gives ∂/∂Y the sign of ∂/∂Ŷ, forgetting that D = Ŷ − Y falls as Y grows."""

    @staticmethod
    def backward(ctx, g):
        Y_hat, Y = ctx.saved_tensors
        grad_D = (2.0 / Y_hat.shape[0]) * g * (Y_hat - Y)
        return grad_D, grad_D


class MSEMeanForward(MSE):
    """Forward divides by q·p (as torch's mse_loss), backward by q only: p times too big."""

    @staticmethod
    def forward(Y_hat, Y):
        D = Y_hat - Y
        return (D * D).sum() / Y_hat.numel()


class MSEIgnoresG(MSE):
    """Returns the local derivative without multiplying by the incoming g."""

    @staticmethod
    def backward(ctx, g):
        Y_hat, Y = ctx.saved_tensors
        grad_D = (2.0 / Y_hat.shape[0]) * (Y_hat - Y)
        return grad_D, -grad_D


class MSEZerosForY(MSE):
    """Fills ∂/∂Y with zeros instead of computing it."""

    @staticmethod
    def backward(ctx, g):
        Y_hat, Y = ctx.saved_tensors
        return (2.0 / Y_hat.shape[0]) * g * (Y_hat - Y), torch.zeros_like(Y)


class CtxStyleMSEMissingTwo(torch.autograd.Function):
    """MSEMissingTwo in the forward(ctx, …) style."""

    @staticmethod
    def forward(ctx, Y_hat, Y):
        ctx.save_for_backward(Y_hat, Y)
        D = Y_hat - Y
        return (D * D).sum() / Y_hat.shape[0]

    @staticmethod
    def backward(ctx, g):
        Y_hat, Y = ctx.saved_tensors
        grad_D = g * (Y_hat - Y) / Y_hat.shape[0]
        return grad_D, -grad_D


# --- Linear, f(X, W, b) = XW + b, gone wrong ---------------------------------------------


def _linear_backward(body: Callable) -> type:
    """A Linear whose backward is ``body(X, W, G)``, for one-line mistakes."""

    def backward(ctx, G):
        X, W = ctx.saved_tensors
        return body(X, W, G)

    return type(body.__name__, (Linear,), {"backward": staticmethod(backward)})


def LinearUnsummedBias(X, W, G):  # the bias gradient left as G, (q, p), not summed
    return G @ W.T, X.T @ G, G


def LinearTransposedW(X, W, G):  # Gᵀ X, (p, n), where Xᵀ G, (n, p), belongs
    return G @ W.T, G.T @ X, G.sum(0)


def LinearWUntransposed(X, W, G):  # G W where G Wᵀ belongs: no transpose explains it
    return G @ W, X.T @ G, G.sum(0)


def LinearIgnoresGForW(X, W, G):  # Xᵀ 1: the weight gradient as if G were all ones
    return G @ W.T, X.T @ torch.ones_like(G), G.sum(0)


def LinearTwoGradients(X, W, G):  # forgets the bias entirely, even its None
    return G @ W.T, X.T @ G


def LinearNoneForBias(X, W, G):  # None where a gradient is due
    return G @ W.T, X.T @ G, None


def LinearSwapped(X, W, G):  # the right gradients in the wrong order
    return X.T @ G, G @ W.T, G.sum(0)


def LinearBiasSign(X, W, G):  # a stray minus sign
    return G @ W.T, X.T @ G, -G.sum(0)


def LinearRaises(X, W, G):  # the shapes do not even fit
    return X @ G, X.T @ G, G.sum(0)


class LinearFloat32Bug(Linear):
    """Right in float64, 1 % off in float32: a dtype-dependent shortcut gone wrong."""

    @staticmethod
    def backward(ctx, G):
        grad_X, grad_W, grad_b = Linear.backward(ctx, G)
        if grad_W is not None and G.dtype == torch.float32:
            grad_W = grad_W * 1.01
        return grad_X, grad_W, grad_b


# --- a non-tensor argument ---------------------------------------------------------------


class ScaledLinear(torch.autograd.Function):
    """f(X, W, alpha) = alpha · XW, alpha a Python float: ∂/∂X = alpha G Wᵀ, ∂/∂W = alpha Xᵀ G."""

    @staticmethod
    def forward(X, W, alpha):
        return alpha * (X @ W)

    @staticmethod
    def setup_context(ctx, inputs, output):
        X, W, alpha = inputs
        ctx.save_for_backward(X, W)
        ctx.alpha = alpha  # a float, not a tensor: fine on ctx

    @staticmethod
    def backward(ctx, G):
        X, W = ctx.saved_tensors
        return ctx.alpha * (G @ W.T), ctx.alpha * (X.T @ G), None


class ScaledLinearForgetsAlpha(ScaledLinear):
    @staticmethod
    def backward(ctx, G):
        X, W = ctx.saved_tensors
        return G @ W.T, X.T @ G, None


# --- plain callables ---------------------------------------------------------------------


def linear_detached_W(X, W, b):
    """A callable that detaches W, so no gradient reaches it."""
    return X @ W.detach() + b


def model_with_bad_mse(X, W, b, Y):
    """A callable built on MSEMissingTwo: every gradient upstream is halved too."""
    return MSEMissingTwo.apply(Linear.apply(X, W, b), Y)


# --- the cases -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A wrong target, its inputs, and the diagnosis expected for each tensor input."""

    name: str
    function: Any
    shapes: tuple[Any, ...]  # a tuple shape per tensor input; other values passed as is
    expected: tuple[str, ...]
    factors: dict[int, float] = field(default_factory=dict)
    gradcheck_right: bool = True  # False where gradcheck passes a wrong gradient

    def inputs(self, dtype=torch.float64, seed: int = 0) -> list[Any]:
        made = iter(
            tensors(*(s for s in self.shapes if isinstance(s, tuple)), dtype=dtype, seed=seed)
        )
        return [next(made) if isinstance(s, tuple) else s for s in self.shapes]


LIN = ((4, 3), (3, 2), (2,))  # X, W, b with q, n, p = 4, 3, 2
SQUARE = ((4, 3), (3, 3), (3,))  # n = p, where a transpose keeps the shape
ERR = ((4, 3), (4, 3))  # Ŷ, Y with q, p = 4, 3

CASES = (
    Case("mse missing 2", MSEMissingTwo, ERR, ("scaled", "scaled"), {0: 0.5, 1: 0.5}),
    Case("mse same sign", MSESameSign, ERR, ("ok", "sign-flipped"), {1: -1.0}),
    Case("mse q·p vs q", MSEMeanForward, ERR, ("scaled", "scaled"), {0: 3.0, 1: 3.0}),
    Case("mse ignores g", MSEIgnoresG, ERR, ("ignores-grad-output",) * 2),
    Case("mse zeros for Y", MSEZerosForY, ERR, ("ok", "missing")),
    Case(
        "forward(ctx, …) style mse", CtxStyleMSEMissingTwo, ERR, ("scaled",) * 2, {0: 0.5, 1: 0.5}
    ),
    Case(
        "unsummed bias",
        _linear_backward(LinearUnsummedBias),
        LIN,
        ("ok", "ok", "wrong-shape"),
        gradcheck_right=False,
    ),
    Case("transposed W", _linear_backward(LinearTransposedW), SQUARE, ("ok", "transposed", "ok")),
    Case("G W for X", _linear_backward(LinearWUntransposed), SQUARE, ("mismatch", "ok", "ok")),
    Case(
        "ignores G for W",
        _linear_backward(LinearIgnoresGForW),
        LIN,
        ("ok", "ignores-grad-output", "ok"),
    ),
    Case("two gradients", _linear_backward(LinearTwoGradients), LIN, ("wrong-arity",) * 3),
    Case("None for b", _linear_backward(LinearNoneForBias), LIN, ("ok", "ok", "missing")),
    Case("swapped", _linear_backward(LinearSwapped), LIN, ("wrong-shape", "wrong-shape", "ok")),
    Case(
        "bias sign", _linear_backward(LinearBiasSign), LIN, ("ok", "ok", "sign-flipped"), {2: -1.0}
    ),
    Case("backward raises", _linear_backward(LinearRaises), LIN, ("mismatch",) * 3),
    Case(
        "forgets alpha",
        ScaledLinearForgetsAlpha,
        ((4, 3), (3, 2), 4.0),
        ("scaled", "scaled"),
        {0: 0.25, 1: 0.25},
    ),
    Case("callable detaches W", linear_detached_W, LIN, ("ok", "missing", "ok")),
    Case(
        "callable on bad mse",
        model_with_bad_mse,
        (*LIN, (4, 2)),
        ("scaled",) * 4,
        {0: 0.5, 1: 0.5, 2: 0.5, 3: 0.5},
    ),
)


# --- correct targets ---------------------------------------------------------------------


class CtxStyleLinear(torch.autograd.Function):
    """Linear in the forward(ctx, …) style; no jvp, so forward mode is not applicable."""

    @staticmethod
    def forward(ctx, X, W, b):
        ctx.save_for_backward(X, W)
        return X @ W + b

    @staticmethod
    def backward(ctx, G):
        X, W = ctx.saved_tensors
        grad_X = grad_W = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_X = G @ W.T
        if ctx.needs_input_grad[1]:
            grad_W = X.T @ G
        if ctx.needs_input_grad[2]:
            grad_b = G.sum(0)
        return grad_X, grad_W, grad_b


class OnceDifferentiableMSE(MSE):
    """A right MSE whose backward cannot be differentiated again."""

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        return MSE.backward(ctx, g)


def model(X, W, b, Y):
    """A plain callable through the project's functional forms."""
    return mse(linear(X, W, b), Y)


Shapes = Callable[[int, int, int], tuple[Any, ...]]
LINEAR_SHAPES: Shapes = lambda q, n, p: ((q, n), (n, p), (p,))  # noqa: E731
ERR_SHAPES: Shapes = lambda q, n, p: ((q, p), (q, p))  # noqa: E731

CORRECT: tuple[tuple[str, Any, Shapes], ...] = (
    ("Linear", Linear, LINEAR_SHAPES),
    ("MSE", MSE, ERR_SHAPES),
    ("CtxStyleLinear", CtxStyleLinear, LINEAR_SHAPES),
    ("OnceDifferentiableMSE", OnceDifferentiableMSE, ERR_SHAPES),
    ("ScaledLinear", ScaledLinear, lambda q, n, p: ((q, n), (n, p), -1.5)),
    ("model", model, lambda q, n, p: ((q, n), (n, p), (p,), (q, p))),
)


def correct_inputs(shapes: Shapes, q: int, n: int, p: int, dtype, seed: int = 0) -> list[Any]:
    spec = shapes(q, n, p)
    return Case("", None, spec, ()).inputs(dtype, seed)
