"""Judge one input: turn the gradients computed once by ``check`` into its InputReport.

``check`` computes the numeric gradients and the analytic ones (for V and 3·V) for all
inputs at once; a :class:`Judge` then decides, input by input, which diagnosis applies,
in the order given in ``diagnose.py``, and records the worst elements.
"""

from __future__ import annotations

from typing import Any

import torch

from handgrad.checking.analytic import Attempt
from handgrad.checking.diagnose import (
    Diagnosis,
    arity_message,
    diagnose_shape,
    diagnose_values,
    unsummed_axes,
)
from handgrad.checking.report import InputReport

GRAD_OUTPUT_SCALE = 3.0  # a correct backward returns 3× the gradient for 3·V
N_WORST = 3  # elements listed for a wrong gradient


class Judge:
    """Builds the InputReport of one input from the gradients computed once in ``check``."""

    def __init__(self, target, inputs, indices, numeric, analytic, analytic_scaled, atol, rtol):
        self.target, self.inputs, self.indices = target, inputs, indices
        self.numeric, self.atol, self.rtol = numeric, atol, rtol
        self.analytic, self.analytic_scaled = analytic, analytic_scaled
        self.arity_error = None
        if analytic.ok and isinstance(analytic.value, tuple):
            returned = analytic.value
            extra = returned[len(inputs) :]
            if len(returned) < len(inputs) or any(g is not None for g in extra):
                # autograd also accepts trailing Nones, so only those are not an error
                self.arity_error = arity_message(len(returned), len(inputs), target.input_names)
            else:
                for j, x in enumerate(inputs):
                    if not isinstance(x, torch.Tensor) and returned[j] is not None:
                        self.arity_error = (
                            f"backward returned a gradient for {target.input_label(j)}, which "
                            f"is a {type(x).__name__}, not a tensor; return None in its place"
                        )
                        break

    def __call__(self, i: int) -> InputReport:
        x = self.inputs[i]
        entry = InputReport(
            index=i,
            label=self.target.input_label(i),
            shape=tuple(x.shape),
            dtype=str(x.dtype).removeprefix("torch."),
            checked=i in self.indices,
            diagnosis="ok",
            message="not checked: it does not require grad",
        )
        if entry.checked:
            self._fill(entry)
        return entry

    def _fill(self, entry: InputReport) -> None:
        i, numeric = entry.index, self.numeric[entry.index]
        if self.arity_error:
            return _set(entry, Diagnosis("wrong-arity", self.arity_error))
        if not self.analytic.ok:
            return _set(entry, Diagnosis("mismatch", f"backward raised {self.analytic.error}"))
        g = gradient(self.analytic, i)
        if g is None:
            if torch.allclose(numeric, torch.zeros_like(numeric), atol=self.atol):
                return _set(entry, Diagnosis("ok", "no gradient, and none is due"))
            needs = (
                f"; compute it when ctx.needs_input_grad[{i}]" if self.target.is_function else ""
            )
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
        g = g.detach().to(torch.float64)
        if g.shape != numeric.shape:
            entry.returned_shape = tuple(g.shape)
            diagnosis = diagnose_shape(g.shape, numeric.shape, self._batch_size(), self._others(i))
            if unsummed_axes(g.shape, numeric.shape):
                g = g.sum_to_size(numeric.shape)
                agrees = torch.allclose(g, numeric, rtol=self.rtol, atol=self.atol)
                extra = (
                    " (summed so, it matches the numeric gradient)"
                    if agrees
                    else "; even summed, it disagrees with the numeric gradient"
                )
                diagnosis = Diagnosis(diagnosis.code, diagnosis.message + extra)
                _set_errors(entry, g, numeric, with_worst=not agrees)
            return _set(entry, diagnosis)
        if not self.analytic_scaled.ok:
            message = f"backward raised {self.analytic_scaled.error} for a larger grad_output"
            return _set(entry, Diagnosis("mismatch", message))
        scaled = gradient(self.analytic_scaled, i)
        scaled = g * 0 if scaled is None else scaled.detach().to(torch.float64)
        diagnosis = diagnose_values(
            g, scaled, GRAD_OUTPUT_SCALE, numeric, self.atol, self.rtol, self._sizes()
        )
        _set_errors(entry, g, numeric, with_worst=diagnosis.code != "ok")
        _set(entry, diagnosis)

    def _batch_size(self) -> int | None:
        first = next(x for x in self.inputs if isinstance(x, torch.Tensor))
        return first.shape[0] if first.ndim else None

    def _others(self, i: int) -> list[tuple[str, tuple[int, ...]]]:
        return [
            (self.target.input_label(j), tuple(x.shape))
            for j, x in enumerate(self.inputs)
            if j != i and isinstance(x, torch.Tensor)
        ]

    def _sizes(self) -> list[tuple[int, str]]:
        # 2 is left out: a factor 2 nearly always comes from a square, not from a size.
        return [
            (size, f"the size of axis {axis} of {self.target.input_label(j)}")
            for j, x in enumerate(self.inputs)
            if isinstance(x, torch.Tensor)
            for axis, size in enumerate(x.shape)
            if size > 2
        ]


def gradient(attempt: Attempt, i: int) -> Any:
    value = attempt.value
    if isinstance(value, tuple):
        return value[i] if i < len(value) else None
    return value.get(i)


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
