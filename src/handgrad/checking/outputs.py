"""The forward's outputs: which carry a gradient, where they are defined, and the random
``grad_output`` for each, as autograd would pass them to backward.

A target may return one tensor or a tuple of them. Each floating-point output that
autograd differentiates gets a random V_j; the checker compares vector-Jacobian
products for L = Σ_j Σ V_j ⊙ f_j(x). An output autograd does not differentiate (an
integer tensor, or one marked with ``ctx.mark_non_differentiable``) gets zeros, which is
what autograd passes to backward for it.

Output elements that are NaN or inf are outside the forward's domain: their V is zero,
so that they weigh nothing, and the report says the forward is undefined there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from handgrad.checking.target import Target, clones


@dataclass(frozen=True)
class Outputs:
    """What the forward returned at the checked point.

    Attributes
    ----------
    values : tuple
        The outputs, always as a tuple.
    single : bool
        Whether forward returned one tensor rather than a tuple.
    differentiable : tuple of bool
        Whether autograd differentiates each output.
    defined : tuple of torch.Tensor or None
        For each differentiable output, where its elements are finite; None for others.
    """

    values: tuple
    single: bool
    differentiable: tuple[bool, ...]
    defined: tuple[torch.Tensor | None, ...]

    @property
    def count(self) -> int:
        return len(self.values)

    @property
    def undefined(self) -> bool:
        """Whether no element of any differentiable output is finite."""
        return not any(bool(mask.any()) for mask in self.defined if mask is not None)

    @property
    def partly_undefined(self) -> bool:
        return any(not bool(mask.all()) for mask in self.defined if mask is not None)

    def label(self, j: int) -> str:
        return f"output {j} (of {self.count})"


def inspect_outputs(target: Target, inputs: Sequence[Any], indices: Sequence[int]) -> Outputs:
    """Run the forward once; raise TypeError if it returns no floating-point tensor."""
    with torch.no_grad():
        raw = target.call(*inputs)
    single = not isinstance(raw, (tuple, list))
    values = (raw,) if single else tuple(raw)
    floating = tuple(isinstance(v, torch.Tensor) and v.dtype.is_floating_point for v in values)
    if not any(floating):
        got = ", ".join(str(getattr(v, "dtype", type(v).__name__)) for v in values)
        raise TypeError(
            f"{target.name} must return a floating-point tensor, or a tuple with at least "
            f"one; got {got or 'an empty tuple'}."
        )
    differentiable = floating
    if target.is_function:  # outputs marked non-differentiable do not require grad
        tracked = _requires_grad(target, inputs, indices)
        if tracked is not None and len(tracked) == len(values):
            differentiable = tuple(f and t for f, t in zip(floating, tracked, strict=True))
    defined = tuple(
        torch.isfinite(v) if d else None for v, d in zip(values, differentiable, strict=True)
    )
    return Outputs(values, single, differentiable, defined)


def random_grad_outputs(outputs: Outputs, seed: int) -> tuple[torch.Tensor, ...]:
    """One V_j per output: random where differentiable and defined, zeros elsewhere."""
    generator = torch.Generator().manual_seed(seed)
    grads = []
    for value, mask in zip(outputs.values, outputs.defined, strict=True):
        if mask is None:
            grads.append(torch.zeros_like(value) if isinstance(value, torch.Tensor) else None)
            continue
        V = random_grad_output(value, generator).to(value.device)
        grads.append(torch.where(mask, V, torch.zeros_like(V)))
    return tuple(grads)


def random_grad_output(output: torch.Tensor, generator: torch.Generator | int) -> torch.Tensor:
    """A random ``grad_output`` shaped like ``output``, in float64 on the CPU.

    Each entry is ±u with u uniform in [0.5, 1.5]: never near zero, so that no output
    element is weighted out of the check, and random, so that a wrong Jacobian gives
    a wrong product with probability one.
    """
    if isinstance(generator, int):
        generator = torch.Generator().manual_seed(generator)
    magnitude = 0.5 + torch.rand(output.shape, generator=generator, dtype=torch.float64)
    sign = torch.randint(0, 2, output.shape, generator=generator).to(torch.float64) * 2 - 1
    return magnitude * sign


def weighted_sums(values: Any, grad_outputs: Sequence[Any], outputs: Outputs) -> list[float]:
    """L_j = Σ V_j ⊙ f_j over the elements defined at the checked point, for each output.

    A NaN or inf in a defined element (the step left the domain) makes L_j non-finite.
    """
    values = (values,) if outputs.single else tuple(values)
    sums = []
    for value, V, mask in zip(values, grad_outputs, outputs.defined, strict=True):
        if mask is None:
            sums.append(0.0)
        else:
            sums.append(float((value.to(torch.float64) * V)[mask].sum()))
    return sums


def _requires_grad(target: Target, inputs: Sequence[Any], indices: Sequence[int]) -> list | None:
    leaves = [
        x.requires_grad_(i in indices) if isinstance(x, torch.Tensor) else x
        for i, x in enumerate(clones(inputs))
    ]
    try:
        with torch.enable_grad():
            raw = target.call(*leaves)
    except Exception:  # the route through autograd is judged later, with its error
        return None
    values = raw if isinstance(raw, (tuple, list)) else (raw,)
    return [isinstance(v, torch.Tensor) and v.requires_grad for v in values]
