"""Each bad input to the functional forms gets a clear error naming the argument."""

from __future__ import annotations

import pytest
import torch

from handgrad import linear, mse

f64 = torch.float64


def t(*shape, dtype=f64):
    return torch.zeros(shape, dtype=dtype)


LINEAR_CASES = [
    ("X of rank 1", (t(5), t(5, 2), t(2)), ValueError, r"X must be 2-D of shape \(q, n\); got shape \(5,\)"),
    ("W of rank 3", (t(4, 5), t(5, 2, 1), t(2)), ValueError, r"W must be 2-D of shape \(n, p\); got shape \(5, 2, 1\)"),
    ("inner dimension", (t(4, 5), t(3, 2), t(2)), ValueError, r"X has 5 columns but W has 3 rows.*\(5, p\).*got \(3, 2\)"),
    ("bias size", (t(4, 5), t(5, 2), t(3)), ValueError, r"b must have shape \(p,\) = \(2,\).*got \(3,\)"),
    ("bias rank", (t(4, 5), t(5, 2), t(1, 2)), ValueError, r"b must have shape \(p,\) = \(2,\).*got \(1, 2\)"),
    ("integer X", (t(4, 5, dtype=torch.int64), t(5, 2), t(2)), TypeError, r"X must be a floating-point tensor.*got torch.int64"),
    ("mixed dtypes", (t(4, 5), t(5, 2, dtype=torch.float32), t(2)), TypeError, r"W has dtype torch.float32 but X has dtype torch.float64"),
    ("not a tensor", ([[1.0]], t(1, 2), t(2)), TypeError, r"X must be a torch.Tensor; got list"),
]  # fmt: skip

MSE_CASES = [
    ("Y shape", (t(4, 2), t(4, 3)), ValueError, r"Y must have the shape of Y_hat, \(4, 2\); got \(4, 3\)"),
    ("1-D Y", (t(4, 1), t(4)), ValueError, r"Y must have the shape of Y_hat, \(4, 1\); got \(4,\).*reshape"),
    ("Y_hat rank", (t(4), t(4)), ValueError, r"Y_hat must be 2-D of shape \(q, p\); got shape \(4,\)"),
    ("no rows", (t(0, 2), t(0, 2)), ValueError, r"Y_hat has no rows"),
    ("integer Y", (t(4, 2), t(4, 2, dtype=torch.int32)), TypeError, r"Y must be a floating-point tensor.*torch.int32"),
    ("mixed dtypes", (t(4, 2, dtype=torch.float32), t(4, 2)), TypeError, r"Y has dtype torch.float64 but Y_hat has dtype torch.float32"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "args", "error", "message"), LINEAR_CASES, ids=lambda c: c)
def test_linear_rejects(case, args, error, message):
    with pytest.raises(error, match=message):
        linear(*args)


@pytest.mark.parametrize(("case", "args", "error", "message"), MSE_CASES, ids=lambda c: c)
def test_mse_rejects(case, args, error, message):
    with pytest.raises(error, match=message):
        mse(*args)


def test_mixed_devices_are_named():
    meta = torch.zeros(5, 2, dtype=f64, device="meta")
    with pytest.raises(ValueError, match=r"W is on device meta but X is on cpu"):
        linear(t(4, 5), meta, t(2))
