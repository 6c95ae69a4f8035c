"""Name a constant factor c in analytic ≈ c · numeric, and say where to look for it.

A factor is named after what it most likely is, in this order: a scalar argument of the
forward (``Power(x, 3)`` with the 3 left out gives 1/3: "with 3 = input 1 (k)"), then
the size of an axis (a mean over q), then a plain fraction. The advice fits the
Function: the hint about the square and the mean is given only for an MSE.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

Scalars = Sequence[tuple[float, str]]  # (value, "input 1 (k)")
Sizes = Sequence[tuple[int, str]]  # (size, "the size of axis 0 of input 0 (X)")

_MSE_HINT = (
    "forward and backward use the same constants (2 from the square, 1/q or 1/(q·p) from the mean)"
)


def _near(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def _fraction(factor: float) -> Fraction | None:
    fraction = Fraction(factor).limit_denominator(1000)
    if not _near(float(fraction), factor) or abs(fraction.numerator) > 1000:
        return None
    return fraction


def _scalar_match(factor: float, scalars: Scalars) -> tuple[str, float, str] | None:
    """("is", v, label) when c = v, ("inverse", v, label) when c = 1/v."""
    for value, label in scalars:
        if value in (0.0, 1.0, -1.0):
            continue
        if _near(factor, value):
            return "is", value, label
        if _near(factor * value, 1.0):
            return "inverse", value, label
    return None


def describe_factor(factor: float, sizes: Sizes = (), scalars: Scalars = ()) -> str:
    """``"2"``, ``"1/3 (with 3 = input 1 (k))"``, ``"5 (with 5 = the size of …)"`` or
    ``"0.7311"``."""
    fraction = _fraction(factor)
    text = str(fraction) if fraction is not None else f"{factor:.4g}"
    match = _scalar_match(factor, scalars)
    if match is not None:
        how, value, label = match
        if how == "inverse" and abs(value) < 1:  # 2 = 1/0.5 reads better than 2 (0.5)
            return f"{text} (= 1/{value:g}, with {value:g} = {label})"
        return f"{text} (with {value:g} = {label})"
    if fraction is None:
        return text
    for size, description in sizes:
        if size > 1 and size in (abs(fraction.numerator), fraction.denominator):
            return f"{text} (with {size} = {description})"
    return text


def scaled_message(
    factor: float, sizes: Sizes = (), scalars: Scalars = (), is_mse: bool = False
) -> str:
    """The message of a ``scaled`` diagnosis: the factor, the fix, and where to look."""
    head = (
        f"analytic ≈ {describe_factor(factor, sizes, scalars)} × numeric for every element: "
        f"multiply this gradient by {describe_factor(1 / factor)}"
    )
    match = _scalar_match(factor, scalars)
    fraction = _fraction(factor)
    if match is not None:
        how, _, label = match
        if how == "inverse":
            return f"{head}; backward seems to leave out {label} as a factor"
        return f"{head}; backward seems to multiply by {label} once too often"
    if is_mse:
        return f"{head}, or make {_MSE_HINT}"
    if fraction is not None and any(
        size > 1 and size in (abs(fraction.numerator), fraction.denominator) for size, _ in sizes
    ):
        return f"{head}; look for a sum or a mean over that axis, in forward or backward"
    if fraction is not None and fraction in (2, Fraction(1, 2)):
        return (
            f"{head}; a factor 2 often comes from a square or a square root "
            "(d(x²)/dx = 2x, d√x/dx = 1/(2√x))"
        )
    return f"{head}; look for a constant that forward and backward do not share"


def tidy(factor: float) -> float:
    """Round away finite-difference noise: 0.4999999998 → 0.5, keep 0.731 as is."""
    fraction = _fraction(factor)
    return float(fraction) if fraction is not None else factor
