"""TensorBoard event files from a run's history, appended epoch by epoch."""

from __future__ import annotations

import math
from pathlib import Path

TAGS = {
    "train_mse": "Loss/train",
    "val_mse": "Loss/validation",
    "test_mse": "Loss/test",
    "r2_train": "R2/train",
    "r2_val": "R2/validation",
    "r2_test": "R2/test",
    "lr": "LearningRate",
    "grad_norm": "GradientNorm",
}


def write_history(log_dir: Path, history: dict[str, list], start: int) -> int:
    """Write the epochs from ``start`` on; return the number of epochs now written.

    Writing after training, rather than inside the loop, keeps the loop's per-epoch
    cost to a few appends to lists.
    """
    from torch.utils.tensorboard import SummaryWriter

    epochs = len(history.get("train_mse", []))
    if epochs <= start:
        return start
    with SummaryWriter(str(log_dir)) as writer:
        for key, tag in TAGS.items():
            for epoch in range(start, epochs):
                value = history[key][epoch]
                if value is not None and math.isfinite(value):
                    writer.add_scalar(tag, value, epoch + 1)
    return epochs
