"""Name the mistake: turn an analytic and a numeric gradient into one diagnosis code.

The codes, in the order they are tried (the first that explains the evidence wins):

- ``wrong-arity``: backward returned a different number of gradients than forward has
  inputs (decided for all inputs at once, see :func:`arity_message`);
- ``wrong-shape``: a gradient's shape is not its input's (:func:`diagnose_shape`);
- ``missing``: None or all zeros, where the numeric gradient is not zero;
- ``ignores-grad-output``: the gradient does not scale with ``grad_output``;
- ``ok``: analytic ≈ numeric;
- ``sign-flipped``: analytic ≈ −numeric;
- ``scaled``: analytic ≈ c · numeric for one constant c ≠ 1;
- ``transposed``: analytic ≈ numericᵀ (square 2-D inputs only);
- ``mismatch``: none of the above.

Not a diagnosis of the backward: ``undefined``, for an input at which the forward or
every numeric gradient is NaN or inf (the inputs are outside the forward's domain), or
changes with the finite-difference step (a pole or a kink).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from handgrad.checking.factors import Scalars, Sizes, scaled_message, tidy

CODES = (
    "ok",
    "wrong-arity",
    "wrong-shape",
    "missing",
    "scaled",
    "sign-flipped",
    "transposed",
    "ignores-grad-output",
    "mismatch",
    "undefined",
)
UNDEFINED_MESSAGE = (
    "the forward is undefined at these inputs (NaN or inf in the forward or the numeric "
    "gradient, or a numeric gradient that changes with the step: a pole or a kink): no "
    "diagnosis of the backward here; check it on inputs in the forward's domain (e.g. "
    "positive ones for log or sqrt)"
)


@dataclass(frozen=True)
class Diagnosis:
    """One input's verdict: a code from :data:`CODES`, a sentence, and c for ``scaled``."""

    code: str
    message: str
    factor: float | None = None


def format_shape(shape: Sequence[int]) -> str:
    """``(10, 3)``, ``(3,)`` and ``()``, as Python writes tuples."""
    return str(tuple(shape))


def arity_message(n_returned: int, n_inputs: int, names: Sequence[str] | None) -> str:
    listed = f" ({', '.join(names[:n_inputs])})" if names else ""
    return (
        f"backward returned {n_returned} gradient{'s' * (n_returned != 1)} but forward takes "
        f"{n_inputs} input{'s' * (n_inputs != 1)}{listed}; return exactly one per input, "
        "None for those that need no gradient"
    )


def diagnose_values(
    analytic: torch.Tensor,
    analytic_scaled: torch.Tensor,
    grad_output_scale: float,
    numeric: torch.Tensor,
    atol: float,
    rtol: float,
    sizes: Sizes = (),
    scalars: Scalars = (),
    is_mse: bool = False,
) -> Diagnosis:
    """Classify a well-shaped analytic gradient against the numeric one (all float64).

    Parameters
    ----------
    analytic : torch.Tensor
        Backward's gradient for ``grad_output`` V.
    analytic_scaled : torch.Tensor
        Backward's gradient for ``grad_output_scale`` · V: a correct backward is linear
        in its ``grad_output``, so this must be ``grad_output_scale`` · analytic.
    numeric : torch.Tensor
        The finite-difference gradient for V.
    atol, rtol : float
        Elementwise tolerance: |a − b| ≤ atol + rtol · |b|.
    sizes : sequence of (int, str)
        Dimension sizes with a description, to name a factor such as p or 1/q.
    scalars : sequence of (float, str)
        The forward's scalar arguments with their labels, to name a factor such as 1/k.
    is_mse : bool
        Whether the target is an MSE, which earns the hint about the square and the mean.
    """

    def close(a: torch.Tensor, b: torch.Tensor) -> bool:
        return torch.allclose(a, b, rtol=rtol, atol=atol)

    numeric_is_zero = close(numeric, torch.zeros_like(numeric))
    if bool((analytic == 0).all()) and not numeric_is_zero:
        return Diagnosis(
            "missing",
            "backward returned all zeros, but the numeric gradient is not "
            f"(max |numeric| = {numeric.abs().max():.3g}); compute this gradient",
        )
    s = grad_output_scale
    if not close(analytic_scaled, s * analytic):
        if close(analytic_scaled, analytic):
            how = f"multiplying grad_output by {s:g} left the gradient unchanged"
        else:
            how = f"multiplying grad_output by {s:g} did not multiply the gradient by {s:g}"
        return Diagnosis(
            "ignores-grad-output",
            f"{how}; by the chain rule backward must multiply the local derivative by grad_output",
        )
    if close(analytic, numeric):
        return Diagnosis("ok", "analytic and numeric gradients agree")
    if numeric_is_zero:
        return Diagnosis(
            "mismatch",
            "the numeric gradient is zero (the output does not depend on this input), "
            f"but backward returned values up to {analytic.abs().max():.3g}",
        )
    if close(analytic, -numeric):
        return Diagnosis(
            "sign-flipped", "analytic ≈ −1 × numeric: negate this gradient", factor=-1.0
        )
    factor = float((analytic * numeric).sum() / (numeric * numeric).sum())  # least squares
    if factor != 0 and close(analytic, factor * numeric):
        return Diagnosis(
            "scaled", scaled_message(factor, sizes, scalars, is_mse), factor=tidy(factor)
        )
    square = analytic.ndim == 2 and analytic.shape[0] == analytic.shape[1]
    if square and close(analytic, numeric.T):
        return Diagnosis(
            "transposed",
            "analytic equals the transpose of the numeric gradient: return its transpose "
            "(e.g. X.T @ G rather than G.T @ X)",
        )
    wrong = int((~torch.isclose(analytic, numeric, rtol=rtol, atol=atol)).sum())
    return Diagnosis(
        "mismatch",
        f"{wrong} of {numeric.numel()} elements disagree, and no constant factor, sign "
        "flip or transpose explains it",
    )


