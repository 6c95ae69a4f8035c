"""The exact ways of computing one step's loss and gradients with respect to W and b.

Every path returns ``(loss, grad_W, grad_b)`` for the same mathematics,
C = mse(XW + b, Y); they differ only in how much work and memory they take:

- ``chained``: the teaching path, ``Linear`` then ``MSE``, through autograd
  (``grad="autograd"``) or chained by hand through ``Context`` with no graph
  (``grad="manual"``).
- ``stats``: full batch only. From S = X̃ᵀX̃ and T = X̃ᵀY gathered once, the gradient of
  θ = [W; bᵀ] is (2/q)(Sθ − T) and the loss (1/q)(tr YᵀY − 2 tr θᵀT + tr θᵀSθ): the
  same iterates with no pass over X per epoch.
"""

from __future__ import annotations

import torch

import handgrad
from handgrad.functions import MSE, Linear
from handgrad.training.statistics import Statistics, theta_of


class ChainedPath:
    """``Linear`` then ``MSE``: the hand-written Functions, one after the other."""

    name = "chained"

    def __init__(self, grad: str) -> None:
        self.grad = grad

    def __call__(self, X, Y, W, b):
        if self.grad == "manual":
            Y_hat, linear_ctx = handgrad.forward(Linear, X, W, b, needs_input_grad=(0, 1, 1))
            loss, mse_ctx = handgrad.forward(MSE, Y_hat, Y, needs_input_grad=(1, 0))
            grad_Y_hat, _ = mse_ctx.backward()
            _, grad_W, grad_b = linear_ctx.backward(grad_Y_hat)
            return loss, grad_W, grad_b
        with torch.enable_grad():
            W, b = W.detach().requires_grad_(), b.detach().requires_grad_()
            loss = MSE.apply(Linear.apply(X, W, b), Y)
            grad_W, grad_b = torch.autograd.grad(loss, (W, b))
        return loss.detach(), grad_W, grad_b


class StatsPath:
    """Full-batch gradients from the sufficient statistics S and T (see module doc).

    It works in float64 whatever the parameters' dtype: the (n+1)-sized products cost
    next to nothing, and the loss is a difference of large terms near the optimum.
    """

    name = "stats"

    def __init__(self, stats: Statistics) -> None:
        self.stats = stats

    def __call__(self, X, Y, W, b):
        stats = self.stats
        theta = theta_of(W, b)  # (n+1, p)
        S_theta = stats.S @ theta  # (n+1, n+1) @ (n+1, p) -> (n+1, p)
        grad = ((2.0 / stats.q) * (S_theta - stats.T)).to(W.dtype)  # (n+1, p)
        loss = ((theta * (S_theta - 2.0 * stats.T)).sum() + stats.yty.sum()) / stats.q
        return loss, grad[:-1], grad[-1]
