"""The project's own Functions, as ``handgrad check`` with no target checks them.

To check one more Function, add one line to ``FUNCTIONS``: its name, the class, and
the shapes of its inputs in terms of q examples, n features and p outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from handgrad.checking.entry import check
from handgrad.checking.report import GradientReport
from handgrad.functions import MSE, Linear, LinearMSE

Shapes = Callable[[int, int, int], tuple[tuple[int, ...], ...]]

FUNCTIONS: tuple[tuple[str, type, Shapes], ...] = (
    ("Linear", Linear, lambda q, n, p: ((q, n), (n, p), (p,))),  # X, W, b
    ("MSE", MSE, lambda q, n, p: ((q, p), (q, p))),  # Y_hat, Y
    ("LinearMSE", LinearMSE, lambda q, n, p: ((q, n), (n, p), (p,), (q, p))),  # X, W, b, Y
)

# (q, n, p): all singletons, a square case (where a transpose would hide), distinct sizes.
SIZES: tuple[tuple[int, int, int], ...] = ((1, 1, 1), (3, 3, 3), (4, 3, 2), (10, 5, 3))
DTYPES = (torch.float32, torch.float64)


class Row(NamedTuple):
    """One line of the table: which Function, at which sizes and dtype, and its report."""

    name: str
    sizes: tuple[int, int, int]
    dtype: torch.dtype
    report: GradientReport


def check_builtin(
    seed: int = 0, device: str | torch.device = "cpu", compute_on: str | torch.device = "auto"
) -> list[Row]:
    """Check every Function of ``FUNCTIONS`` at every size of ``SIZES``, in every dtype,
    on inputs that live on ``device``; the float64 gradients are computed where
    ``compute_on`` says (``check``'s ``device``)."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for name, function, shapes in FUNCTIONS:
        for sizes in SIZES:
            for dtype in DTYPES:
                inputs = [
                    torch.randn(shape, generator=generator, dtype=torch.float64).to(device, dtype)
                    for shape in shapes(*sizes)
                ]
                report = check(function, *inputs, seed=seed, device=compute_on)
                rows.append(Row(name, sizes, dtype, report))
    return rows


_SHORT = {
    "passed": "ok",
    "failed": "FAILED",
    "not applicable": "n/a",
    "skipped": "skipped",
    "unsupported": "unsupported",
}


def format_table(rows: list[Row]) -> str:
    """A plain-text table, one row per check, then the details of any failure."""
    header = ("Function", "(q, n, p)", "dtype", "gradients", "chaining", "double", "jvp", "verdict")
    body = []
    for row in rows:
        report = row.report
        wrong = [f"{e.label}: {e.diagnosis}" for e in report.inputs if not e.ok]
        body.append(
            (
                row.name,
                str(row.sizes),
                str(row.dtype).removeprefix("torch."),
                "; ".join(wrong) or "all ok",
                _SHORT[report.chaining.status],
                _SHORT[report.double_backward.status],
                _SHORT[report.forward_mode.status],
                report.verdict,
            )
        )
    widths = [max(len(line[k]) for line in (header, *body)) for k in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in (header, *body)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failures = [row for row in rows if not row.report.ok]
    for row in failures:
        lines += ["", f"{row.name} at (q, n, p) = {row.sizes}, {row.dtype}:", str(row.report)]
    passed = len(rows) - len(failures)
    where = " and ".join(dict.fromkeys(row.report.device for row in rows)) or "cpu"
    lines += ["", f"{passed} of {len(rows)} checks OK (numeric gradients in float64, on {where})."]
    return "\n".join(lines)
