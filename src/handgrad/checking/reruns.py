"""The backward rerun under the other conditions training meets, against the float64 result.

- **One input requiring grad.** Training often freezes some inputs, and then
  ``ctx.needs_input_grad`` is False for them. A backward that guards a gradient with the
  wrong index (``if ctx.needs_input_grad[0]: grad_W = ...``) is right when every input
  requires grad and wrong when only W does. Each checked input is rerun alone.
- **The inputs' own dtype.** The backward run in float32 (say) agrees with its float64
  result within that dtype's precision.

Each returns an :class:`ExtraCheck` and the diagnosis of each input it finds wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from handgrad.checking.analytic import gradient, vjp
from handgrad.checking.diagnose import Diagnosis
from handgrad.checking.report import ExtraCheck
from handgrad.checking.target import Target

NEEDS = "each gradient with only its own argument requiring grad (ctx.needs_input_grad)"
NATIVE = "backward in the inputs' dtype vs float64"
CPU64 = {"device": "cpu", "dtype": torch.float64}


def check_needs_input_grad(
    target: Target,
    inputs: Sequence[Any],
    grad_outputs: Sequence[Any],
    right: dict[int, tuple[torch.Tensor, torch.Tensor]],
    atol: float,
    rtol: float,
    by_context: bool = True,
) -> tuple[ExtraCheck, dict[int, Diagnosis]]:
    """Rerun the backward with only input i requiring grad, for each i in ``right``.

    ``right`` maps each input found right with every input requiring grad to (its
    numeric gradient, the mask of its undefined elements). ``by_context`` says which
    route the gradients were judged by (see :func:`vjp`). Returns the check and a
    diagnosis for each input whose gradient then goes wrong.
    """
    if len(right) < 2:
        return ExtraCheck(NEEDS, "not applicable", "fewer than two inputs to compare"), {}
    where = "ctx.needs_input_grad" if target.is_function else "a Function's ctx.needs_input_grad"
    found = {}
    for i, (numeric, undefined) in right.items():
        label = target.input_label(i)
        alone = f"right when every input requires grad, but with only {label} requiring grad"
        attempt = vjp(target, inputs, grad_outputs, [i], by_context)
        if not attempt.ok:
            found[i] = Diagnosis("mismatch", f"{alone}, backward raised {attempt.error}")
            continue
        g = gradient(attempt, i)
        if g is None and torch.allclose(numeric, torch.zeros_like(numeric), atol=atol):
            continue  # none is due
        if g is None or not isinstance(g, torch.Tensor):
            found[i] = Diagnosis(
                "missing", f"{alone}, backward returns None for it: check the index in {where}"
            )
            continue
        g = g.detach().to(**CPU64)
        if g.shape != numeric.shape or not torch.allclose(
            g.masked_fill(undefined, 0.0), numeric, rtol=rtol, atol=atol
        ):
            found[i] = Diagnosis(
                "mismatch", f"{alone}, backward returns another gradient: check {where}"
            )
    if found:
        names = ", ".join(target.input_label(i) for i in found)
        return ExtraCheck(NEEDS, "failed", f"wrong when alone: {names}"), found
    return ExtraCheck(NEEDS, "passed"), {}


def check_native_dtype(
    target: Target,
    inputs: Sequence[Any],
    grad_outputs: Sequence[Any],
    reference: dict[int, torch.Tensor],
    by_context: bool = True,
) -> tuple[ExtraCheck, list[int]]:
    """Rerun backward in the inputs' own dtype and device; compare with ``reference``.

    Only inputs in ``reference`` (those found ok in float64; CPU tensors) are compared,
    on their finite elements. The tolerance is 10·√ε of the dtype (3.5e-3 for float32),
    relative to the gradient's largest entry: rounding in a correct backward stays far
    below it, a dtype-dependent bug does not. Returns the check and the inputs that
    disagree.
    """
    if not reference:
        return ExtraCheck(NATIVE, "skipped", "no gradient is right in float64"), []
    dtypes = {inputs[i].dtype for i in reference}
    if dtypes == {torch.float64}:
        return ExtraCheck(NATIVE, "not applicable", "the inputs are float64"), []
    copies = [x.detach().clone() if isinstance(x, torch.Tensor) else x for x in inputs]
    indices = list(reference)
    with torch.no_grad():
        raw = target.call(*copies)
    values = raw if isinstance(raw, (tuple, list)) else (raw,)
    v = [
        V.to(value.device, value.dtype) if isinstance(value, torch.Tensor) else V
        for value, V in zip(values, grad_outputs, strict=True)
    ]
    attempt = vjp(target, copies, v, indices, by_context)
    names = "/".join(sorted(str(d).removeprefix("torch.") for d in dtypes))
    if not attempt.ok:
        return ExtraCheck(NATIVE, "failed", f"in {names}, backward raised {attempt.error}"), indices
    differ = []
    for i in indices:
        tol = 10 * torch.finfo(inputs[i].dtype).eps ** 0.5
        expected = reference[i]
        finite = torch.isfinite(expected)
        scale = max(1.0, float(expected[finite].abs().max())) if bool(finite.any()) else 1.0
        got = gradient(attempt, i)
        agrees = (
            isinstance(got, torch.Tensor)
            and got.shape == expected.shape
            and torch.allclose(
                got.detach().to(**CPU64)[finite], expected[finite], rtol=tol, atol=tol * scale
            )
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
