"""The gradient checker's report: per-input verdicts, extra checks, a summary and JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

Element = tuple[tuple[int, ...], float, float]  # (index, analytic, numeric)


@dataclass
class InputReport:
    """The verdict on one tensor input's gradient.

    Attributes
    ----------
    index : int
        The input's position among the target's arguments.
    label : str
        How messages name it: ``"input 2 (b)"``.
    shape : tuple of int
    dtype : str
        The dtype the input was given in (the check itself runs in float64).
    checked : bool
        False for an input that does not require grad: its diagnosis is then ``ok``.
    diagnosis : str
        One of :data:`handgrad.checking.diagnose.CODES`.
    message : str
        What is wrong and how to fix it, in one sentence.
    factor : float or None
        c in analytic ≈ c · numeric, for ``scaled`` (and −1 for ``sign-flipped``).
    returned_shape : tuple of int or None
        The shape backward returned, when it is wrong.
    max_abs_error : float or None
        max |analytic − numeric| over the elements, when the shapes allow comparing.
    worst_index : tuple of int or None
        The element with the largest error; ``analytic_at_worst`` and
        ``numeric_at_worst`` are the two gradients there.
    worst : list of (index, analytic, numeric)
        The few worst elements, largest error first.
    undefined : int
        How many elements got no diagnosis because the forward is undefined there
        (NaN or inf in the forward or the numeric gradient).
    """

    index: int
    label: str
    shape: tuple[int, ...]
    dtype: str
    checked: bool
    diagnosis: str
    message: str
    factor: float | None = None
    returned_shape: tuple[int, ...] | None = None
    max_abs_error: float | None = None
    worst_index: tuple[int, ...] | None = None
    analytic_at_worst: float | None = None
    numeric_at_worst: float | None = None
    worst: list[Element] = field(default_factory=list)
    undefined: int = 0

    @property
    def ok(self) -> bool:
        return self.diagnosis == "ok"

    @property
    def wrong(self) -> bool:
        """Whether the gradient is shown wrong (``undefined`` is neither ok nor wrong)."""
        return self.diagnosis not in ("ok", "undefined")

    def __str__(self) -> str:
        if not self.checked:
            return f"{self.label}: ok ({self.message})"
        if self.ok and self.max_abs_error is None:
            return f"{self.label}: ok ({self.message})"
        if self.ok:
            text = f"{self.label}: ok (max |analytic − numeric| = {self.max_abs_error:.2g})"
            if self.undefined:
                total = math.prod(self.shape)
                text += (
                    f" on {total - self.undefined} of {total} elements; the forward is "
                    f"undefined at the other {self.undefined}: no diagnosis there"
                )
            return text
        lines = [f"{self.label}: {self.diagnosis}: {self.message}"]
        if self.worst:
            shown = "; ".join(
                f"[{', '.join(map(str, index))}] analytic {a:.6g}, numeric {n:.6g}"
                for index, a, n in self.worst
            )
            lines.append(f"    worst element{'s' * (len(self.worst) > 1)}: {shown}")
        if self.undefined and self.diagnosis != "undefined":
            total = math.prod(self.shape)
            lines.append(
                f"    the forward is undefined at {self.undefined} of {total} elements: "
                "no diagnosis there"
            )
        return "\n".join(lines)


STATUSES = ("passed", "failed", "not applicable", "skipped", "unsupported")


@dataclass
class ExtraCheck:
    """A check beyond first derivatives; it counts towards ``ok`` only if it ran.

    ``status`` is one of :data:`STATUSES`; ``detail`` says why it failed, or why it did
    not apply or was skipped: nothing passes silently. ``unsupported`` marks a limit of
    handgrad itself (its Context cannot run a Function that autograd runs), which says
    nothing against the Function.
    """

    name: str
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def __str__(self) -> str:
        return f"{self.name}: {self.status}" + (f" — {self.detail}" if self.detail else "")


VERDICTS = ("OK", "WRONG", "UNDEFINED")


@dataclass
class GradientReport:
    """What :func:`handgrad.check` found.

    Attributes
    ----------
    function : str
        The name of the Function or callable checked.
    kind : str
        ``"Function, setup_context style"``, ``"Function, forward(ctx, …) style"`` or
        ``"callable"``.
    inputs : list of InputReport
        One entry per tensor input, in argument order.
    chaining, needs_input_grad, double_backward, forward_mode, native_dtype : ExtraCheck
        Manual chaining through Context equals autograd; each gradient is right when
        its input alone requires grad; ``gradgradcheck``; forward mode through ``jvp``;
        the backward in the inputs' own dtype agrees with float64.
    precision : str
        How and where the gradients were computed (always float64), in one sentence.
    device : str
        The device the float64 gradients were computed on.
    n_outputs : int
        How many outputs the forward returns.
    eps, atol, rtol : float
        The finite-difference step and the elementwise tolerance.
    seed : int
        Seed of the random ``grad_output``.
    """

    function: str
    kind: str
    inputs: list[InputReport]
    chaining: ExtraCheck
    needs_input_grad: ExtraCheck
    double_backward: ExtraCheck
    forward_mode: ExtraCheck
    native_dtype: ExtraCheck
    precision: str
    device: str
    n_outputs: int
    eps: float
    atol: float
    rtol: float
    seed: int

    @property
    def extras(self) -> tuple[ExtraCheck, ...]:
        return (
            self.chaining,
            self.needs_input_grad,
            self.double_backward,
            self.forward_mode,
            self.native_dtype,
        )

    @property
    def gradients_ok(self) -> bool:
        """Whether every first derivative is shown right: the part ``gradcheck`` checks."""
        return all(entry.ok for entry in self.inputs)

    @property
    def verdict(self) -> str:
        """The verdict on the first derivatives, what backward returns: ``"WRONG"`` if a
        gradient is shown wrong (also when its input alone requires grad, or in the
        inputs' dtype); else ``"UNDEFINED"`` if the forward is undefined at every
        element of some input; else ``"OK"``. The other extra checks (chaining, double
        backward, forward mode) do not change it; they count in :attr:`ok`."""
        if any(entry.wrong for entry in self.inputs):
            return "WRONG"
        return "OK" if self.gradients_ok else "UNDEFINED"

    @property
    def ok(self) -> bool:
        """Whether the verdict is OK and no extra check failed."""
        return self.verdict == "OK" and all(extra.ok for extra in self.extras)

    def __str__(self) -> str:
        checked = [entry for entry in self.inputs if entry.checked]
        wrong = [entry for entry in checked if entry.wrong]
        undefined = [entry for entry in checked if entry.diagnosis == "undefined"]
        if wrong:
            summary = f"{len(wrong)} of {len(checked)} gradients wrong"
        elif undefined:
            summary = (
                "the forward is undefined at these inputs, so "
                f"{len(undefined)} of {len(checked)} gradients could not be checked"
            )
        else:
            summary = f"all {len(checked)} gradients ok"
            if any(entry.undefined for entry in checked):
                summary += " where the forward is defined"
        failed = [extra.name for extra in self.extras if not extra.ok]
        if failed:
            beyond = "" if wrong else " beyond the first derivatives"
            summary += f"; failed{beyond}: {', '.join(failed)}"
        outputs = f", {self.n_outputs} outputs" if self.n_outputs > 1 else ""
        lines = [f"{self.function} ({self.kind}{outputs}): {self.verdict} — {summary}"]
        lines += [f"  {line}" for entry in self.inputs for line in str(entry).splitlines()]
        lines += [f"  {extra}" for extra in self.extras]
        lines.append(f"  precision: {self.precision}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: lists for tuples, None for NaN and infinities."""
        out: dict[str, Any] = {
            "ok": self.ok,
            "verdict": self.verdict,
            "gradients_ok": self.gradients_ok,
        }
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "inputs":
                value = [{"ok": entry.ok, **_plain(vars(entry))} for entry in value]
            elif isinstance(value, ExtraCheck):
                value = {"ok": value.ok, **_plain(vars(value))}
            out[f.name] = _plain(value)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
