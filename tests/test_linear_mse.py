"""The fused LinearMSE against the unfused pair mse(linear(X, W, b), Y), in float64.

Tolerances: values and gradients agree to rtol = 1e-12 (plus atol = 1e-12 for entries
near zero) in float64; the two compute the same sums in a different order, so only
rounding differs. float32 results agree with the float64 reference to rtol = 1e-4.
"""

from __future__ import annotations

import importlib

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck, gradgradcheck

import handgrad
from handgrad import LinearMSE, linear, linear_mse, mse

fused = importlib.import_module("handgrad.functions.linear_mse")  # the module, not the function
blocked = importlib.import_module("handgrad.functions.blocked_pass")

RTOL, ATOL = 1e-12, 1e-12


def make(q, n, p, dtype=torch.float64, seed=0, requires_grad=True):
    g = torch.Generator().manual_seed(seed)
    X, W, b, Y = (
        torch.randn(*shape, generator=g, dtype=dtype) for shape in ((q, n), (n, p), (p,), (q, p))
    )
    return tuple(t.requires_grad_(requires_grad) for t in (X, W, b, Y))


def unfused(X, W, b, Y):
    return mse(linear(X, W, b), Y)


def value_and_grads(f, inputs):
    loss = f(*inputs)
    return loss, torch.autograd.grad(loss, inputs)


def assert_matches_unfused(inputs, rtol=RTOL, atol=ATOL):
    loss, grads = value_and_grads(linear_mse, inputs)
    ref_inputs = [t.detach().double().requires_grad_() for t in inputs]
    ref_loss, ref_grads = value_and_grads(unfused, ref_inputs)
    torch.testing.assert_close(loss.double(), ref_loss, rtol=rtol, atol=atol, msg="loss")
    for name, g, ref in zip("XWbY", grads, ref_grads, strict=True):
        assert g.dtype == inputs[0].dtype
        torch.testing.assert_close(g.double(), ref, rtol=rtol, atol=atol, msg=f"grad {name}")


@pytest.fixture(params=["numpy", "torch"])
def backend(request, monkeypatch):
    """Run the test on each backend of the blocked pass (see blocked_pass.py)."""
    if request.param == "torch":
        monkeypatch.setattr(blocked, "_numpy_can_run", lambda *tensors: False)
    return request.param


@pytest.fixture
def block_rows(monkeypatch):
    """Set the block size in rows of X for float64, so that blocks can be tiny."""

    def set_rows(rows, n):
        monkeypatch.setattr(blocked, "BLOCK_BYTES", rows * n * 8)

    return set_rows


@pytest.mark.parametrize("q, n, p", [(1, 1, 1), (1, 4, 3), (7, 1, 1), (37, 5, 3), (64, 13, 1)])
def test_value_and_each_gradient_match_unfused(q, n, p, block_rows, backend):
    block_rows(5, n)  # 5 does not divide 7, 37 or 64
    assert_matches_unfused(make(q, n, p))


@settings(max_examples=40, deadline=None)
@given(
    q=st.integers(1, 40),
    n=st.integers(1, 6),
    p=st.integers(1, 4),
    rows=st.integers(1, 45),
    transposed=st.booleans(),
    seed=st.integers(0, 2**16),
    use_torch=st.booleans(),
)
def test_random_shapes_blocks_and_strides(q, n, p, rows, transposed, seed, use_torch):
    X, W, b, Y = make(q, n, p, seed=seed, requires_grad=False)
    if transposed:  # non-contiguous X, W and Y with the same values
        X, W, Y = (t.T.contiguous().T for t in (X, W, Y))
        assert not X.is_contiguous() or q == 1 or n == 1
    saved = blocked.BLOCK_BYTES, blocked._numpy_can_run
    blocked.BLOCK_BYTES = rows * n * 8
    if use_torch:  # the other backend of the blocked pass
        blocked._numpy_can_run = lambda *tensors: False
    try:
        assert_matches_unfused([t.requires_grad_() for t in (X, W, b, Y)])
    finally:
        blocked.BLOCK_BYTES, blocked._numpy_can_run = saved


def test_rows_split_over_threads_give_the_same_sums(monkeypatch, block_rows):
    block_rows(3, 4)
    monkeypatch.setattr(blocked, "MIN_BLOCKS_PER_THREAD", 1)
    X, W, b, Y = make(50, 4, 2, requires_grad=False)  # 17 blocks
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    one = blocked.sums(X, W, b, Y, True)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    three = blocked.sums(X, W, b, Y, True)
    for a, c in zip(one, three, strict=True):
        torch.testing.assert_close(a, c, rtol=RTOL, atol=ATOL)


