"""Analytic gradients: what the code under test says ∂L/∂x is, by two routes.

- Through autograd: ``Function.apply`` (or the callable), then ``torch.autograd.grad``.
  This is what training uses, but autograd reshapes and rejects what backward returns:
  it sums a gradient that broadcasts to the input's shape and raises on a wrong count.
- Directly, for Functions: ``handgrad.forward`` then ``ctx.backward``, which returns the
  raw tuple, so that the checker can see a wrong shape or count before autograd does.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from handgrad.checking.target import Target, clones
from handgrad.context import forward as context_forward


@dataclass(frozen=True)
class Attempt:
    """The result of running code under test: a value, or the error it raised."""

    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def describe_error(error: BaseException) -> str:
    """``"TypeError: first line of the message (at myfuncs.py:12)"``: enough to act on,
    in one line. The place is the innermost line of the user's own code in the
    traceback (not torch's, not handgrad's), where there is one."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    place = _user_frame(error)
    return f"{text} (at {place})" if place else text


_LIBRARIES = (os.path.dirname(torch.__file__), os.path.dirname(os.path.dirname(__file__)))


def _user_frame(error: BaseException) -> str | None:
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = os.path.abspath(frame.filename)
        if not path.startswith(_LIBRARIES) and not frame.filename.startswith("<"):
            return f"{os.path.basename(frame.filename)}:{frame.lineno}"
    return None


def direct_backward(
    target: Target,
    inputs: Sequence[Any],
    grad_outputs: Sequence[Any],
    indices: Sequence[int],
) -> Attempt:
    """Call a Function's backward by hand, through :class:`handgrad.Context`.

    ``ctx.needs_input_grad`` is True for the inputs in ``indices`` only. Inputs and
    grad_outputs are cloned, so that code that works in place changes nothing here.
    Returns an Attempt whose value is the raw tuple backward returned, unreduced.
    """
    needs = [i in indices for i in range(len(inputs))]
    try:
        _, ctx = context_forward(target.function, *clones(inputs), needs_input_grad=needs)
        return Attempt(tuple(ctx.backward(*clones(grad_outputs))))
    except Exception as error:  # the code under test may raise anything
        return Attempt(error=describe_error(error))


def autograd_vjp(
    target: Target,
    inputs: Sequence[Any],
    grad_outputs: Sequence[Any],
    indices: Sequence[int],
    create_graph: bool = False,
) -> Attempt:
    """Run the target through autograd and return ∂L/∂x for each index (None if unused).

    Returns an Attempt whose value is a dict from input position to gradient. The
    inputs are cloned, so the caller's tensors are never marked as requiring grad.
    """
    leaves = [
        x.detach().clone().requires_grad_(i in indices) if isinstance(x, torch.Tensor) else x
        for i, x in enumerate(inputs)
    ]
    try:
        with torch.enable_grad():
            raw = target.call(*leaves)
            values = raw if isinstance(raw, (tuple, list)) else (raw,)
            pairs = [
                (value, V.to(value.dtype))
                for value, V in zip(values, grad_outputs, strict=True)
                if isinstance(value, torch.Tensor) and value.requires_grad and V is not None
            ]
            if not pairs:  # nothing connects the inputs to the outputs
                return Attempt(dict.fromkeys(indices))
            grads = torch.autograd.grad(
                [value for value, _ in pairs],
                [leaves[i] for i in indices],
                [V for _, V in pairs],
                allow_unused=True,
                create_graph=create_graph,
            )
        return Attempt(dict(zip(indices, grads, strict=True)))
    except Exception as error:  # the code under test may raise anything
        return Attempt(error=describe_error(error))


def vjp(
    target: Target,
    inputs: Sequence[Any],
    grad_outputs: Sequence[Any],
    indices: Sequence[int],
    by_context: bool = True,
) -> Attempt:
    """The route the checker judges by: directly for a Function (unless ``by_context``
    is False: handgrad's Context cannot run it), through autograd otherwise."""
    if target.is_function and by_context:
        return direct_backward(target, inputs, grad_outputs, indices)
    return autograd_vjp(target, inputs, grad_outputs, indices)


def gradient(attempt: Attempt, i: int) -> Any:
    """Input i's gradient from either kind of Attempt (tuple or dict); None if absent."""
    value = attempt.value
    if isinstance(value, tuple):
        return value[i] if i < len(value) else None
    return value.get(i)
