"""Input checks for the public functional forms (``linear``, ``mse``, ``linear_mse``).

Validation happens once, at the entry; the Functions themselves trust their inputs.
Every message names the argument, what was expected and what was received.
"""

from __future__ import annotations

import torch


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(d) for d in t.shape) + ("," if t.ndim == 1 else "") + ")"


def check_tensors(**named: torch.Tensor) -> None:
    """Check that every argument is a floating-point tensor, all of one dtype and device."""
    first_name, first = None, None
    for name, t in named.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(
                f"{name} must be a torch.Tensor; got {type(t).__name__}. "
                f"Convert it with torch.as_tensor({name}, dtype=torch.float32)."
            )
        if not t.dtype.is_floating_point:
            raise TypeError(
                f"{name} must be a floating-point tensor (float32 or float64); got {t.dtype}. "
                f"Convert it with {name}.float() or {name}.double()."
            )
        if first is None:
            first_name, first = name, t
            continue
        if t.dtype != first.dtype:
            raise TypeError(
                f"{name} has dtype {t.dtype} but {first_name} has dtype {first.dtype}; "
                f"all inputs must share one dtype. Convert with {name}.to({first_name}.dtype)."
            )
        if t.device != first.device:
            raise ValueError(
                f"{name} is on device {t.device} but {first_name} is on {first.device}; "
                f"move them to one device with {name}.to({first_name}.device)."
            )


def check_ndim(name: str, t: torch.Tensor, ndim: int, layout: str) -> None:
    """Check that ``t`` has ``ndim`` dimensions; ``layout`` names them, e.g. ``"(q, n)"``."""
    if t.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D of shape {layout}; got shape {_shape(t)}.")


def check_linear(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> None:
    """Validate the inputs of f(X, W, b) = XW + b."""
    check_tensors(X=X, W=W, b=b)
    check_ndim("X", X, 2, "(q, n)")
    check_ndim("W", W, 2, "(n, p)")
    n, p = W.shape
    if X.shape[1] != n:
        raise ValueError(
            f"X has {X.shape[1]} columns but W has {n} rows: W must have shape "
            f"(n, p) = ({X.shape[1]}, p) to match X of shape {_shape(X)}; got {_shape(W)}."
        )
    if b.shape != (p,):
        raise ValueError(
            f"b must have shape (p,) = ({p},) to match W of shape {_shape(W)}; got {_shape(b)}."
        )


def check_mse(Y_hat: torch.Tensor, Y: torch.Tensor) -> None:
    """Validate the inputs of mse(Y_hat, Y)."""
    check_tensors(Y_hat=Y_hat, Y=Y)
    check_ndim("Y_hat", Y_hat, 2, "(q, p)")
    if Y.shape != Y_hat.shape:
        raise ValueError(
            f"Y must have the shape of Y_hat, {_shape(Y_hat)}; got {_shape(Y)}. "
            "For a single target, reshape Y with Y.reshape(-1, 1)."
        )
    if Y_hat.shape[0] == 0:
        raise ValueError("Y_hat has no rows (q = 0); the MSE needs at least one example.")


def check_linear_mse(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor, Y: torch.Tensor) -> None:
    """Validate the inputs of mse(XW + b, Y): those of ``linear``, then Y against XW + b."""
    check_linear(X, W, b)
    check_tensors(X=X, Y=Y)
    check_ndim("Y", Y, 2, "(q, p)")
    q, p = X.shape[0], W.shape[1]
    if Y.shape != (q, p):
        raise ValueError(
            f"Y must have the shape of XW + b, (q, p) = ({q}, {p}); got {_shape(Y)}. "
            "For a single target, reshape Y with Y.reshape(-1, 1)."
        )
    if q == 0:
        raise ValueError("X has no rows (q = 0); the MSE needs at least one example.")
