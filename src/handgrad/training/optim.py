"""Optimizers and learning-rate schedules by name, on top of ``torch.optim``."""

from __future__ import annotations

import torch

from handgrad.config import TrainConfig


class GradientDescent(torch.optim.Optimizer):
    """Plain gradient descent, w <- w - lr * grad: the lab's update, with nothing else.

    A ``torch.optim.Optimizer``, so that the schedulers of ``torch.optim.lr_scheduler``
    drive its ``lr`` and its state saves with the checkpoints.
    """

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for param in group["params"]:
                param.add_(param.grad, alpha=-group["lr"])


def make_optimizer(config: TrainConfig, params, lr: float) -> torch.optim.Optimizer:
    name = config.optimizer
    if name == "gd":
        return GradientDescent(params, lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr, momentum=config.momentum, nesterov=config.nesterov)
    classes = {
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
        "rmsprop": torch.optim.RMSprop,
        "adagrad": torch.optim.Adagrad,
    }
    return classes[name](params, lr)


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer):
    """The scheduler named by ``config.scheduler``, or None; stepped once per epoch."""
    name, gamma = config.scheduler, config.resolved_gamma
    schedulers = torch.optim.lr_scheduler
    if name == "step":
        return schedulers.StepLR(optimizer, step_size=config.lr_step_size, gamma=gamma)
    if name == "exponential":
        return schedulers.ExponentialLR(optimizer, gamma=gamma)
    if name == "cosine":
        return schedulers.CosineAnnealingLR(optimizer, T_max=config.max_epochs)
    if name == "plateau":
        return schedulers.ReduceLROnPlateau(
            optimizer,
            factor=gamma,
            patience=max(1, config.n_iter_no_change // 2),
            threshold=config.tol,
        )
    return None
