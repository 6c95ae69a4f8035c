"""handgrad: gradient descent on hand-written, proved-right backward passes."""

from handgrad.checking import GradientReport, assert_gradients, check
from handgrad.context import Context, forward
from handgrad.functions import MSE, Linear, LinearMSE, linear, linear_mse, mse

__version__ = "0.1.0"

__all__ = [
    "MSE",
    "Context",
    "GDRegressor",
    "GradientReport",
    "Linear",
    "LinearMSE",
    "__version__",
    "assert_gradients",
    "check",
    "forward",
    "linear",
    "linear_mse",
    "mse",
]


def __getattr__(name: str):
    # Imported on first use: scikit-learn takes seconds to import, and the CLI never needs it.
    if name == "GDRegressor":
        from handgrad.estimator import GDRegressor

        return GDRegressor
    raise AttributeError(f"module 'handgrad' has no attribute {name!r}")
