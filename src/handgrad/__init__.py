"""handgrad: gradient descent on hand-written, proved-right backward passes."""

from handgrad.context import Context, forward
from handgrad.functions import MSE, Linear, LinearMSE, linear, linear_mse, mse

__version__ = "0.1.0"

__all__ = [
    "MSE",
    "Context",
    "Linear",
    "LinearMSE",
    "__version__",
    "forward",
    "linear",
    "linear_mse",
    "mse",
]
