"""The hand-written autograd Functions and their functional forms."""

from handgrad.functions.linear import Linear, linear
from handgrad.functions.linear_mse import LinearMSE, linear_mse
from handgrad.functions.mse import MSE, mse

__all__ = ["MSE", "Linear", "LinearMSE", "linear", "linear_mse", "mse"]
