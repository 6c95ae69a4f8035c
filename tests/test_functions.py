"""Linear and MSE against torch's own ops in float64: forward and each gradient separately."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck, gradgradcheck

import handgrad
from handgrad import MSE, Linear, linear, mse

from conftest import make_problem

TOL = {"rtol": 1e-12, "atol": 1e-12}


def reference_linear(X, W, b):
    return X @ W + b


def reference_mse(Y_hat, Y):
    return ((Y_hat - Y) ** 2).sum() / Y_hat.shape[0]


def grads(output, inputs):
    return torch.autograd.grad(output, inputs, torch.randn_like(output))


def test_linear_forward_and_each_gradient(problem):
    X, W, b, _ = problem
    out = linear(X, W, b)
    ref = reference_linear(X, W, b)
    torch.testing.assert_close(out, ref, **TOL)
    G = torch.randn_like(ref)
    ours = torch.autograd.grad(out, (X, W, b), G)
    theirs = torch.autograd.grad(ref, (X, W, b), G)
    for name, a, e in zip("XWb", ours, theirs, strict=True):
        assert a.shape == e.shape, name
        torch.testing.assert_close(a, e, **TOL, msg=f"gradient of {name}")


def test_mse_forward_and_each_gradient(problem):
    X, W, b, Y = problem
    Y_hat = (X @ W + b).detach().requires_grad_()
    out = mse(Y_hat, Y)
    ref = reference_mse(Y_hat, Y)
    assert out.shape == ()
    torch.testing.assert_close(out, ref, **TOL)
    g = torch.tensor(1.7, dtype=torch.float64)
    ours = torch.autograd.grad(out, (Y_hat, Y), g)
    theirs = torch.autograd.grad(ref, (Y_hat, Y), g)
    torch.testing.assert_close(ours[0], theirs[0], **TOL)
    torch.testing.assert_close(ours[1], theirs[1], **TOL)
    torch.testing.assert_close(ours[1], -ours[0], **TOL)  # the two differ only in sign


def test_mse_is_p_times_torch_mse_loss(problem):
    _, _, _, Y = problem
    Y_hat = torch.zeros_like(Y)
    p = Y.shape[1]
    torch.testing.assert_close(mse(Y_hat, Y), p * F.mse_loss(Y_hat, Y), **TOL)


@pytest.mark.parametrize(
    ("function", "arity"), [(Linear, "linear"), (MSE, "mse")], ids=["Linear", "MSE"]
)
def test_gradcheck_and_gradgradcheck(function, arity):
    X, W, b, Y = make_problem(q=5, n=3, p=2)
    inputs = (X, W, b) if arity == "linear" else ((X @ W).detach().requires_grad_(), Y)
    flags = {"check_batched_grad": True}
    assert gradcheck(
        function.apply, inputs, check_forward_ad=True, check_batched_forward_grad=True, **flags
    )
    assert gradgradcheck(function.apply, inputs, check_fwd_over_rev=True, **flags)


shapes = st.tuples(st.integers(1, 9), st.integers(1, 6), st.integers(1, 4))


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16), transposed=st.booleans())
def test_random_shapes_match_reference(shape, seed, transposed):
    q, n, p = shape
    X, W, b, Y = make_problem(q, n, p, seed=seed, requires_grad=False)
    if transposed:  # non-contiguous inputs: views with swapped strides
        X = X.T.contiguous().T
        W = W.T.contiguous().T
        Y = Y.T.contiguous().T
        assert q == 1 or n == 1 or not X.is_contiguous()
    X, W, b, Y = (t.requires_grad_() for t in (X, W, b, Y))
    ours = mse(linear(X, W, b), Y)
    ref = reference_mse(reference_linear(X, W, b), Y)
    torch.testing.assert_close(ours, ref, **TOL)
    for a, e in zip(
        torch.autograd.grad(ours, (X, W, b, Y)),
        torch.autograd.grad(ref, (X, W, b, Y)),
        strict=True,
    ):
        assert a.shape == e.shape
        torch.testing.assert_close(a, e, **TOL)


def test_float32_matches_float64():
    X, W, b, Y = make_problem(q=20, n=5, p=2, dtype=torch.float32)
    loss = mse(linear(X, W, b), Y)
    assert loss.dtype == torch.float32
    grads32 = torch.autograd.grad(loss, (X, W, b, Y))
    X64, W64, b64, Y64 = (t.detach().double().requires_grad_() for t in (X, W, b, Y))
    grads64 = torch.autograd.grad(mse(linear(X64, W64, b64), Y64), (X64, W64, b64, Y64))
    for a, e in zip(grads32, grads64, strict=True):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a.double(), e, rtol=1e-5, atol=1e-5)


def test_needs_input_grad_computes_only_what_is_asked():
    X, W, b, Y = make_problem(requires_grad=False)
    G = torch.randn(X.shape[0], W.shape[1], dtype=X.dtype)
    for mask in [(True, False, False), (False, True, False), (False, False, True)]:
        _, ctx = handgrad.forward(Linear, X, W, b, needs_input_grad=mask)
        result = ctx.backward(G)
        assert [g is not None for g in result] == list(mask)
    Y_hat = X @ W
    for mask in [(True, False), (False, True), (False, False)]:
        _, ctx = handgrad.forward(MSE, Y_hat, Y, needs_input_grad=mask)
        assert [g is not None for g in ctx.backward()] == list(mask)


def test_vmap_and_jacrev_agree_with_autograd(problem):
    X, W, b, Y = problem

    def loss(W, b, X, Y):
        return mse(linear(X, W, b), Y)

    # jacrev of the scalar loss is its gradient.
    jac_W, jac_b = torch.func.jacrev(loss, argnums=(0, 1))(W, b, X, Y)
    auto_W, auto_b = torch.autograd.grad(reference_mse(reference_linear(X, W, b), Y), (W, b))
    torch.testing.assert_close(jac_W, auto_W, **TOL)
    torch.testing.assert_close(jac_b, auto_b, **TOL)
    # vmap: per-batch gradients over a stack of data sets, one autograd call each.
    Xs = torch.randn(4, *X.shape, dtype=X.dtype)
    Ys = torch.randn(4, *Y.shape, dtype=Y.dtype)
    per_batch = torch.vmap(torch.func.grad(loss), in_dims=(None, None, 0, 0))(W, b, Xs, Ys)
    for i in range(4):
        expected = torch.autograd.grad(reference_mse(reference_linear(Xs[i], W, b), Ys[i]), W)[0]
        torch.testing.assert_close(per_batch[i], expected, **TOL)
    # jacrev of the Linear map itself: d(XW + b)/db is one identity per row.
    jac = torch.func.jacrev(linear, argnums=2)(X, W, b)  # (q, p, p)
    torch.testing.assert_close(jac, torch.eye(W.shape[1], dtype=X.dtype).expand_as(jac))


def test_forward_mode_matches_reference(problem):
    X, W, b, Y = problem
    tangents = tuple(torch.randn_like(t) for t in (X, W, b, Y))
    primals = tuple(t.detach() for t in (X, W, b, Y))

    def ours(X, W, b, Y):
        return mse(linear(X, W, b), Y)

    def ref(X, W, b, Y):
        return reference_mse(reference_linear(X, W, b), Y)

    _, jvp_ours = torch.func.jvp(ours, primals, tangents)
    _, jvp_ref = torch.func.jvp(ref, primals, tangents)
    torch.testing.assert_close(jvp_ours, jvp_ref, **TOL)


def test_torch_compile_fullgraph():
    X, W, b, Y = make_problem()
    compiled = torch.compile(lambda X, W, b, Y: mse(linear(X, W, b), Y), fullgraph=True)
    loss = compiled(X, W, b, Y)
    got = torch.autograd.grad(loss, (W, b))
    ref = torch.autograd.grad(reference_mse(reference_linear(X, W, b), Y), (W, b))
    torch.testing.assert_close(loss, reference_mse(reference_linear(X, W, b), Y), **TOL)
    for a, e in zip(got, ref, strict=True):
        torch.testing.assert_close(a, e, **TOL)
