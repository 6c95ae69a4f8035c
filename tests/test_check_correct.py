"""The checker never flags a correct backward: random shapes, float32 and float64."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import handgrad
from gallery import CORRECT, correct_inputs

DTYPES = [torch.float32, torch.float64]


@settings(max_examples=30, deadline=None)
@given(
    target=st.sampled_from(CORRECT),
    q=st.integers(1, 6),
    n=st.integers(1, 6),
    p=st.integers(1, 6),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**16),
)
def test_correct_targets_are_never_flagged(target, q, n, p, dtype, seed):
    name, function, shapes = target
    report = handgrad.check(function, *correct_inputs(shapes, q, n, p, dtype, seed), seed=seed)
    assert report.ok, str(report)
    assert all(entry.diagnosis == "ok" and entry.factor is None for entry in report.inputs)


@pytest.mark.parametrize("sizes", [(1, 1, 1), (1, 4, 3), (5, 1, 3), (5, 4, 1), (3, 3, 3)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("target", CORRECT, ids=lambda target: target[0])
def test_correct_targets_at_singleton_and_square_sizes(target, sizes, dtype):
    _, function, shapes = target
    report = handgrad.check(function, *correct_inputs(shapes, *sizes, dtype))
    assert report.ok, str(report)


def test_extra_checks_say_why_they_did_not_run():
    by_name = {name: (function, shapes) for name, function, shapes in CORRECT}

    def report_for(name):
        function, shapes = by_name[name]
        return handgrad.check(function, *correct_inputs(shapes, 4, 3, 2, torch.float32))

    linear = report_for("Linear")
    statuses = [extra.status for extra in linear.extras]
    assert statuses == ["passed"] * 5
    once = report_for("OnceDifferentiableMSE")
    assert once.double_backward.status == "not applicable"
    assert "not differentiable" in once.double_backward.detail
    old = report_for("CtxStyleLinear")
    assert old.forward_mode.status == "not applicable"
    assert "defines no jvp" in str(old.forward_mode)
    plain = report_for("model")
    assert plain.kind == "callable" and plain.chaining.status == "not applicable"
    for report in (once, old, plain):
        assert report.ok
        text = str(report)
        assert all(f"{extra.name}: {extra.status}" in text for extra in report.extras)