def unsummed_axes(returned: Sequence[int], expected: Sequence[int]) -> list[int] | None:
    """The axes of ``returned`` to sum to get ``expected`` by broadcasting; None if none do."""
    lead = len(returned) - len(expected)
    if lead < 0:
        return None
    axes = list(range(lead))
    for axis, (r, e) in enumerate(zip(returned[lead:], expected, strict=True), start=lead):
        if r != e:
            if e != 1:
                return None
            axes.append(axis)
    return axes


def diagnose_shape(
    returned: Sequence[int],
    expected: Sequence[int],
    batch_size: int | None,
    other_inputs: Sequence[tuple[str, Sequence[int]]],
) -> Diagnosis:
    """Explain a gradient of shape ``returned`` for an input of shape ``expected``.

    ``batch_size`` is the size of the first input's axis 0, if any; ``other_inputs``
    lists (label, shape) of the other inputs, to spot gradients returned out of order.
    """
    head = (
        f"backward returned {format_shape(returned)} for an input of shape {format_shape(expected)}"
    )
    axes = unsummed_axes(returned, expected)
    if axes:
        described = []
        for axis in axes:
            size = returned[axis]
            is_batch = axis == 0 and size == batch_size and len(returned) > len(expected)
            described.append(f"axis {axis} (size {size}{' = the batch' if is_batch else ''})")
        lead = len(returned) - len(expected)
        dims = axes[0] if len(axes) == 1 else tuple(axes)
        if axes == list(range(lead)):
            fix = f"G.sum(dim={dims})"
        elif lead == 0:
            fix = f"G.sum(dim={dims}, keepdim=True)"
        else:
            fix = f"G.sum_to_size{format_shape(expected)}"
        over = "the batch" if "the batch" in described[0] and len(axes) == 1 else "them"
        verb = "looks" if len(axes) == 1 else "look"
        return Diagnosis(
            "wrong-shape",
            f"{head}; {' and '.join(described)} {verb} unsummed — sum the gradient over "
            f"{over}: {fix}",
        )
    for label, shape in other_inputs:
        if tuple(shape) == tuple(returned):
            return Diagnosis(
                "wrong-shape",
                f"{head}; that is the shape of {label}: return the gradients in the order "
                "of forward's inputs",
            )
    if len(expected) == 2 and tuple(returned) == tuple(expected)[::-1]:
        return Diagnosis("wrong-shape", f"{head}; that is the transposed shape: transpose it")
    if _broadcasts(returned, expected):
        return Diagnosis(
            "wrong-shape",
            f"{head}; it broadcasts to the input's shape: expand it, "
            f"G.expand{format_shape(expected)}",
        )
    return Diagnosis("wrong-shape", f"{head}; return a gradient shaped like its input")


def _broadcasts(returned: Sequence[int], expected: Sequence[int]) -> bool:
    if len(returned) > len(expected):
        return False
    pairs = zip(reversed(tuple(returned)), reversed(tuple(expected)), strict=False)
    return all(r in (1, e) for r, e in pairs)
