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


def test_old_style_function_runs_through_forward():
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
