"""Run the benchmark figures; print a table, write JSON and a PNG chart of the ratios.

Usage: ``python -m benchmarks.run [--quick] [--out benchmarks/results/latest.json]``
(``make bench``; ``make bench BENCH_ARGS=--quick`` for a fast smoke run). To add a
figure, write a module with ``run(quick: bool) -> list[Result]`` and list it in
``FIGURES`` below.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

from benchmarks import (
    fig1_op_overhead,
    fig2_lab_training,
    fig3_full_batch,
    fig4_time_to_solution,
    fig5_minibatch,
    fig6_memory,
    fig7_convergence,
)
from benchmarks.timing import Result, machine

FIGURES = [
    fig1_op_overhead,
    fig2_lab_training,
    fig3_full_batch,
    fig4_time_to_solution,
    fig5_minibatch,
    fig6_memory,
    fig7_convergence,
]

DEFAULT_OUT = os.path.join("benchmarks", "results", "latest.json")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description="handgrad against native PyTorch."
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and few repeats: a smoke run"
    )
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help=f"JSON results file (default: {DEFAULT_OUT})"
    )
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    return parser


def _amount(value: float, unit: str) -> str:
    if math.isnan(value):
        return "n/a"
    if unit == "bytes":
        return f"{value / 2**20:.1f} MiB"
    if unit == "gap":  # figure 7: a relative gap to the optimum, not a time
        return f"{value:.2e}"
    for scale, name in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if value >= scale:
            return f"{value / scale:.3g} {name}"
    return f"{value * 1e9:.3g} ns"


def table(results: list[Result]) -> str:
    """The results as a fixed-width text table, one row per figure case."""
    header = ("figure", "case", "handgrad", "peer", "ratio", "goal", "met?")
    rows = [header]
    for r in results:
        rows.append(
            (
                r.figure,
                r.case,
                _amount(r.handgrad, r.unit),
                _amount(r.peer, r.unit),
                f"{r.ratio:.3f}",
                "-" if r.goal is None else f"≤ {r.goal:g}",
                {True: "yes", False: "NO", None: "-"}[r.met],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(path: str, payload: dict) -> None:
    """Write ``payload`` to ``path`` atomically: a temporary file, then a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, suffix=".json.tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, allow_nan=True)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def draw_chart(path: str, results: list[Result], machine_line: str) -> None:
    """Bars of handgrad / peer per case, with each goal marked; saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.figure}: {r.case}" for r in results]
    ratios = [r.ratio for r in results]
    colours = [{True: "tab:green", False: "tab:red", None: "tab:gray"}[r.met] for r in results]
    fig, ax = plt.subplots(figsize=(11, 0.55 * len(results) + 1.6))
    y = range(len(results))
    ax.barh(y, ratios, color=colours)
    for i, r in enumerate(results):
        if r.goal is not None:
            ax.plot([r.goal, r.goal], [i - 0.4, i + 0.4], color="black", linewidth=2)
    ax.set_xscale("log")  # ratios of 0.3 and of 10 both stay readable
    ax.set_yticks(list(y), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("handgrad / peer (smaller is better); black tick: goal")
    ax.set_title(machine_line, fontsize=8)
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=folder, suffix=".png.tmp")
    os.close(fd)
    fig.savefig(temporary, format="png", dpi=110)
    plt.close(fig)
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    info = machine()
    machine_line = (
        f"{info['cpu']}, {info['cores']} cores, {info['torch_threads']} torch threads, "
        f"torch {info['torch']}, load {info['load_average_1min'] or 0:.2f}, {info['date']}"
        + (" (quick)" if args.quick else "")
    )
    print(machine_line, flush=True)
    warnings = []
    load, cores = info["load_average_1min"], info["cores"] or 1
    if load is not None and load > cores:
        warnings.append(
            f"the machine was loaded (1-min load {load:.2f} on {cores} cores): other processes "
            "took CPU time, so timings are noisy and ratios may differ between runs"
        )
    results: list[Result] = []
    started = time.perf_counter()
    for module in FIGURES:
        name = module.__name__.rsplit(".", 1)[-1]
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results.extend(module.run(args.quick))
    print(table(results))
    for warning in warnings:
        print(f"WARNING: {warning}")
    for r in results:
        for note in r.notes:
            print(f"  [{r.figure}] {note}")
    payload = {
        "machine": info,
        "quick": args.quick,
        "seconds": time.perf_counter() - started,
        "warnings": warnings,
        "results": [r.to_dict() for r in results],
    }
    write_json(args.out, payload)
    print(f"wrote {args.out}")
    if not args.no_chart:
        chart = os.path.splitext(args.out)[0] + ".png"
        draw_chart(chart, results, machine_line)
        print(f"wrote {chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
