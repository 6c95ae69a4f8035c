"""Shared fixtures: seeded random problems in float64."""

from __future__ import annotations

import pytest
import torch


def make_problem(q=7, n=4, p=3, dtype=torch.float64, seed=0, requires_grad=True):
    """Random X (q, n), W (n, p), b (p,), Y (q, p) from a fixed seed."""
    gen = torch.Generator().manual_seed(seed)
    X, W, b, Y = (
        torch.randn(shape, generator=gen, dtype=dtype) for shape in ((q, n), (n, p), (p,), (q, p))
    )
    return tuple(t.requires_grad_(requires_grad) for t in (X, W, b, Y))


@pytest.fixture
def problem():
    return make_problem()
