"""Where torch.autograd.gradcheck is right, the checker's verdict agrees with it.

gradcheck is right in float64 except for a wrong-shaped gradient that autograd can sum
down to the input's shape (it passes it); those cases are left out here and tested
in test_check_gallery.py.
"""

from __future__ import annotations

import pytest
import torch

import handgrad
from gallery import CASES, CORRECT, correct_inputs
from handgrad.checking.target import make_target

TARGETS = [(case.name, case.function, case.inputs()) for case in CASES if case.gradcheck_right]
TARGETS += [
    (name, function, correct_inputs(shapes, 4, 3, 2, torch.float64))
    for name, function, shapes in CORRECT
]


def gradcheck_verdict(function, inputs) -> bool:
    call = make_target(function, len(inputs)).call
    leaves = [x.requires_grad_() if isinstance(x, torch.Tensor) else x for x in inputs]
    try:
        return torch.autograd.gradcheck(call, leaves, raise_exception=False)
    except RuntimeError:  # autograd itself refuses e.g. a wrong number of gradients
        return False


@pytest.mark.parametrize(("name", "function", "inputs"), TARGETS, ids=[t[0] for t in TARGETS])
def test_verdict_agrees_with_gradcheck(name, function, inputs):
    report = handgrad.check(function, *inputs)
    assert report.gradients_ok == gradcheck_verdict(function, inputs)


def test_both_kinds_of_verdict_are_covered():
    verdicts = {gradcheck_verdict(function, inputs) for _, function, inputs in TARGETS}
    assert verdicts == {True, False}
