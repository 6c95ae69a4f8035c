"""The public entry points: ``check`` and ``assert_gradients``.

The steps of one check:

1. decide where to compute (``placement.py``) and copy every floating-point input to
   float64 there;
2. run the forward once: which outputs carry a gradient, where they are defined, and a
   seeded random ``grad_output`` V_j for each (``outputs.py``);
3. numeric ∂L/∂x for L = Σ_j Σ V_j ⊙ f_j(x), by central differences (``numeric.py``);
4. analytic ∂L/∂x for V and for 3·V: through ``ctx.backward`` directly for a Function
   (so the raw tuple is seen), through autograd for a callable or for a Function that
   handgrad's Context cannot run (``analytic.py``);
5. a diagnosis per input (``judge.py``), then the extra checks (``extras.py``,
   ``reruns.py``).
"""

from __future__ import annotations

from typing import Any

import torch

from handgrad.checking.analytic import Attempt, autograd_vjp, direct_backward, gradient, vjp
from handgrad.checking.diagnose import UNDEFINED_MESSAGE
from handgrad.checking.extras import (
    CHAINING,
    DOUBLE,
    FORWARD,
    check_chaining,
    check_double_backward,
    check_forward_mode,
)
from handgrad.checking.judge import GRAD_OUTPUT_SCALE, Evidence, Judge
from handgrad.checking.numeric import mark_unstable, numeric_vjp
from handgrad.checking.outputs import inspect_outputs, random_grad_outputs
from handgrad.checking.placement import Placement, placement_for, to_float64
from handgrad.checking.report import ExtraCheck, GradientReport, InputReport
from handgrad.checking.reruns import NATIVE, NEEDS, check_native_dtype, check_needs_input_grad
from handgrad.checking.target import differentiable_indices, make_target

EXTRA_NAMES = (CHAINING, NEEDS, DOUBLE, FORWARD, NATIVE)


def check(
    function: Any,
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "auto",
) -> GradientReport:
    """Check a hand-written backward pass against finite differences; name any mistake.

    Parameters
    ----------
    function : torch.autograd.Function subclass or callable
        A Function, in the ``forward(ctx, …)`` style or the ``setup_context`` style, or
        a plain callable of tensors. It may return one tensor or several (a tuple).
    *inputs
        The arguments, tensors (on any device) or not. The floating-point tensors that
        require grad are checked; if none requires grad, all floating-point tensors are.
    eps : float, default=1e-6
        Finite-difference step, applied in float64.
    atol, rtol : float, default=1e-5, 1e-3
        Elementwise tolerance |analytic − numeric| ≤ atol + rtol·|numeric|, as gradcheck.
    seed : int, default=0
        Seed of every random draw of the check: the ``grad_output``, and the random
        directions of gradgradcheck and of the jvp check. The same call gives the same
        report, and the caller's random streams are left as they were.
    device : {"auto", "cpu"} or a device name, default="auto"
        Where the float64 gradients are computed: "auto" is the inputs' device, or CPU
        copies for a device without float64 (mps); "cpu" always uses CPU copies. The
        report's ``device`` and ``precision`` say which.

    Returns
    -------
    GradientReport
        ``.verdict`` (OK, WRONG, or UNDEFINED where the forward is undefined at the
        inputs), one entry per tensor input with its diagnosis, and the extra checks.

    Raises
    ------
    TypeError, ValueError
        When an argument is unusable (no floating-point tensor input, no floating-point
        output, a non-positive eps...); the message names it. An exception raised by the
        target's forward propagates; one raised by its backward is a diagnosis.
    """
    _validate(function, inputs, eps, atol, rtol)
    target = make_target(function, len(inputs))
    indices = differentiable_indices(inputs)
    place = placement_for(inputs, device)
    x64 = to_float64(inputs, place.device)
    outputs = inspect_outputs(target, x64, indices)
    V = random_grad_outputs(outputs, seed)
    settings = (place, outputs, eps, atol, rtol, seed)
    if outputs.undefined:  # no finite output element: nothing to compare anywhere
        return _undefined_report(target, inputs, indices, settings)

    numeric = numeric_vjp(target.call, x64, V, outputs, indices, eps)
    through_autograd = autograd_vjp(target, x64, V, indices)
    direct = direct_backward(target, x64, V, indices) if target.is_function else None
    by_context = direct is not None and direct.ok

    def route(grad_outputs: tuple) -> Attempt:  # the route the gradients are judged by
        return vjp(target, x64, grad_outputs, indices, by_context)

    analytic = direct if by_context else through_autograd
    suspects = _disagreeing(analytic, numeric, atol, rtol)
    mark_unstable(target.call, x64, V, outputs, numeric, suspects, eps, atol, rtol)
    judge = Judge(
        Evidence(
            target=target,
            inputs=tuple(inputs),
            indices=indices,
            outputs=outputs,
            numeric=numeric,
            analytic=analytic,
            analytic_scaled=route(_scaled(V, GRAD_OUTPUT_SCALE)),
            per_output=lambda j, scale: route(_scaled(_only(V, j), scale)),
            atol=atol,
            rtol=rtol,
            is_mse=target.looks_like_mse,
        )
    )
    entries = [judge(i) for i, x in enumerate(inputs) if isinstance(x, torch.Tensor)]
    needs, native = _rerun(judge, entries, x64, V, by_context)

    undefined = outputs.partly_undefined or any(e.undefined for e in entries)
    skip = "the forward is undefined at some of these inputs" if undefined else None
    wrong_first = None
    if not all(e.ok for e in entries):
        wrong_first = "the first derivatives are wrong; fix them first"
    extras = dict(
        chaining=check_chaining(
            target,
            direct or Attempt(),
            through_autograd,
            [e.index for e in entries if e.checked and e.diagnosis != "wrong-shape"],
            [e.label for e in entries if e.diagnosis == "wrong-shape"],
            explained=any(e.diagnosis in ("wrong-arity", "wrong-shape") for e in entries),
        ),
        needs_input_grad=needs,
        double_backward=check_double_backward(
            target, x64, V, outputs, indices, wrong_first or skip, seed
        ),
        forward_mode=check_forward_mode(target, x64, outputs, indices, skip, seed),
        native_dtype=native,
    )
    return _report(target, inputs, indices, entries, extras, settings)


