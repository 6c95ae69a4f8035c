"""The checker rejects each mistake of the gallery with the right diagnosis and factor."""

from __future__ import annotations

import json

import pytest
import torch

import handgrad
from gallery import CASES, LIN, LinearFloat32Bug, LinearUnsummedBias, _linear_backward, tensors
from handgrad import Linear
from handgrad.checking import CODES


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_each_mistake_gets_its_diagnosis(case, dtype):
    report = handgrad.check(case.function, *case.inputs(dtype))
    assert tuple(entry.diagnosis for entry in report.inputs) == case.expected
    for entry in report.inputs:
        if entry.index in case.factors:
            assert entry.factor == pytest.approx(case.factors[entry.index], rel=1e-6)
        elif entry.diagnosis not in ("scaled", "sign-flipped"):
            assert entry.factor is None
        assert entry.diagnosis in CODES
        assert entry.ok == (entry.diagnosis == "ok")
    assert not report.ok and not report.gradients_ok
    wrong = [entry for entry in report.inputs if not entry.ok]
    assert all(f"{entry.label}: {entry.diagnosis}: " in str(report) for entry in wrong)


def test_unsummed_bias_message_names_the_axis_and_the_fix():
    X, W, b = tensors((10, 5), (5, 3), (3,))
    report = handgrad.check(_linear_backward(LinearUnsummedBias), X, W, b)
    bias = report.inputs[2]
    assert bias.returned_shape == (10, 3)
    assert str(bias).startswith(
        "input 2 (b): wrong-shape: backward returned (10, 3) for an input of shape (3,); "
        "axis 0 (size 10 = the batch) looks unsummed — sum the gradient over the batch: "
        "G.sum(dim=0)"
    )
    assert "summed so, it matches the numeric gradient" in bias.message


def test_gradcheck_passes_the_unsummed_bias_that_the_checker_rejects():
    wrong = _linear_backward(LinearUnsummedBias)
    inputs = [t.requires_grad_() for t in tensors(*LIN)]
    assert torch.autograd.gradcheck(wrong.apply, inputs)  # autograd sums G for you
    assert handgrad.check(wrong, *inputs).inputs[2].diagnosis == "wrong-shape"


def test_worst_element_is_where_the_error_is_largest():
    case = next(case for case in CASES if case.name == "G W for X")
    entry = handgrad.check(case.function, *case.inputs()).inputs[0]
    index, analytic, numeric = entry.worst[0]
    assert index == entry.worst_index
    assert (analytic, numeric) == (entry.analytic_at_worst, entry.numeric_at_worst)
    assert abs(analytic - numeric) == pytest.approx(entry.max_abs_error)
    errors = [abs(a - n) for _, a, n in entry.worst]
    assert errors == sorted(errors, reverse=True)
    assert "no constant factor, sign flip or transpose" in entry.message


def test_a_float32_only_bug_is_flagged_in_float32_and_not_in_float64():
    inputs = tensors(*LIN)
    assert handgrad.check(LinearFloat32Bug, *inputs).ok
    report = handgrad.check(LinearFloat32Bug, *[x.float() for x in inputs])
    assert [entry.diagnosis for entry in report.inputs] == ["ok", "mismatch", "ok"]
    assert report.native_dtype.status == "failed"
    assert "right in float64 but not in torch.float32" in report.inputs[1].message


def test_inputs_that_do_not_require_grad_are_reported_unchecked():
    case = next(case for case in CASES if case.name == "None for b")
    X, W, b = case.inputs()
    report = handgrad.check(case.function, X.requires_grad_(), W.requires_grad_(), b)
    assert report.ok
    assert [entry.checked for entry in report.inputs] == [True, True, False]
    assert "not checked" in str(report.inputs[2])
    assert not X.grad and X.is_leaf  # the caller's tensors are left alone


def test_none_is_fine_where_no_gradient_is_due():
    class IgnoresY(torch.autograd.Function):
        @staticmethod
        def forward(X, Y):
            return (X * X).sum()

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            (X,) = ctx.saved_tensors
            return 2 * g * X, None

    report = handgrad.check(IgnoresY, *tensors((3, 2), (3, 2)))
    assert report.ok
    assert report.forward_mode.status == "not applicable"
    assert report.double_backward.status == "passed"


def test_report_is_json_safe_and_says_how_it_computed():
    case = CASES[0]
    report = handgrad.check(case.function, *case.inputs(torch.float32))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False
    assert [entry["diagnosis"] for entry in data["inputs"]] == list(case.expected)
    assert data["inputs"][0]["factor"] == 0.5
    assert data["double_backward"]["status"] == "skipped"
    assert "float64" in data["precision"] and "float32" in data["precision"]


def test_assert_gradients_raises_with_the_summary_and_passes_right_code():
    case = CASES[0]
    with pytest.raises(AssertionError, match=r"input 0 \(Y_hat\): scaled"):
        handgrad.assert_gradients(case.function, *case.inputs())
    report = handgrad.assert_gradients(Linear, *tensors(*LIN, dtype=torch.float32))
    assert report.ok


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((Linear, 3, "x"), ValueError, "at least one floating-point tensor"),
        ((Linear, torch.ones(2, dtype=torch.int64)), ValueError, "floating-point tensor"),
        ((42, torch.ones(2)), TypeError, "must be a torch.autograd.Function subclass"),
        ((lambda x: (x > 0, x.long()), torch.ones(2)), TypeError, "floating-point tensor"),
    ],
)
def test_unusable_arguments_are_refused_with_a_reason(args, error, match):
    with pytest.raises(error, match=match):
        handgrad.check(*args)


def test_bad_tolerances_are_refused():
    with pytest.raises(ValueError, match="eps must be a number > 0; got 0"):
        handgrad.check(Linear, *tensors(*LIN), eps=0)