def test_float32_agrees_with_float64_reference(block_rows, backend):
    block_rows(100, 8)
    inputs = make(1000, 8, 2, dtype=torch.float32)
    assert_matches_unfused(inputs, rtol=1e-4, atol=1e-5)


def test_loss_and_grads_is_the_forward(block_rows, backend):
    block_rows(3, 4)
    X, W, b, Y = make(10, 4, 2, requires_grad=False)
    loss, grad_W, grad_b = fused.loss_and_grads(X, W, b, Y)
    ref_inputs = [t.clone().requires_grad_() for t in (X, W, b, Y)]
    ref_loss, ref_grads = value_and_grads(unfused, ref_inputs)
    torch.testing.assert_close(loss, ref_loss.detach(), rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(grad_W, ref_grads[1], rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(grad_b, ref_grads[2], rtol=RTOL, atol=ATOL)
    assert fused.loss_and_grads(X, W, b, Y, grads=False)[1:] == (None, None)


def test_gradcheck_and_gradgradcheck(block_rows, backend):
    block_rows(4, 3)
    inputs = make(9, 3, 2)
    assert gradcheck(linear_mse, inputs, check_forward_ad=True, check_batched_grad=True)
    assert gradgradcheck(linear_mse, inputs, check_fwd_over_rev=True, check_batched_grad=True)


def hessian_vector_product(f, inputs):
    """∂/∂inputs of Σ(every gradient of f): double backward, with v = 1 everywhere."""
    grads = torch.autograd.grad(f(*inputs), inputs, create_graph=True)
    return torch.autograd.grad(sum(g.sum() for g in grads), inputs)


def test_double_backward_matches_unfused():
    inputs = make(11, 4, 2)
    got = hessian_vector_product(linear_mse, inputs)
    ref = hessian_vector_product(unfused, inputs)
    for name, a, b in zip("XWbY", got, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL, msg=f"hvp {name}")


class Spy:
    """Count calls of a module-level function of linear_mse.py."""

    def __init__(self, monkeypatch, name):
        self.calls = []
        original = getattr(fused, name)

        def spy(*args, **kwargs):
            self.calls.append(kwargs)
            return original(*args, **kwargs)

        monkeypatch.setattr(fused, name, spy)


def test_one_pass_over_X_when_only_W_and_b_want_gradients(monkeypatch):
    X, W, b, Y = make(20, 3, 2, requires_grad=False)
    W.requires_grad_(), b.requires_grad_()
    passes, residuals = Spy(monkeypatch, "loss_and_grads"), Spy(monkeypatch, "_residual")
    grad_W, grad_b = torch.autograd.grad(linear_mse(X, W, b, Y), (W, b))
    assert passes.calls == [{"grads": True}]  # forward's pass, none in backward
    assert residuals.calls == []  # R is not recomputed: no X or Y gradient asked
    ref_W, ref_b = torch.autograd.grad(unfused(X, W, b, Y), (W, b))
    torch.testing.assert_close(grad_W, ref_W, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(grad_b, ref_b, rtol=RTOL, atol=ATOL)


def test_no_gradient_sums_when_nothing_requires_grad(monkeypatch):
    passes = Spy(monkeypatch, "loss_and_grads")
    linear_mse(*make(5, 2, 1, requires_grad=False))
    assert passes.calls == [{"grads": False}]


@pytest.mark.parametrize(
    "mask",
    [
        (True, False, False, False),
        (False, True, False, False),
        (False, False, True, True),
        (False, False, False, False),
    ],
)
def test_manual_context_path_respects_needs_input_grad(mask):
    inputs = make(13, 3, 2, requires_grad=False)
    loss, ctx = handgrad.forward(LinearMSE, *inputs, needs_input_grad=mask)
    grads = ctx.backward()
    ref_inputs = [t.clone().requires_grad_() for t in inputs]
    ref_loss, ref_grads = value_and_grads(unfused, ref_inputs)
    torch.testing.assert_close(loss, ref_loss.detach(), rtol=RTOL, atol=ATOL)
    assert len(grads) == 4
    for name, wanted, g, ref in zip("XWbY", mask, grads, ref_grads, strict=True):
        if wanted:
            torch.testing.assert_close(g, ref, rtol=RTOL, atol=ATOL, msg=f"grad {name}")
        else:
            assert g is None, f"grad {name} was computed but not asked for"


def test_manual_context_path_default_gives_every_gradient():
    inputs = make(6, 2, 3, requires_grad=False)
    _, ctx = handgrad.forward(LinearMSE, *inputs)
    ref_inputs = [t.clone().requires_grad_() for t in inputs]
    _, ref_grads = value_and_grads(unfused, ref_inputs)
    for g, ref in zip(ctx.backward(), ref_grads, strict=True):
        torch.testing.assert_close(g, ref, rtol=RTOL, atol=ATOL)


def test_vmap_grad_and_jvp_of_torch_func():
    X, W, b, Y = make(8, 3, 2, requires_grad=False)
    Xs = torch.randn(4, 8, 3, dtype=torch.float64)
    batched = torch.func.vmap(linear_mse, in_dims=(0, None, None, None))(Xs, W, b, Y)
    torch.testing.assert_close(batched, torch.stack([unfused(x, W, b, Y) for x in Xs]))
    Ys = torch.randn(4, 8, 2, dtype=torch.float64)
    batched = torch.func.vmap(linear_mse, in_dims=(None, None, None, 0))(X, W, b, Ys)
    torch.testing.assert_close(batched, torch.stack([unfused(X, W, b, y) for y in Ys]))
    args = (X, W, b, Y)
    for got, ref in zip(
        torch.func.grad(linear_mse, argnums=(0, 1, 2, 3))(*args),
        torch.func.grad(unfused, argnums=(0, 1, 2, 3))(*args),
        strict=True,
    ):
        torch.testing.assert_close(got, ref, rtol=RTOL, atol=ATOL)
    tangents = tuple(torch.randn_like(t) for t in args)
    got = torch.func.jvp(linear_mse, args, tangents)
    ref = torch.func.jvp(unfused, args, tangents)
    torch.testing.assert_close(got, ref, rtol=RTOL, atol=ATOL)


def test_torch_compile_fullgraph_value_and_gradients(device):
    # The default backend (inductor), as users run it, on the device under test (on
    # PyTorch 2.11 with CUDA, ∂L/∂X came out wrong in every element); about 15 s.
    # Inductor generates no code for the tests' fakegpu: there, AOTAutograd's trace of the
    # same graph runs eagerly.
    inputs = tuple(t.detach().to(device).requires_grad_() for t in make(10, 3, 2))
    backend = "inductor" if device.type in ("cpu", "cuda") else "aot_eager"
    compiled = torch.compile(linear_mse, fullgraph=True, backend=backend)
    loss, grads = value_and_grads(compiled, inputs)
    ref_loss, ref_grads = value_and_grads(unfused, inputs)
    torch.testing.assert_close(loss, ref_loss, rtol=RTOL, atol=ATOL)
    for got, ref in zip(grads, ref_grads, strict=True):  # X, W, b and Y, each
        torch.testing.assert_close(got, ref, rtol=RTOL, atol=ATOL)


def test_compiling_the_class_itself_refuses_or_runs_eagerly_never_a_wrong_number():
    # LinearMSE has a hand-written jvp, which Dynamo does not trace: under fullgraph it
    # refuses (the README points at linear_mse instead); without, it runs eagerly.
    inputs = make(6, 3, 2)
    with pytest.raises(torch._dynamo.exc.Unsupported, match="custom jvp"):
        torch.compile(LinearMSE.apply, fullgraph=True)(*inputs)
    torch._dynamo.reset()
    loss, grads = value_and_grads(torch.compile(LinearMSE.apply), inputs)
    ref_loss, ref_grads = value_and_grads(unfused, inputs)
    torch.testing.assert_close(loss, ref_loss, rtol=RTOL, atol=ATOL)
    for got, ref in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, ref, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "shapes, message",
    [
        (((4, 3), (3, 2), (2,), (4, 1)), r"Y must have the shape of XW \+ b, \(q, p\) = \(4, 2\)"),
        (((4, 3), (3, 2), (2,), (8,)), r"Y must be 2-D"),
        (((4, 3), (2, 2), (2,), (4, 2)), r"X has 3 columns but W has 2 rows"),
        (((0, 3), (3, 2), (2,), (0, 2)), r"X has no rows"),
    ],
)
def test_validation_names_the_argument(shapes, message):
    with pytest.raises(ValueError, match=message):
        linear_mse(*(torch.zeros(s) for s in shapes))


def test_validation_rejects_mixed_dtypes():
    X, W, b, Y = make(3, 2, 1, requires_grad=False)
    with pytest.raises(TypeError, match="Y has dtype torch.float32"):
        linear_mse(X, W, b, Y.float())
