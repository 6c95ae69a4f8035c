"""The checker's parts on their own: finite differences, shape and factor helpers, edges."""

from __future__ import annotations

import pytest
import torch

import handgrad
from gallery import ScaledLinear, tensors
from handgrad.checking.diagnose import diagnose_shape, unsummed_axes
from handgrad.checking.factors import describe_factor
from handgrad.checking.inputs import parse_shape
from handgrad.checking.numeric import numeric_vjp
from handgrad.checking.outputs import Outputs, random_grad_output
from handgrad.checking.placement import to_float64
from handgrad.errors import UserError


def test_numeric_vjp_matches_autograd_in_float64():
    X, W = tensors((5, 4), (4, 3))
    V = random_grad_output(torch.empty(5, 3), 1)
    outputs = Outputs((torch.empty(5, 3),), True, (True,), (torch.ones(5, 3, dtype=torch.bool),))
    numeric = numeric_vjp(lambda X, W: torch.tanh(X @ W), [X, W], [V], outputs, [0, 1], 1e-6)
    leaves = [t.clone().requires_grad_() for t in (X, W)]
    exact = torch.autograd.grad(torch.tanh(leaves[0] @ leaves[1]), leaves, V)
    for estimate, truth in zip(numeric.values(), exact, strict=True):
        estimate = estimate.sum(0)
        torch.testing.assert_close(estimate, truth, rtol=1e-7, atol=1e-9)


def test_random_grad_output_is_seeded_and_bounded_away_from_zero():
    a = random_grad_output(torch.empty(50, 4), 7)
    assert torch.equal(a, random_grad_output(torch.empty(50, 4), 7))
    assert not torch.equal(a, random_grad_output(torch.empty(50, 4), 8))
    assert a.dtype == torch.float64 and bool(((a.abs() >= 0.5) & (a.abs() <= 1.5)).all())
    assert (a > 0).any() and (a < 0).any()
    assert random_grad_output(torch.tensor(1.0), 0).shape == ()


def test_float64_copies_leave_the_originals_alone():
    X = torch.randn(3, 4).T  # float32, not contiguous
    copy, alpha = to_float64([X, 2.0])
    assert copy.dtype == torch.float64 and copy.is_contiguous() and alpha == 2.0
    copy.add_(1)
    assert not torch.equal(X.double(), copy)


@pytest.mark.parametrize(
    ("returned", "expected", "axes"),
    [
        ((10, 3), (3,), [0]),
        ((10, 3), (1, 3), [0]),
        ((2, 10, 3), (3,), [0, 1]),
        ((3,), (3,), []),
        ((10, 3), (3, 10), None),
        ((3,), (10, 3), None),
    ],
)
def test_unsummed_axes(returned, expected, axes):
    assert unsummed_axes(returned, expected) == axes


def test_shape_messages_suggest_a_fix_that_works():
    keep = diagnose_shape((4, 3), (4, 1), batch_size=4, other_inputs=())
    assert "axis 1 (size 3) looks unsummed" in keep.message
    assert "G.sum(dim=1, keepdim=True)" in keep.message
    transposed = diagnose_shape((3, 4), (4, 3), batch_size=4, other_inputs=())
    assert "transposed shape" in transposed.message
    other = diagnose_shape((7,), (4, 3), batch_size=4, other_inputs=[("input 1 (W)", (3, 2))])
    assert other.message.endswith("return a gradient shaped like its input")


@pytest.mark.parametrize(
    ("factor", "text"),
    [
        (0.5, "1/2"),
        (2.0, "2"),
        (-1 / 3, "-1/3"),
        (0.7310585786, "0.7311"),
        (5.0, "5 (with 5 = the size of axis 0 of X)"),
        (0.2, "1/5 (with 5 = the size of axis 0 of X)"),
    ],
)
def test_describe_factor_names_simple_fractions_and_sizes(factor, text):
    assert describe_factor(factor, [(5, "the size of axis 0 of X")]) == text


@pytest.mark.parametrize(
    ("text", "shape"),
    [("10,5", (10, 5)), ("3", (3,)), ("3,", (3,)), ("()", ()), (" 2, 4 ", (2, 4))],
)
def test_parse_shape(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["a", "3,,4", "-1", "0", "3.5"])
def test_parse_shape_refuses_what_is_not_a_shape(text):
    with pytest.raises(UserError, match="is not a shape"):
        parse_shape(text)


def test_a_gradient_for_a_non_tensor_argument_is_wrong_arity():
    class GradForAlpha(ScaledLinear):
        @staticmethod
        def backward(ctx, G):
            grad_X, grad_W, _ = ScaledLinear.backward(ctx, G)
            return grad_X, grad_W, torch.tensor(1.0)

    report = handgrad.check(GradForAlpha, *tensors((4, 3), (3, 2)), 2.0)
    assert [entry.diagnosis for entry in report.inputs] == ["wrong-arity", "wrong-arity"]
    assert "input 2 (alpha), which is a float" in report.inputs[0].message


def test_trailing_nones_are_accepted_as_autograd_accepts_them():
    class ExtraNone(handgrad.Linear):
        @staticmethod
        def backward(ctx, G):
            return (*handgrad.Linear.backward(ctx, G), None)

    assert handgrad.check(ExtraNone, *tensors((4, 3), (3, 2), (2,))).ok


def test_zero_dim_inputs_and_outputs():
    def scale(x, s):
        return (s * x).sum()

    report = handgrad.check(scale, *tensors((3,), ()))
    assert report.ok and report.inputs[1].shape == ()


def test_non_contiguous_inputs():
    X = torch.randn(3, 4, dtype=torch.float64).T
    assert handgrad.check(handgrad.Linear, X, *tensors((3, 2), (2,))).ok


def test_a_factor_that_is_one_over_a_scalar_argument_says_so():
    text = describe_factor(2.0, scalars=[(0.5, "input 1 (alpha)")])
    assert text == "2 (= 1/0.5, with 0.5 = input 1 (alpha))"
    assert describe_factor(1 / 3, scalars=[(3.0, "input 1 (k)")]) == "1/3 (with 3 = input 1 (k))"


def test_a_function_passed_as_its_apply_is_checked_as_the_function():
    # gradcheck users pass MyFunction.apply; through apply, autograd would sum the
    # unsummed bias gradient itself and hide the bug.
    import torch

    import handgrad
    from gallery import LinearUnsummedBias, _linear_backward

    function = _linear_backward(LinearUnsummedBias)
    X, W, b = torch.randn(6, 4), torch.randn(4, 3), torch.randn(3)
    report = handgrad.check(function.apply, X, W, b)
    assert report.verdict == "WRONG"
    assert "input 2 (b): wrong-shape" in str(report)


def test_an_error_in_the_users_code_names_its_line(tmp_path):
    from handgrad.checking.analytic import describe_error

    module = tmp_path / "crashy_module.py"
    module.write_text("def f(x):\n    a, b = (x,)\n    return a\n")
    namespace: dict = {}
    exec(compile(module.read_text(), str(module), "exec"), namespace)
    try:
        namespace["f"](1)
    except ValueError as error:
        text = describe_error(error)
    assert text.startswith("ValueError: not enough values to unpack")
    assert text.endswith("(at crashy_module.py:2)")