def assert_gradients(function: Any, *inputs: Any, **options: Any) -> GradientReport:
    """Like :func:`check`, but raise ``AssertionError`` with the summary when not ok.

    For pytest: ``handgrad.assert_gradients(MyFunction, X, W)``. Returns the report.
    """
    report = check(function, *inputs, **options)
    if not report.ok:
        raise AssertionError(f"gradient check failed:\n{report}")
    return report


def _rerun(judge: Judge, entries: list, x64: list, V: tuple, by_context: bool) -> tuple:
    """Rerun the backward for the inputs found right: with each input alone requiring
    grad, then in the inputs' own dtype. An input wrong there gets that diagnosis."""
    e = judge.e
    right = {entry.index: entry for entry in entries if entry.checked and entry.ok}
    numeric = {}
    for i in right:
        mask = judge.undefined_mask(i, gradient(e.analytic, i))
        numeric[i] = (e.numeric[i].sum(0).masked_fill(mask, 0.0), mask)
    needs, alone = check_needs_input_grad(e.target, x64, V, numeric, e.atol, e.rtol, by_context)
    for i, diagnosis in alone.items():
        entry = right.pop(i)
        entry.diagnosis, entry.message = diagnosis.code, diagnosis.message
    reference = {
        i: gradient(e.analytic, i).detach().to("cpu", torch.float64)
        for i in right
        if isinstance(gradient(e.analytic, i), torch.Tensor)
    }
    native, differ = check_native_dtype(e.target, e.inputs, V, reference, by_context)
    for i in differ:
        right[i].diagnosis = "mismatch"
        right[i].message = f"right in float64 but not in {e.inputs[i].dtype}: {native.detail}"
    return needs, native


def _disagreeing(analytic: Attempt, numeric: dict, atol: float, rtol: float) -> dict:
    """Per input, the elements where a well-shaped analytic gradient disagrees."""
    suspects = {}
    for i, table in numeric.items():
        g = gradient(analytic, i) if analytic.ok else None
        expected = table.sum(0)
        if isinstance(g, torch.Tensor) and g.shape == expected.shape:
            g = g.detach().to("cpu", torch.float64)
            suspects[i] = ~torch.isclose(g, expected, rtol=rtol, atol=atol) & expected.isfinite()
    return suspects


def _scaled(grad_outputs: tuple, scale: float) -> tuple:
    return tuple(
        g * scale if isinstance(g, torch.Tensor) and g.dtype.is_floating_point else g
        for g in grad_outputs
    )


def _only(grad_outputs: tuple, j: int) -> tuple:
    """The grad_outputs with every output but j given zeros."""
    return tuple(
        g if k == j or not isinstance(g, torch.Tensor) else torch.zeros_like(g)
        for k, g in enumerate(grad_outputs)
    )


def _report(target, inputs, indices, entries, extras, settings) -> GradientReport:
    place, outputs, eps, atol, rtol, seed = settings
    return GradientReport(
        function=target.name,
        kind=target.kind,
        inputs=entries,
        **extras,
        precision=_precision(inputs, indices, eps, place),
        device=str(place.device),
        n_outputs=outputs.count,
        eps=eps,
        atol=atol,
        rtol=rtol,
        seed=seed,
    )


def _undefined_report(target, inputs, indices, settings) -> GradientReport:
    """No output element is finite: every checked input is ``undefined``."""
    entries = []
    for i, x in enumerate(inputs):
        if isinstance(x, torch.Tensor):
            checked = i in indices
            entries.append(
                InputReport(
                    index=i,
                    label=target.input_label(i),
                    shape=tuple(x.shape),
                    dtype=str(x.dtype).removeprefix("torch."),
                    checked=checked,
                    diagnosis="undefined" if checked else "ok",
                    message=UNDEFINED_MESSAGE if checked else "not checked",
                    undefined=x.numel() if checked else 0,
                )
            )
    reason = "the forward is undefined at these inputs"
    names = ("chaining", "needs_input_grad", "double_backward", "forward_mode", "native_dtype")
    extras = {
        name: ExtraCheck(check_name, "skipped", reason)
        for name, check_name in zip(names, EXTRA_NAMES, strict=True)
    }
    return _report(target, inputs, indices, entries, extras, settings)


def _precision(inputs: tuple, indices: tuple[int, ...], eps: float, place: Placement) -> str:
    given = sorted({str(inputs[i].dtype).removeprefix("torch.") for i in indices})
    return (
        f"numeric gradients by central differences (eps={eps:g}) and analytic gradients, "
        f"both in float64 on {place.describe()}; inputs given as {', '.join(given)}"
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
