"""A run directory: one folder per training run, created new, never overwritten.

Layout::

    RUN/config.json          the resolved config and the data source
    RUN/checkpoint.pt        the latest checkpoint (resume from it)
    RUN/metrics.json         final metrics and the per-epoch history
    RUN/loss.png             loss curves; RUN/predicted_vs_true.png for one target
    RUN/model/               the trained model (safetensors + JSON)
    RUN/tensorboard/         TensorBoard event files
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from handgrad.errors import UserError
from handgrad.runs.atomic import write_json


class RunDirectory:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.checkpoint = self.path / "checkpoint.pt"
        self.metrics = self.path / "metrics.json"
        self.loss_figure = self.path / "loss.png"
        self.prediction_figure = self.path / "predicted_vs_true.png"
        self.model = self.path / "model"
        self.tensorboard = self.path / "tensorboard"

    @classmethod
    def create(cls, out: str | None) -> RunDirectory:
        """Make a new folder: ``out``, or ``runs/<timestamp>``. Never reuses one."""
        if out is None:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            path, suffix = Path("runs") / stamp, 1
            while path.exists():
                suffix += 1
                path = Path("runs") / f"{stamp}-{suffix}"
        else:
            path = Path(out)
        if path.exists():
            raise UserError(
                f"run directory {path} already exists; handgrad never overwrites a run. "
                f"Choose another --out, or continue it with --resume {path}."
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir()
        except FileExistsError:
            raise UserError(f"run directory {path} already exists; choose another --out.") from None
        except OSError as error:
            raise UserError(f"cannot create run directory {path}: {error.strerror}.") from None
        return cls(path)

    @classmethod
    def open(cls, path: str) -> RunDirectory:
        """An existing run, for ``--resume``."""
        run = cls(Path(path))
        if not run.path.is_dir():
            raise UserError(f"--resume {path}: no such run directory.")
        if not run.config.is_file():
            raise UserError(f"--resume {path}: not a handgrad run directory (no config.json).")
        return run

    def write_config(self, data: dict) -> None:
        write_json(self.config, data)

    def read_metrics(self) -> dict | None:
        """metrics.json, written when a run ends (by itself or by a signal); None when it
        is missing (the run is going on, or was killed) or unreadable."""
        try:
            metrics = json.loads(self.metrics.read_text())
        except (OSError, ValueError):
            return None
        return metrics if isinstance(metrics, dict) else None

    def read_config(self) -> dict:
        try:
            return json.loads(self.config.read_text())
        except (OSError, ValueError) as error:
            raise UserError(f"{self.config} is corrupt ({error}); start a new run.") from None
