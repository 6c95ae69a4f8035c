"""Standardisation: column moments in one pass, equal to the two-pass textbook values."""

from __future__ import annotations

import numpy as np
import torch

from handgrad.data.scaling import MOMENT_ROWS, Standardizer, column_moments


def test_column_moments_match_torch_even_far_from_zero():
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(3 * MOMENT_ROWS + 5, 4, generator=gen, dtype=torch.float64)
    A[:, 1] = A[:, 1] * 1e-3 + 1e9  # far from zero: naive E[x²] − E[x]² would lose it all
    A[:, 2] = 7.0  # constant
    mean, std, low, high = column_moments(A)
    torch.testing.assert_close(mean, A.mean(dim=0), rtol=1e-14, atol=1e-12)
    # The reference: two passes in extended precision (torch's own std is off by ~1e-9
    # relative on the column at 1e9; the one-pass shifted sums are not).
    extended = A.numpy().astype(np.longdouble)
    centred = extended - extended.mean(axis=0)
    exact = np.sqrt((centred * centred).mean(axis=0)).astype(np.float64)
    torch.testing.assert_close(std, torch.from_numpy(exact), rtol=1e-12, atol=0)
    assert torch.equal(low, A.min(dim=0).values) and torch.equal(high, A.max(dim=0).values)
    assert std[2] == 0
    # float32 input: the statistics are still computed in float64
    mean32, std32, _, _ = column_moments(A[:, [0, 3]].float())
    A32 = A[:, [0, 3]].float().double()
    torch.testing.assert_close(mean32, A32.mean(dim=0), rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(std32, A32.std(dim=0, correction=0), rtol=1e-12, atol=0)


def test_constant_column_gets_scale_one():
    A = torch.tensor([[1.0, 5.0], [3.0, 5.0]], dtype=torch.float64)
    scaler = Standardizer.fit(A)
    assert scaler.scale.tolist() == [1.0, 1.0] and scaler.mean.tolist() == [2.0, 5.0]
    torch.testing.assert_close(scaler.inverse(scaler.transform(A)), A)
