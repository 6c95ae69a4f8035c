"""Checkpoints: the full ``TrainState``, written atomically, loaded without unpickling code."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from handgrad.errors import UserError
from handgrad.runs.atomic import write_atomic
from handgrad.training.trainer import TrainState

CHECKPOINT_VERSION = 1


def save_checkpoint(path: Path, state: TrainState, train_seconds: float) -> None:
    payload = dataclasses.asdict(state) | {
        "version": CHECKPOINT_VERSION,
        "train_seconds": train_seconds,
    }
    write_atomic(Path(path), lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: Path) -> tuple[TrainState, float]:
    """The state and the training seconds spent so far; ``UserError`` if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{path} is missing: this run directory has no checkpoint to resume (the run "
            f"stopped before its first one); train it again with another --out, or delete "
            f"{path.parent} first"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.pop("version") != CHECKPOINT_VERSION:
            raise ValueError("unknown checkpoint version")
        seconds = payload.pop("train_seconds")
        return TrainState(**payload), seconds
    except Exception:  # any corruption: truncated file, wrong keys, a refused unpickle
        raise UserError(
            f"{path} is corrupt or from another handgrad version; "
            "start a new run instead of resuming."
        ) from None
