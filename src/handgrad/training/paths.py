"""The exact ways of computing one step's loss and gradients with respect to W and b.

Every path returns ``(loss, grad_W, grad_b)`` for the same mathematics,
C = mse(XW + b, Y); they differ only in how much work and memory they take:

- ``chained``: the teaching path, ``Linear`` then ``MSE``, through autograd
  (``grad="autograd"``) or chained by hand through ``Context`` with no graph
  (``grad="manual"``).
- ``fused``: the one ``LinearMSE`` Function, one blocked pass over X for the loss and
  both gradients: ``loss_and_grads`` with no graph (``manual``), or
  ``LinearMSE.apply`` and ``torch.autograd.grad`` (``autograd``).
- ``small``: small batches. The same products as ``fused`` (R = XW + b − Y, then
  (2/q)XᵀR and (2/q)Σᵢ Rᵢ), on CPU tensors in NumPy on preallocated buffers: for a few
  rows a torch call's dispatch costs more than its arithmetic, and the chained pair
  makes about twenty of them.
- ``stats``: full batch only. From S = X̃ᵀX̃ and T = X̃ᵀY gathered once, the gradient of
  θ = [W; bᵀ] is (2/q)(Sθ − T) and the loss (1/q)(tr YᵀY − 2 tr θᵀT + tr θᵀSθ): the
  same iterates with no pass over X per epoch.

``choose_path`` is the rule behind ``path="auto"``.
"""

from __future__ import annotations

import numpy as np
import torch

import handgrad
from handgrad.functions import MSE, Linear
from handgrad.functions.linear_mse import LinearMSE, loss_and_grads
from handgrad.training.statistics import Statistics

# Rows × features of a batch from which the fused pass beats the chained pair. Measured
# on the shared 2-core EPYC, float32, n = 100, p = 10, one step (manual, no graph):
# 256 rows: chained 152 µs, fused 219 µs (the pass pays a fixed set-up: the BLAS
# thread limit, NumPy views); 1024 rows: 386 against 316 µs; 4096: 1.25 ms against 0.68 ms;
# 65536: 18 ms against 7.4 ms. The crossover lies near 600 rows of 100 features.
FUSED_MIN_ELEMENTS = 60_000
CPU = torch.device("cpu")


def choose_path(config, q: int, n: int, stats: Statistics, device: torch.device = CPU):
    """The path ``config.path`` names, or for "auto" the cheapest exact one.

    The rule, "auto":

    1. full batch with more rows than unknowns (q > n + 1): ``stats``. The trainer
       gathers S and T anyway (for the reference and the rate), so each epoch then
       costs O(n²p) instead of a pass over the q × n data;
    2. otherwise, on the CPU, batches of at least ``FUSED_MIN_ELEMENTS`` entries of X:
       ``fused`` (one blocked pass over the batch, each block still in cache when it is
       read the second time, instead of two BLAS calls and temporaries);
    3. otherwise ``small``: on the CPU a batch of 32 rows of 10 features costs about
       6 µs a step there, against 150 µs for the chained pair's torch calls and
       ``Context`` bookkeeping (measured on the shared 2-core EPYC), which made
       batch-1 runs spend nearly all their time on dispatch. Off the CPU, every
       mini-batch: a batch there is one block, so the three paths read X alike and
       differ in kernel launches per step, counted by a dispatch mode
       (tests/test_paths.py): small and fused 8, chained 11; small has the least
       Python per step (no blocking), and host time is what bounds a GPU's steps.

    ``grad`` ("manual" or "autograd") applies to ``fused`` and ``chained``; "autograd"
    therefore rules out ``stats`` and ``small`` under "auto", so that the flag has its
    effect.
    """
    rows = q if config.batch_size is None else min(config.batch_size, q)
    name = config.path
    if name == "auto":
        if rows == q and q > n + 1 and config.grad == "manual":
            name = "stats"
        elif rows * n >= FUSED_MIN_ELEMENTS and device.type == "cpu":
            name = "fused"
        elif config.grad == "manual":
            name = "small"
        else:
            name = "chained"
    if name == "stats":
        return StatsPath(stats)
    if name == "small":
        return SmallBatchPath()
    if name == "fused":
        return FusedPath(config.grad)
    return ChainedPath(config.grad)


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


class FusedPath:
    """The fused ``LinearMSE``: loss and gradients from one blocked pass over X."""

    name = "fused"

    def __init__(self, grad: str) -> None:
        self.grad = grad

    def __call__(self, X, Y, W, b):
        if self.grad == "manual":
            return loss_and_grads(X, W, b, Y)
        with torch.enable_grad():
            W, b = W.detach().requires_grad_(), b.detach().requires_grad_()
            loss = LinearMSE.apply(X, W, b, Y)
            grad_W, grad_b = torch.autograd.grad(loss, (W, b))
        return loss.detach(), grad_W, grad_b


