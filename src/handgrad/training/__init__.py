"""Training: the one core loop, its gradient paths, optimizers, metrics and reference."""

from handgrad.training.prepare import Prepared, prepare
from handgrad.training.trainer import DivergedError, Trainer, TrainState

__all__ = ["DivergedError", "Prepared", "TrainState", "Trainer", "prepare"]
