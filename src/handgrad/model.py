"""``LinearModel``: trained weights with their standardisation and names, saved safely.

On disk a model is a folder holding ``model.safetensors`` (the tensors) and
``model.json`` (format version, names, shapes). Nothing is unpickled on load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from handgrad.data.scaling import Standardizer
from handgrad.errors import UserError
from handgrad.runs.atomic import write_atomic, write_json

FORMAT = "handgrad-linear-model"
FORMAT_VERSION = 1


@dataclass
class LinearModel:
    """Ŷ = unstandardise(standardise(X) W + b).

    Attributes
    ----------
    W : torch.Tensor of shape (n, p), float64
    b : torch.Tensor of shape (p,), float64
        In training units: features (and targets, when asked) standardised.
    x_scaler, y_scaler : Standardizer
    feature_names, target_names : tuple of str
    """

    W: torch.Tensor
    b: torch.Tensor
    x_scaler: Standardizer
    y_scaler: Standardizer
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]

    def __post_init__(self) -> None:
        # A model lives on the CPU in float64, wherever it was trained: the boundary
        # where a run's weights leave its device (it predicts on NumPy arrays).
        self.W, self.b = (t.detach().to("cpu", torch.float64) for t in (self.W, self.b))

    @torch.no_grad()
    def predict(self, X) -> np.ndarray:
        """Predictions (q, p) for raw features X (q, n), as float64 numpy."""
        X = torch.as_tensor(np.asarray(X, dtype=np.float64))
        Y = self.x_scaler.transform(X) @ self.W.double() + self.b.double()
        return self.y_scaler.inverse(Y).numpy()

    def raw_coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """W and b in the data's own units: Ŷ = X W_raw + b_raw."""
        sx, mx = self.x_scaler.scale, self.x_scaler.mean
        sy, my = self.y_scaler.scale, self.y_scaler.mean
        W_raw = self.W.double() / sx[:, None] * sy[None, :]  # (n, p)
        b_raw = (self.b.double() - mx / sx @ self.W.double()) * sy + my  # (p,)
        return W_raw.numpy(), b_raw.numpy()

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"W": self.W.double(), "b": self.b.double()}
        tensors |= self.x_scaler.to_tensors("x") | self.y_scaler.to_tensors("y")
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        write_atomic(folder / "model.safetensors", lambda tmp: save_file(tensors, str(tmp)))
        write_json(
            folder / "model.json",
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "n_features": len(self.feature_names),
                "n_targets": len(self.target_names),
                "feature_names": list(self.feature_names),
                "target_names": list(self.target_names),
            },
        )

    @classmethod
    def load(cls, folder: Path) -> LinearModel:
        """Load a model folder; a clear ``UserError`` if it is missing, corrupt or too new."""
        folder = Path(folder)
        meta_path, tensor_path = folder / "model.json", folder / "model.safetensors"
        if not folder.is_dir():
            raise UserError(f"{folder} is not a model folder: it does not exist.")
        if not meta_path.is_file() or not tensor_path.is_file():
            raise UserError(
                f"{folder} holds no trained model (model.json and model.safetensors); "
                "point --model at the run directory of a finished 'handgrad train'."
            )
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as error:
            raise UserError(f"{meta_path} is corrupt ({error}); retrain the model.") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise UserError(f"{meta_path} is not a handgrad model file; retrain the model.")
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise UserError(
                f"{folder} was written in model format version {version}, but this handgrad "
                f"reads version {FORMAT_VERSION}; use the handgrad that wrote it, or retrain."
            )
        try:
            tensors = load_file(str(tensor_path))
        except (SafetensorError, OSError, ValueError) as error:
            raise UserError(f"{tensor_path} is corrupt ({error}); retrain the model.") from None
        n, p = meta["n_features"], meta["n_targets"]
        expected = {"W": (n, p), "b": (p,), "x_mean": (n,), "x_scale": (n,)}
        expected |= {"y_mean": (p,), "y_scale": (p,)}
        for key, shape in expected.items():
            if key not in tensors or tuple(tensors[key].shape) != shape:
                raise UserError(f"{tensor_path} is corrupt: {key} is missing or misshapen.")
        return cls(
            W=tensors["W"],
            b=tensors["b"],
            x_scaler=Standardizer.from_tensors(tensors, "x"),
            y_scaler=Standardizer.from_tensors(tensors, "y"),
            feature_names=tuple(meta["feature_names"]),
            target_names=tuple(meta["target_names"]),
        )
