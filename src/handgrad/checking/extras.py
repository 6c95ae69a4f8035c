"""The checks beyond first derivatives, each an :class:`ExtraCheck` that never passes silently.

- manual chaining: ``handgrad.forward`` + ``ctx.backward`` gives autograd's gradients;
- double backward: ``torch.autograd.gradgradcheck``, where backward is differentiable;
- forward mode: ``gradcheck(check_forward_ad=True)``, where the Function defines ``jvp``;
- native dtype: backward run in the inputs' own dtype (float32, say) agrees with its
  float64 result, within that dtype's precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from handgrad.checking.analytic import Attempt, autograd_vjp, describe_error, direct_backward
from handgrad.checking.report import ExtraCheck
from handgrad.checking.target import Target

CHAINING = "manual chaining (handgrad.forward + ctx.backward vs autograd)"
DOUBLE = "double backward (gradgradcheck)"
FORWARD = "forward mode (jvp, gradcheck with check_forward_ad)"
NATIVE = "backward in the inputs' dtype vs float64"


def check_chaining(
    target: Target,
    direct: Attempt,
    through_autograd: Attempt,
    comparable: Sequence[int],
    left_out: Sequence[str] = (),
    explained: bool = False,
) -> ExtraCheck:
    """Compare the raw gradients of the manual chain with autograd's, input by input.

    ``comparable`` lists the inputs whose raw gradient is well shaped; ``left_out``
    labels the others, whose input diagnoses already say what is wrong; ``explained``
    says whether those diagnoses explain why autograd would reject backward's result.
    """
    if not target.is_function:
        return ExtraCheck(CHAINING, "not applicable", "a plain callable has no Context")
    if not direct.ok and not through_autograd.ok:
        return ExtraCheck(CHAINING, "skipped", "backward raised by both routes: see the inputs")
    if not direct.ok:
        return ExtraCheck(
            CHAINING,
            "failed",
            f"autograd runs it, but the manual chain raised {direct.error}; the Function "
            "may use a part of ctx that handgrad.Context lacks",
        )
    if not through_autograd.ok:
        rejected = f"autograd rejected backward's result ({through_autograd.error})"
        if explained:
            return ExtraCheck(CHAINING, "skipped", f"{rejected}: see the inputs")
        return ExtraCheck(CHAINING, "failed", rejected)
    differ = []
    for i in comparable:
        raw, auto = direct.value[i], through_autograd.value[i]
        if raw is None or auto is None:
            if (raw is None) != (auto is None) and bool((auto if raw is None else raw).any()):
                differ.append(i)
        elif not torch.allclose(raw.to(auto.dtype), auto, rtol=1e-7, atol=1e-10):
            differ.append(i)
    if differ:
        return ExtraCheck(
            CHAINING, "failed", f"the two routes give different gradients for inputs {differ}"
        )
    detail = f"{', '.join(left_out)} left out: wrong-shape" if left_out else ""
    return ExtraCheck(CHAINING, "passed", detail)


def check_double_backward(
    target: Target, inputs: list[Any], indices: Sequence[int], gradients_ok: bool
) -> ExtraCheck:
    """Run ``gradgradcheck`` on float64 ``inputs`` if backward builds a graph."""
    if not target.is_function:
        return ExtraCheck(DOUBLE, "not applicable", "a plain callable's backward is autograd's")
    if not gradients_ok:
        return ExtraCheck(DOUBLE, "skipped", "the first derivatives are wrong; fix them first")
    grad_output = torch.ones_like(target.call(*inputs), dtype=torch.float64)
    first = autograd_vjp(target, inputs, grad_output, indices, create_graph=True)
    if not first.ok:
        return ExtraCheck(DOUBLE, "failed", f"backward with create_graph=True raised {first.error}")
    if not any(g is not None and g.requires_grad for g in first.value.values()):
        return ExtraCheck(
            DOUBLE,
            "not applicable",
            "backward is not differentiable: its gradients carry no graph (computed under "
            "no_grad, through numpy, or marked @once_differentiable)",
        )
    leaves = _leaves(inputs, indices)
    try:
        torch.autograd.gradgradcheck(target.call, leaves, fast_mode=True)
    except Exception as error:  # GradcheckError, or whatever the code under test raises
        return ExtraCheck(DOUBLE, "failed", describe_error(error))
    return ExtraCheck(DOUBLE, "passed")


def check_forward_mode(target: Target, inputs: list[Any], indices: Sequence[int]) -> ExtraCheck:
    """Check a Function's ``jvp`` against finite differences, in float64."""
    if not target.is_function:
        return ExtraCheck(FORWARD, "not applicable", "a plain callable's jvp is autograd's")
    if not target.defines_jvp:
        return ExtraCheck(FORWARD, "not applicable", f"{target.name} defines no jvp")
    try:
        torch.autograd.gradcheck(
            target.call,
            _leaves(inputs, indices),
            check_forward_ad=True,
            check_backward_ad=False,
            check_undefined_grad=False,
            fast_mode=True,
        )
    except Exception as error:  # GradcheckError, or whatever the code under test raises
        return ExtraCheck(FORWARD, "failed", describe_error(error))
    return ExtraCheck(FORWARD, "passed")