class SmallBatchPath:
    """A small batch's loss and gradients, (2/q)XᵀR and (2/q)Σᵢ Rᵢ with R = XW + b − Y,
    in NumPy on buffers reused from one call to the next (on CPU tensors; elsewhere, or
    with ``numpy=False``, the same products as eight torch calls). The gradients come
    back as torch views of one buffer, valid until the next call, and the loss as a
    float (in torch: a 0-dim tensor, never read back to the host)."""

    name = "small"

    def __init__(self, numpy: bool = True) -> None:
        self.numpy = numpy  # False: the torch calls on the CPU too (the device code, tested)
        self._key = None  # (rows, W, b) of the buffers below
        self._buffers: tuple = ()

    def _prepare(self, q: int, W: torch.Tensor, b: torch.Tensor) -> tuple:
        if self._key is None or self._key[0] != q or self._key[1] is not W or self._key[2] is not b:
            grad = torch.empty(W.shape[0] + 1, W.shape[1], dtype=W.dtype)
            grad_np = grad.numpy()
            R = np.empty((q, W.shape[1]), dtype=grad_np.dtype)
            W_np, b_np = W.detach().numpy(), b.detach().numpy()
            self._buffers = (R, grad_np, grad_np[:-1], grad_np[-1], grad[:-1], grad[-1], W_np, b_np)
            self._key = (q, W, b)
        return self._buffers

    def __call__(self, X, Y, W, b):
        q = X.shape[0]
        if X.device.type != "cpu" or not self.numpy:
            R = torch.addmm(b, X, W).sub_(Y)  # (q, n) @ (n, p) + (p,) - (q, p) -> (q, p)
            loss = torch.vdot(R.flatten(), R.flatten()) / q
            return loss, X.T.mm(R).mul_(2.0 / q), R.sum(dim=0).mul_(2.0 / q)
        R, grad, grad_W_np, grad_b_np, grad_W, grad_b, W_np, b_np = self._prepare(q, W, b)
        X_np = X.numpy()
        np.matmul(X_np, W_np, out=R)
        R += b_np
        R -= Y.numpy()
        np.matmul(X_np.T, R, out=grad_W_np)
        R.sum(axis=0, out=grad_b_np)
        grad *= 2.0 / q
        return float(np.vdot(R, R)) / q, grad_W, grad_b


class StatsPath:
    """Full-batch gradients from the sufficient statistics S and T (see module doc).

    It works in float64 whatever the parameters' dtype: the (n+1)-sized products cost
    next to nothing, and the loss is a difference of large terms near the optimum. The
    products are so small that a torch call's dispatch would cost more than its
    arithmetic, so they run in NumPy on preallocated buffers. The loss comes back as a
    float; the gradients as views of one buffer, valid until the next call.
    """

    name = "stats"

    def __init__(self, stats: Statistics) -> None:
        self.stats = stats
        self._S = stats.S.cpu().numpy()  # (n+1, n+1)
        self._T = stats.T.cpu().numpy()  # (n+1, p)
        self._yty = float(stats.yty.sum())
        self._theta = np.empty_like(self._T)  # θ = [W; bᵀ], float64
        self._S_theta = np.empty_like(self._T)
        self._grad = None  # the gradient in the parameters' dtype, and its torch views
        self._params = None  # (W, b, their NumPy views) when they live on the CPU

    def _views(self, W, b):
        if self._params is None or self._params[0] is not W or self._params[1] is not b:
            cpu = W.device.type == "cpu"
            self._params = (
                W,
                b,
                W.detach().numpy() if cpu else None,
                b.detach().numpy() if cpu else None,
            )
            grad = torch.empty(self._T.shape, dtype=W.dtype)
            self._grad = (grad.numpy(), grad[:-1], grad[-1], cpu)
        return self._params[2:]

    def __call__(self, X, Y, W, b):
        W_np, b_np = self._views(W, b)
        if W_np is None:  # on another device: one small copy each way
            W_np, b_np = W.detach().cpu().numpy(), b.detach().cpu().numpy()
        theta, S_theta, q = self._theta, self._S_theta, self.stats.q
        theta[:-1], theta[-1] = W_np, b_np
        np.matmul(self._S, theta, out=S_theta)  # (n+1, n+1) @ (n+1, p) -> (n+1, p)
        S_theta -= self._T  # Sθ − T
        # tr θᵀSθ − 2 tr θᵀT = tr θᵀ(Sθ − T) − tr θᵀT
        loss = (float(np.vdot(theta, S_theta)) - float(np.vdot(theta, self._T)) + self._yty) / q
        grad_np, grad_W, grad_b, cpu = self._grad
        np.multiply(S_theta, 2.0 / q, out=grad_np, casting="same_kind")  # (n+1, p)
        if not cpu:
            grad = torch.from_numpy(grad_np).to(W.device)
            return loss, grad[:-1], grad[-1]
        return loss, grad_W, grad_b
