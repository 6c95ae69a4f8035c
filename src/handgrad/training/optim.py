"""Optimizers by name: plain descent and heavy-ball momentum by hand, the rest torch.optim's.

``GradientDescent`` and ``HeavyBall`` are not ``torch.optim.Optimizer`` subclasses on
purpose: constructing one imports ``torch._dynamo`` (about 3 s), a cost the lab's plain
update must not pay. They keep the small part of that interface the trainer and the
schedules use: ``param_groups[0]["lr"]``, ``state_dict()`` and ``load_state_dict()``.
"""

from __future__ import annotations

import torch

# Optimizers whose step is scaled per coordinate: they start from standardised targets
# (``TrainConfig.resolved_standardize_targets``) and get a decaying rate by default.
ADAPTIVE = ("adam", "adamw", "rmsprop", "adagrad")


class GradientDescent:
    """Plain gradient descent, w <- w - lr * grad: the lab's update, with nothing else."""

    def __init__(self, params, lr: float) -> None:
        self.params = list(params)
        self.param_groups = [{"lr": lr, "params": self.params}]

    @torch.no_grad()
    def step_with(self, grads) -> None:
        lr = self.param_groups[0]["lr"]
        for param, grad in zip(self.params, grads, strict=True):
            param.sub_(grad, alpha=lr)

    def state_dict(self) -> dict:
        return {"lr": self.param_groups[0]["lr"]}

    def load_state_dict(self, state: dict) -> None:
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

    @torch.no_grad()
    def step_with(self, grads) -> None:
        lr = self.param_groups[0]["lr"]
        for param, velocity, grad in zip(self.params, self.velocities, grads, strict=True):
            velocity.mul_(self.momentum).add_(grad)
            param.sub_(velocity, alpha=lr)

    def state_dict(self) -> dict:
        return super().state_dict() | {"velocities": [v.clone() for v in self.velocities]}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        for velocity, saved in zip(self.velocities, state["velocities"], strict=True):
            velocity.copy_(saved)


def make_optimizer(name: str, params, lr: float, momentum: float = 0.0, nesterov: bool = False):
    """The optimizer ``name`` ("gd", "heavy-ball" or a torch.optim name) over ``params``."""
    if name == "gd":
        return GradientDescent(params, lr)
    if name == "heavy-ball":
        return HeavyBall(params, lr, momentum)
    if name == "sgd":
        return torch.optim.SGD(params, lr, momentum=momentum, nesterov=nesterov)
    classes = {
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
        "rmsprop": torch.optim.RMSprop,
        "adagrad": torch.optim.Adagrad,
    }
    return classes[name](params, lr)