def check_native_dtype(
    target: Target,
    inputs: Sequence[Any],
    grad_output: torch.Tensor,
    reference: dict[int, torch.Tensor],
) -> tuple[ExtraCheck, list[int]]:
    """Rerun backward in the inputs' own dtype and compare with the float64 ``reference``.

    Only inputs in ``reference`` (those found ok in float64) are compared. The tolerance
    is 10·√ε of the dtype (3.5e-3 for float32), relative to the gradient's largest
    entry: rounding in a correct backward stays far below it, a dtype-dependent bug
    does not. Returns the check and the inputs that disagree.
    """
    dtypes = {inputs[i].dtype for i in reference}
    if not reference:
        return ExtraCheck(NATIVE, "skipped", "no gradient is right in float64"), []
    if dtypes == {torch.float64}:
        return ExtraCheck(NATIVE, "not applicable", "the inputs are float64"), []
    copies = [x.detach().clone() if isinstance(x, torch.Tensor) else x for x in inputs]
    indices = list(reference)
    with torch.no_grad():
        output_dtype = target.call(*copies).dtype
    v = grad_output.to(output_dtype)
    if target.is_function:
        attempt = direct_backward(target, copies, v, indices)
        value = None if not attempt.ok else {i: attempt.value[i] for i in indices}
    else:
        attempt = autograd_vjp(target, copies, v, indices)
        value = attempt.value
    names = "/".join(sorted(str(d).removeprefix("torch.") for d in dtypes))
    if not attempt.ok:
        return ExtraCheck(NATIVE, "failed", f"in {names}, backward raised {attempt.error}"), indices
    differ = []
    for i in indices:
        tol = 10 * torch.finfo(inputs[i].dtype).eps ** 0.5
        scale = max(1.0, float(reference[i].abs().max()))
        got = value[i]
        agrees = (
            got is not None
            and got.shape == reference[i].shape
            and torch.allclose(got.to(torch.float64), reference[i], rtol=tol, atol=tol * scale)
        )
        if not agrees:
            differ.append(i)
    if differ:
        return ExtraCheck(
            NATIVE,
            "failed",
            f"in {names}, backward disagrees with its float64 result for "
            f"inputs {differ} beyond rounding",
        ), differ
    return ExtraCheck(NATIVE, "passed", f"{names} within rounding"), []


def _leaves(inputs: list[Any], indices: Sequence[int]) -> tuple[Any, ...]:
    return tuple(
        x.detach().clone().requires_grad_(i in indices) if isinstance(x, torch.Tensor) else x
        for i, x in enumerate(inputs)
    )
