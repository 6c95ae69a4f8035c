"""Optimizers by name: plain descent, heavy-ball momentum (``sgd`` without Nesterov) and
Adam by hand, the rest torch.optim's.

The hand-written ones are not ``torch.optim.Optimizer`` subclasses on purpose:
constructing one imports ``torch._dynamo`` (about 3 s), a cost the lab's plain update
must not pay, and a ``torch.optim`` step costs 90 µs (SGD) to 200 µs (Adam) for two small
tensors, which at batch size 1 was most of an epoch. They keep the small part of that
interface the trainer and the schedules use: ``param_groups[0]["lr"]``, ``state_dict()``
and ``load_state_dict()``; their iterates are ``torch.optim.SGD``'s and ``Adam``'s
(``tests/test_optim.py``).
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch

from handgrad.errors import UserError

# Optimizers whose step is scaled per coordinate: they start from standardised targets
# (``TrainConfig.resolved_standardize_targets``) and get a decaying rate by default.
ADAPTIVE = ("adam", "adamw", "rmsprop", "adagrad")


class GradientDescent:
    """Plain gradient descent, w <- w - lr * grad: the lab's update, with nothing else."""

    def __init__(self, params, lr: float) -> None:
        self.params = list(params)
        self.param_groups = [{"lr": lr, "params": self.params}]
        # The trainer's parameters need no graph: skip no_grad's cost per step then.
        self._no_grad = torch.no_grad if any(p.requires_grad for p in self.params) else nullcontext

    def step_with(self, grads) -> None:
        lr = self.param_groups[0]["lr"]
        with self._no_grad():
            for param, grad in zip(self.params, grads, strict=True):
                param.sub_(grad, alpha=lr)

    def state_dict(self) -> dict:
        return {"lr": self.param_groups[0]["lr"]}

    def load_state_dict(self, state: dict) -> None:
        if "lr" not in state:  # torch.optim's form: sgd and adam were its, before
            raise UserError(
                "this checkpoint holds torch.optim's state, written by an older handgrad "
                "that stepped sgd and adam through torch.optim; it cannot be resumed. "
                "Start a new run."
            )
        self.param_groups[0]["lr"] = state["lr"]


class HeavyBall(GradientDescent):
    """Polyak's heavy ball, v <- β v + grad, w <- w - lr * v (``torch.optim.SGD``'s form).

    On a quadratic with Hessian eigenvalues in [μ, L], lr = 4/(√L + √μ)² and
    β = ((√κ − 1)/(√κ + 1))², κ = L/μ, shrink every error component by √β per step:
    O(√κ) steps where plain descent needs O(κ) (Polyak, 1964).
    """

    def __init__(self, params, lr: float, momentum: float) -> None:
        super().__init__(params, lr)
        self.momentum = momentum
        self.velocities = [torch.zeros_like(param) for param in self.params]

    def step_with(self, grads) -> None:
        lr, momentum = self.param_groups[0]["lr"], self.momentum
        with self._no_grad():
            for param, velocity, grad in zip(self.params, self.velocities, grads, strict=True):
                velocity.mul_(momentum).add_(grad)
                param.sub_(velocity, alpha=lr)

    def state_dict(self) -> dict:
        return super().state_dict() | {"velocities": [v.clone() for v in self.velocities]}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        for velocity, saved in zip(self.velocities, state["velocities"], strict=True):
            velocity.copy_(saved)


class Adam(GradientDescent):
    """Adam (Kingma and Ba, 2015) with ``torch.optim.Adam``'s defaults and arithmetic:
    β₁ = 0.9, β₂ = 0.999, ε = 1e-8, m ← lerp(m, g, 1 − β₁), v ← β₂v + (1 − β₂)g²,
    w ← w − (lr/(1 − β₁ᵗ))·m/(√v/√(1 − β₂ᵗ) + ε)."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, lr)
        self.betas, self.eps, self.t = betas, eps, 0
        self.m = [torch.zeros_like(param) for param in self.params]
        self.v = [torch.zeros_like(param) for param in self.params]

    def step_with(self, grads) -> None:
        lr, (beta1, beta2), eps = self.param_groups[0]["lr"], self.betas, self.eps
        self.t += 1
        step_size = lr / (1 - beta1**self.t)
        root_correction = math.sqrt(1 - beta2**self.t)
        with self._no_grad():
            for param, m, v, grad in zip(self.params, self.m, self.v, grads, strict=True):
                m.lerp_(grad, 1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denominator = (v.sqrt() / root_correction).add_(eps)
                param.addcdiv_(m, denominator, value=-step_size)

    def state_dict(self) -> dict:
        return super().state_dict() | {
            "t": self.t,
            "m": [m.clone() for m in self.m],
            "v": [v.clone() for v in self.v],
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.t = state["t"]
        for mine, saved in zip(self.m + self.v, state["m"] + state["v"], strict=True):
            mine.copy_(saved)


def make_optimizer(name: str, params, lr: float, momentum: float = 0.0, nesterov: bool = False):
    """The optimizer ``name`` ("gd", "heavy-ball" or a torch.optim name) over ``params``:
    by hand where that is the same update (see the module doc), else torch.optim's."""
    if name == "gd":
        return GradientDescent(params, lr)
    if name == "heavy-ball" or (name == "sgd" and not nesterov):
        return HeavyBall(params, lr, momentum)  # torch.optim.SGD's iterates, by hand
    if name == "adam":
        return Adam(params, lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr, momentum=momentum, nesterov=nesterov)
    classes = {
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
        "rmsprop": torch.optim.RMSprop,
        "adagrad": torch.optim.Adagrad,
    }
    return classes[name](params, lr)
