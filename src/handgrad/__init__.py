"""handgrad: gradient descent on hand-written, proved-right backward passes."""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Public name -> the module that defines it. Each is imported on first use (PEP 562):
# torch alone takes seconds to import, and `handgrad --help` or `--version` needs none of it.
_SOURCES = {
    "MSE": "handgrad.functions",
    "Linear": "handgrad.functions",
    "LinearMSE": "handgrad.functions",
    "linear": "handgrad.functions",
    "linear_mse": "handgrad.functions",
    "mse": "handgrad.functions",
    "Context": "handgrad.context",
    "forward": "handgrad.context",
    "GradientReport": "handgrad.checking",
    "assert_gradients": "handgrad.checking",
    "check": "handgrad.checking",
    "GDRegressor": "handgrad.estimator",
}

__all__ = sorted([*_SOURCES, "__version__"])


def __getattr__(name: str):
    if name in _SOURCES:
        value = getattr(importlib.import_module(_SOURCES[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'handgrad' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SOURCES))
