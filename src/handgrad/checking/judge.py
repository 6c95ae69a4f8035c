"""Judge one input: turn the gradients computed once by ``check`` into its InputReport.

``check`` computes the numeric gradients and the analytic ones (for V and 3·V) for all
inputs at once; a :class:`Judge` then decides, input by input, which diagnosis applies,
in the order given in ``diagnose.py``, on the elements where the forward is defined, and
records the worst elements. With several outputs, a wrong gradient is traced to the
outputs through which it is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from handgrad.checking.analytic import Attempt, gradient
from handgrad.checking.diagnose import (
    UNDEFINED_MESSAGE,
    Diagnosis,
    arity_message,
    diagnose_shape,
    diagnose_values,
    unsummed_axes,
)
from handgrad.checking.outputs import Outputs
from handgrad.checking.report import InputReport
from handgrad.checking.target import Target, scalar_arguments

GRAD_OUTPUT_SCALE = 3.0  # a correct backward returns 3× the gradient for 3·V
N_WORST = 3  # elements listed for a wrong gradient
CPU64 = {"device": "cpu", "dtype": torch.float64}


@dataclass
class Evidence:
    """What ``check`` computed once, for all inputs."""

    target: Target
    inputs: tuple
    indices: tuple[int, ...]
    outputs: Outputs
    numeric: dict[int, torch.Tensor]  # i -> (number of outputs, *shape), on the CPU
    analytic: Attempt
    analytic_scaled: Attempt
    per_output: Callable[[int, float], Attempt]  # (j, scale) -> the VJP through output j
    atol: float
    rtol: float
    is_mse: bool = False


class Judge:
    """Builds the InputReport of one input from the :class:`Evidence`."""

    def __init__(self, evidence: Evidence) -> None:
        self.e = evidence
        self.arity_error = _arity_error(evidence)
        self._through: dict[tuple[int, float], Attempt] = {}

    def __call__(self, i: int) -> InputReport:
        x = self.e.inputs[i]
        reason = (
            "it does not require grad"
            if x.dtype.is_floating_point
            else f"a tensor of {str(x.dtype).removeprefix('torch.')} has no gradient"
        )
        entry = InputReport(
            index=i,
            label=self.e.target.input_label(i),
            shape=tuple(x.shape),
            dtype=str(x.dtype).removeprefix("torch."),
            checked=i in self.e.indices,
            diagnosis="ok",
            message=f"not checked: {reason}",
        )
        if entry.checked:
            self._fill(entry)
        return entry

    def _fill(self, entry: InputReport) -> None:
        e, i = self.e, entry.index
        if self.arity_error:
            return _set(entry, Diagnosis("wrong-arity", self.arity_error))
        if not e.analytic.ok:
            return _set(entry, Diagnosis("mismatch", f"backward raised {e.analytic.error}"))
        numeric = e.numeric[i].sum(0)
        g = gradient(e.analytic, i)
        undefined = self.undefined_mask(i, g)
        entry.undefined = int(undefined.sum())
        if bool(undefined.all()):
            return _set(entry, Diagnosis("undefined", UNDEFINED_MESSAGE))
        numeric = numeric.masked_fill(undefined, 0.0)
        if g is None:
            if torch.allclose(numeric, torch.zeros_like(numeric), atol=e.atol):
                return _set(entry, Diagnosis("ok", "no gradient, and none is due"))
            needs = f"; compute it when ctx.needs_input_grad[{i}]" if e.target.is_function else ""
            return _set(
                entry,
                Diagnosis(
                    "missing",
                    "backward returned None for an input that requires grad, but the "
                    f"numeric gradient is not zero (max |numeric| = "
                    f"{numeric.abs().max():.3g}){needs}",
                ),
            )
        if not isinstance(g, torch.Tensor):
            return _set(entry, Diagnosis("mismatch", f"backward returned a {type(g).__name__}"))
        g = g.detach().to(**CPU64)
        if g.shape != numeric.shape:
            return self._wrong_shape(entry, g, numeric)
        if not e.analytic_scaled.ok:
            message = f"backward raised {e.analytic_scaled.error} for a larger grad_output"
            return _set(entry, Diagnosis("mismatch", message))
        diagnosis = self._diagnose(i, e.analytic, e.analytic_scaled, numeric, undefined)
        if diagnosis.code != "ok" and sum(e.outputs.differentiable) > 1:
            diagnosis = self._through_outputs(i, diagnosis, undefined)
        _set_errors(entry, g.masked_fill(undefined, 0.0), numeric, diagnosis.code != "ok")
        _set(entry, diagnosis)

    def undefined_mask(self, i: int, g: Any) -> torch.Tensor:
        """Input i's elements with no diagnosis: a non-finite numeric gradient there, or
        (where some output is undefined) an element that maps onto an undefined output
        element by broadcasting, or a non-finite analytic gradient."""
        numeric = self.e.numeric[i].sum(0)
        mask = ~torch.isfinite(numeric)
        if not self.e.outputs.partly_undefined:
            return mask
        for defined in self.e.outputs.defined:
            if defined is not None and not bool(defined.all()):
                mask |= _onto(~defined.cpu(), numeric.shape)
        if isinstance(g, torch.Tensor) and g.shape == numeric.shape:
            mask |= ~torch.isfinite(g.detach().to(**CPU64))
        return mask

    def _diagnose(self, i, analytic, scaled, numeric, undefined) -> Diagnosis:
        e = self.e
        g = _clean(gradient(analytic, i), numeric, undefined)
        s = _clean(gradient(scaled, i), numeric, undefined)
        sizes = [
            (size, f"the size of axis {axis} of {e.target.input_label(j)}")
            for j, x in enumerate(e.inputs)
            if isinstance(x, torch.Tensor)
            for axis, size in enumerate(x.shape)
            if size > 2  # a factor 2 nearly always comes from a square, not from a size
        ]
        scalars = scalar_arguments(e.target, e.inputs)
        return diagnose_values(
            g, s, GRAD_OUTPUT_SCALE, numeric, e.atol, e.rtol, sizes, scalars, e.is_mse
        )

    def _through_outputs(self, i: int, total: Diagnosis, undefined: torch.Tensor) -> Diagnosis:
        """Diagnose each output's share of the gradient; name the outputs it is wrong for."""
        e, wrong = self.e, {}
        for j, differentiable in enumerate(e.outputs.differentiable):
            if not differentiable:
                continue
            attempts = [self._attempt(j, scale) for scale in (1.0, GRAD_OUTPUT_SCALE)]
            if not all(a.ok for a in attempts) or gradient(attempts[0], i) is None:
                return total
            numeric = e.numeric[i][j].masked_fill(undefined, 0.0)
            diagnosis = self._diagnose(i, *attempts, numeric, undefined)
            if diagnosis.code != "ok":
                wrong[j] = diagnosis
        if not wrong:
            return total
        codes = {d.code for d in wrong.values()}
        names = " and ".join(e.outputs.label(j) for j in wrong)
        right = (
            "; through the other outputs it is right"
            if len(wrong) < sum(e.outputs.differentiable)
            else ""
        )
        if len(codes) == 1:
            first = next(iter(wrong.values()))
            factor = first.factor if all(d.factor == first.factor for d in wrong.values()) else None
            return Diagnosis(first.code, f"through {names}: {first.message}{right}", factor)
        listed = ", ".join(f"{e.outputs.label(j)}: {d.code}" for j, d in wrong.items())
        return Diagnosis(total.code, f"{total.message} (wrong through {listed}){right}")

    def _attempt(self, j: int, scale: float) -> Attempt:
        if (j, scale) not in self._through:
            self._through[(j, scale)] = self.e.per_output(j, scale)
        return self._through[(j, scale)]

    def _wrong_shape(self, entry: InputReport, g: torch.Tensor, numeric: torch.Tensor) -> None:
        e, i = self.e, entry.index
        entry.returned_shape = tuple(g.shape)
        first = next(x for x in e.inputs if isinstance(x, torch.Tensor))
        batch = first.shape[0] if first.ndim else None
        others = [
            (e.target.input_label(j), tuple(x.shape))
            for j, x in enumerate(e.inputs)
            if j != i and isinstance(x, torch.Tensor)
        ]
        diagnosis = diagnose_shape(g.shape, numeric.shape, batch, others)
        if unsummed_axes(g.shape, numeric.shape):
            g = g.sum_to_size(numeric.shape)
            agrees = torch.allclose(g, numeric, rtol=e.rtol, atol=e.atol)
            extra = (
                " (summed so, it matches the numeric gradient)"
                if agrees
                else "; even summed, it disagrees with the numeric gradient"
            )
            diagnosis = Diagnosis(diagnosis.code, diagnosis.message + extra)
            _set_errors(entry, g, numeric, with_worst=not agrees)
        _set(entry, diagnosis)


