"""Manual chaining through Context equals autograd, shape for shape."""

from __future__ import annotations

import pytest
import torch

import handgrad
from handgrad import MSE, Context, Linear

from conftest import make_problem


def manual_chain(X, W, b, Y):
    """The classic lab: Linear forward, MSE forward, MSE backward with 1, Linear backward."""
    Y_hat, lin = handgrad.forward(Linear, X, W, b)
    loss, err = handgrad.forward(MSE, Y_hat, Y)
    grad_Y_hat, grad_Y = err.backward()
    grad_X, grad_W, grad_b = lin.backward(grad_Y_hat)
    return loss, (grad_X, grad_W, grad_b, grad_Y)


@pytest.mark.parametrize("shape", [(7, 4, 3), (1, 1, 1), (50, 13, 3), (3, 5, 1)])
def test_manual_chain_equals_autograd(shape):
    X, W, b, Y = make_problem(*shape, requires_grad=False)
    loss, manual = manual_chain(X, W, b, Y)
    assert not loss.requires_grad and all(not g.requires_grad for g in manual)  # no graph
    inputs = tuple(t.clone().requires_grad_() for t in (X, W, b, Y))
    auto_loss = handgrad.mse(handgrad.linear(*inputs[:3]), inputs[3])
    auto = torch.autograd.grad(auto_loss, inputs)
    torch.testing.assert_close(loss, auto_loss.detach(), rtol=1e-12, atol=1e-12)
    for name, m, a, x in zip(("X", "W", "b", "Y"), manual, auto, (X, W, b, Y), strict=True):
        # backward was called directly, so a wrongly shaped gradient could not hide
        assert m.shape == x.shape, f"grad of {name} has shape {tuple(m.shape)}"
        torch.testing.assert_close(m, a, rtol=1e-12, atol=1e-12, msg=f"gradient of {name}")


def test_context_defaults_and_bookkeeping():
    ctx = Context()
    assert ctx.needs_input_grad is None
    X, W, b, _ = make_problem(requires_grad=False)
    out, ctx = handgrad.forward(Linear, X, W, b)
    assert ctx.needs_input_grad == (True, True, True)
    assert ctx._handgrad_function is Linear and ctx._handgrad_output is out
    saved_X, saved_W = ctx.saved_tensors
    assert saved_X is X and saved_W is W
    ctx.some_attribute = 3  # Functions may stash anything on ctx
    assert ctx.some_attribute == 3


def test_forward_ctx_style_function_runs_through_forward():
    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x * x).sum()

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * g * x

    x = torch.arange(3.0)
    out, ctx = handgrad.forward(Square, x)
    assert out.item() == 5.0
    (grad,) = ctx.backward()
    torch.testing.assert_close(grad, 2 * x)


def test_backward_needs_a_forward_and_a_seed_for_non_scalars():
    with pytest.raises(RuntimeError, match=r"handgrad.forward\(Function"):
        Context().backward(torch.ones(()))
    X, W, b, _ = make_problem(requires_grad=False)
    _, ctx = handgrad.forward(Linear, X, W, b)
    with pytest.raises(ValueError, match="needs a grad_output for a non-scalar output"):
        ctx.backward()


def test_saved_variables_is_the_deprecated_alias_torch_still_supports():
    x = torch.arange(3.0)
    _, ctx = handgrad.forward(Linear, x[None], torch.ones(3, 2), torch.zeros(2))
    with pytest.warns(DeprecationWarning, match="use 'saved_tensors'"):
        saved = ctx.saved_variables
    assert all(a is b for a, b in zip(saved, ctx.saved_tensors, strict=True))


def test_a_function_may_set_any_attribute_even_output_and_function():
    class Keeps(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = 2 * x
            ctx.output, ctx.function, ctx.shape = y, "mine", x.shape
            return y

        @staticmethod
        def backward(ctx, g):
            assert ctx.function == "mine" and ctx.shape == g.shape
            return 2 * g

    out, ctx = handgrad.forward(Keeps, torch.ones(3))
    (grad,) = ctx.backward(torch.ones(3))
    torch.testing.assert_close(grad, torch.full((3,), 2.0))


class MaxIndex(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        values, index = x.max(0)
        ctx.save_for_backward(index)
        ctx.mark_non_differentiable(index)
        ctx.n = x.shape[0]
        return values, index

    @staticmethod
    def backward(ctx, g_values, g_index):
        (index,) = ctx.saved_tensors
        assert g_index is not None and not g_index.any()  # zeros, as autograd passes
        return torch.zeros(ctx.n).index_put((index,), g_values)


def test_non_differentiable_outputs_get_zeros_like_autograd_gives():
    x = torch.tensor([1.0, 5.0, 2.0])
    (values, index), ctx = handgrad.forward(MaxIndex, x)
    assert ctx.non_differentiable == (index,)
    (grad,) = ctx.backward(torch.tensor(3.0), None)
    torch.testing.assert_close(grad, torch.tensor([0.0, 3.0, 0.0]))


def test_materialize_grads_decides_between_zeros_and_none():
    class Two(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, materialize):
            ctx.set_materialize_grads(materialize)
            return 2 * x, 3 * x

        @staticmethod
        def backward(ctx, g_a, g_b):
            ctx.seen = (g_a is None, g_b is None)
            return 2 * g_a + (0 if g_b is None else 3 * g_b), None

    x = torch.ones(2)
    _, ctx = handgrad.forward(Two, x, True)
    ctx.backward(torch.ones(2), None)
    assert ctx.seen == (False, False)
    _, ctx = handgrad.forward(Two, x, False)
    (grad, _) = ctx.backward(torch.ones(2), None)
    assert ctx.seen == (False, True) and torch.equal(grad, torch.full((2,), 2.0))
    with pytest.raises(ValueError, match="got 1 grad_outputs for 2 outputs"):
        ctx.backward(torch.ones(2))


def test_mark_dirty_and_save_for_forward_are_recorded():
    class ScaleInPlace(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            x.mul_(2)
            ctx.mark_dirty(x)
            ctx.save_for_forward(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return 2 * g

    x = torch.ones(2)
    out, ctx = handgrad.forward(ScaleInPlace, x)
    assert ctx.dirty_tensors == (out,) and ctx.saved_for_forward == (out,)
    assert ctx.saved_tensors == ()  # save_for_forward is for jvp, as in torch
    assert torch.equal(ctx.backward(torch.ones(2))[0], torch.full((2,), 2.0))
