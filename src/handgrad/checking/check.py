"""The public entry points: ``check`` and ``assert_gradients``.

The steps of one check:

1. copy every floating-point input to float64 (finite differences need it);
2. draw a seeded random ``grad_output`` V shaped like the output;
3. numeric ∂L/∂x for L = Σ V ⊙ f(x), by central differences (``numeric.py``);
4. analytic ∂L/∂x for V and for 3·V: through ``ctx.backward`` directly for a
   Function (so the raw tuple is seen), through autograd for a callable
   (``analytic.py``);
5. a diagnosis per input (``diagnose.py``), then the extra checks (``extras.py``).
"""

from __future__ import annotations

from typing import Any

import torch

from handgrad.checking.analytic import Attempt, autograd_vjp, direct_backward
from handgrad.checking.extras import (
    check_chaining,
    check_double_backward,
    check_forward_mode,
    check_native_dtype,
)
from handgrad.checking.judge import GRAD_OUTPUT_SCALE, Judge, gradient
from handgrad.checking.numeric import numeric_vjp, random_grad_output, to_float64
from handgrad.checking.report import GradientReport
from handgrad.checking.target import Target, differentiable_indices, make_target


def check(
    function: Any,
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> GradientReport:
    """Check a hand-written backward pass against finite differences; name any mistake.

    Parameters
    ----------
    function : torch.autograd.Function subclass or callable
        A Function, old style (``forward(ctx, ...)``) or new style (``forward`` +
        ``setup_context``), or a plain callable of tensors. It must return one tensor
        (of any shape, or 0-dim); several outputs are not supported.
    *inputs
        The arguments, tensors or not. The floating-point tensors that require grad are
        checked; if none requires grad, all floating-point tensors are.
    eps : float, default=1e-6
        Finite-difference step, applied in float64.
    atol, rtol : float, default=1e-5, 1e-3
        Elementwise tolerance |analytic − numeric| ≤ atol + rtol·|numeric|, as gradcheck.
    seed : int, default=0
        Seed of the random ``grad_output``.

    Returns
    -------
    GradientReport
        ``.ok``, one entry per tensor input with its diagnosis, and the extra checks.

    Raises
    ------
    TypeError, ValueError
        When an argument is unusable (no floating-point tensor input, several outputs,
        a non-positive eps...); the message names it. An exception raised by the
        target's forward propagates; one raised by its backward is a diagnosis.
    """
    _validate(function, inputs, eps, atol, rtol)
    target = make_target(function, len(inputs))
    indices = differentiable_indices(inputs)
    x64 = to_float64(inputs)
    with torch.no_grad():
        output = target.call(*x64)
    _validate_output(target, output)

    V = random_grad_output(output, seed)
    numeric = numeric_vjp(target.call, x64, V, indices, eps)
    through_autograd = autograd_vjp(target, x64, V, indices)
    direct = direct_backward(target, x64, V, indices) if target.is_function else None
    scaled_V = GRAD_OUTPUT_SCALE * V
    if direct is not None and direct.ok:
        analytic, analytic_scaled = direct, direct_backward(target, x64, scaled_V, indices)
    else:  # a callable, or a Function that the manual chain cannot run
        analytic, analytic_scaled = through_autograd, autograd_vjp(target, x64, scaled_V, indices)

    judge = Judge(target, inputs, indices, numeric, analytic, analytic_scaled, atol, rtol)
    entries = [judge(i) for i, x in enumerate(inputs) if isinstance(x, torch.Tensor)]

    ok_in_float64 = {e.index: gradient(analytic, e.index) for e in entries if e.checked and e.ok}
    native, differ = check_native_dtype(target, inputs, V, ok_in_float64)
    for entry in entries:
        if entry.index in differ:
            entry.diagnosis = "mismatch"
            entry.message = (
                f"right in float64 but not in {inputs[entry.index].dtype}: {native.detail}"
            )
    well_shaped = [e.index for e in entries if e.checked and e.diagnosis != "wrong-shape"]
    gradients_ok = all(entry.ok for entry in entries)
    return GradientReport(
        function=target.name,
        kind=target.kind,
        inputs=entries,
        chaining=check_chaining(
            target,
            direct or Attempt(),
            through_autograd,
            well_shaped,
            [e.label for e in entries if e.diagnosis == "wrong-shape"],
            explained=any(e.diagnosis in ("wrong-arity", "wrong-shape") for e in entries),
        ),
        double_backward=check_double_backward(target, x64, indices, gradients_ok),
        forward_mode=check_forward_mode(target, x64, indices),
        native_dtype=native,
        precision=_precision(inputs, indices, eps),
        eps=eps,
        atol=atol,
        rtol=rtol,
        seed=seed,
    )


def assert_gradients(function: Any, *inputs: Any, **options: Any) -> GradientReport:
    """Like :func:`check`, but raise ``AssertionError`` with the summary when not ok.

    For pytest: ``handgrad.assert_gradients(MyFunction, X, W)``. Returns the report.
    """
    report = check(function, *inputs, **options)
    if not report.ok:
        raise AssertionError(f"gradient check failed:\n{report}")
    return report


def _precision(inputs: tuple, indices: tuple[int, ...], eps: float) -> str:
    given = sorted({str(inputs[i].dtype).removeprefix("torch.") for i in indices})
    return (
        f"numeric gradients by central differences (eps={eps:g}) and analytic gradients, "
        f"both in float64 on float64 copies of the inputs (given as {', '.join(given)})"
    )


def _validate(function: Any, inputs: tuple, eps: float, atol: float, rtol: float) -> None:
    for name, value, low in (("eps", eps, "> 0"), ("atol", atol, ">= 0"), ("rtol", rtol, ">= 0")):
        valid = isinstance(value, (int, float)) and (value > 0 if low == "> 0" else value >= 0)
        if not valid:
            raise ValueError(f"{name} must be a number {low}; got {value!r}.")
    if not differentiable_indices(inputs):
        got = ", ".join(type(x).__name__ for x in inputs) or "no inputs"
        raise ValueError(
            "check needs at least one floating-point tensor input to differentiate; got "
            f"{got}. Pass tensors, e.g. torch.randn(10, 5, dtype=torch.float64)."
        )
    for i, x in enumerate(inputs):
        if isinstance(x, torch.Tensor) and x.is_complex():
            raise TypeError(f"input {i} is complex ({x.dtype}); only real tensors are supported.")


def _validate_output(target: Target, output: Any) -> None:
    if isinstance(output, (tuple, list)):
        raise TypeError(
            f"{target.name} returned {len(output)} outputs; check supports one. Check each "
            "output separately, e.g. with lambda *xs: f(*xs)[0]."
        )
    if not isinstance(output, torch.Tensor) or not output.dtype.is_floating_point:
        raise TypeError(
            f"{target.name} must return one floating-point tensor; got "
            f"{getattr(output, 'dtype', type(output).__name__)}."
        )