def _arity_error(e: Evidence) -> str | None:
    if not (e.analytic.ok and isinstance(e.analytic.value, tuple)):
        return None
    returned, n = e.analytic.value, len(e.inputs)
    if len(returned) < n or any(g is not None for g in returned[n:]):
        # autograd also accepts trailing Nones, so only those are not an error
        return arity_message(len(returned), n, e.target.input_names)
    for j, x in enumerate(e.inputs):
        if not isinstance(x, torch.Tensor) and returned[j] is not None:
            return (
                f"backward returned a gradient for {e.target.input_label(j)}, which is a "
                f"{type(x).__name__}, not a tensor; return None in its place"
            )
    return None


def _onto(undefined_output: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Input elements that broadcast onto an undefined output element; none if the
    input's shape does not broadcast to the output's."""
    if undefined_output.ndim == 0:
        return undefined_output.expand(shape)
    try:
        return undefined_output.to(torch.int64).sum_to_size(shape) > 0
    except RuntimeError:  # not broadcastable: no element-to-element map
        return torch.zeros(shape, dtype=torch.bool)


def _clean(g: Any, like: torch.Tensor, undefined: torch.Tensor) -> torch.Tensor:
    if g is None:
        return torch.zeros_like(like)
    return g.detach().to(**CPU64).masked_fill(undefined, 0.0)


def _set(entry: InputReport, diagnosis: Diagnosis) -> None:
    entry.diagnosis, entry.message, entry.factor = (
        diagnosis.code,
        diagnosis.message,
        diagnosis.factor,
    )


def _set_errors(
    entry: InputReport, analytic: torch.Tensor, numeric: torch.Tensor, with_worst: bool = True
) -> None:
    error = (analytic - numeric).abs()
    entry.max_abs_error = float(error.max()) if error.numel() else 0.0
    if not error.numel():
        return
    order = torch.argsort(error.reshape(-1), descending=True)[:N_WORST]
    worst = []
    for flat in order.tolist():
        index = tuple(int(k) for k in torch.unravel_index(torch.tensor(flat), error.shape))
        worst.append((index, float(analytic[index]), float(numeric[index])))
    entry.worst_index, entry.analytic_at_worst, entry.numeric_at_worst = worst[0]
    entry.worst = worst if with_worst else []
