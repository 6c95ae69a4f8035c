"""Run the benchmark figures; print a table, write JSON and a PNG chart of the ratios.

Usage: ``python -m benchmarks.run [--quick] [--threads N] [--out FILE] [--only NAME]``
(``make bench``; ``make bench BENCH_ARGS=--quick`` for a fast smoke run). The README's
speed table is rendered from the JSON by ``python -m benchmarks.readme``.

The contract of a figure (``FIGURES`` below lists them):

- a module with ``run(quick: bool) -> list[Result]`` (``benchmarks.timing.Result``);
- each ``Result`` states both sides (``handgrad_side``, ``peer_side``: dtype and path)
  and what the timing ``includes``; timings come from ``interleaved_timings`` with
  ``repeats(quick)`` rounds (≥ 7 in a full run), so medians carry their min–max;
- each ``Result`` carries ``checks``: ``Check(what, value, tolerance, why)``, the
  measured disagreement of the two sides and the tolerance the maths allows. The run
  fails (exit 1, naming the figure and the check) when any check fails or a figure
  raises; a result with no check is marked "unchecked" in the table;
- a figure asserts the path it means to measure (raise if handgrad took another).

The harness pins the thread counts (``--threads``, default every core), records the
load average around each figure and marks a row measured under load (1-minute load
above the core count) in the table and the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import traceback

from benchmarks import (
    fig1_op_overhead,
    fig2_lab_training,
    fig3_full_batch,
    fig4_time_to_solution,
    fig5_minibatch,
    fig6_memory,
    fig7_convergence,
    fig8_startup,
    fig9_distributed,
)
from benchmarks.timing import Result, load_average, machine, pin_threads

FIGURES = [
    fig1_op_overhead,
    fig2_lab_training,
    fig3_full_batch,
    fig4_time_to_solution,
    fig5_minibatch,
    fig6_memory,
    fig7_convergence,
    fig8_startup,
    fig9_distributed,
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
    parser.add_argument(
        "--threads", type=int, default=None, help="torch and BLAS threads (default: every core)"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="NAME",
        help="run only the figure modules whose name contains NAME (repeatable)",
    )
    parser.add_argument(
        "--quick-for",
        action="append",
        default=[],
        metavar="NAME",
        help="in a full run, run the figures whose name contains NAME at their quick "
        "size (repeatable); their rows say so",
    )
    return parser


def amount(value: float, unit: str) -> str:
    """A median or bound for people: 1.53 s, 687 µs, 385.4 MiB."""
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


def spread(median: float, bounds, unit: str) -> str:
    """``median (min–max)``, or the median alone when there is no range."""
    if not bounds:
        return amount(median, unit)
    return f"{amount(median, unit)} ({amount(bounds[0], unit)}–{amount(bounds[1], unit)})"


def agreement(r: dict) -> str:
    """ "ok", "FAILED", or "unchecked" for a result dict."""
    if not r.get("checks"):
        return "unchecked"
    return "ok" if all(c["ok"] for c in r["checks"]) else "FAILED"


def load_cell(r: dict) -> str:
    load = r.get("load")
    if load is None:
        return "-"
    return f"{load:.1f}" + (" loaded" if r.get("loaded") else "")


def rows(results: list[dict]) -> list[tuple[str, ...]]:
    """The table's cells, from result dicts (as written to the JSON)."""
    out = []
    for r in results:
        out.append(
            (
                r["figure"],
                r["case"],
                spread(r["handgrad"], r.get("handgrad_range"), r["unit"]),
                spread(r["peer"], r.get("peer_range"), r["unit"]),
                f"{r['ratio']:.3g}",
                "-" if r["goal"] is None else f"≤ {r['goal']:g}",
                {True: "yes", False: "no", None: "-"}[r["met"]],
                agreement(r),
                load_cell(r),
            )
        )
    return out


HEADER = ("figure", "case", "handgrad", "peer", "ratio", "goal", "met", "agree", "load")


def table(results: list[Result]) -> str:
    """The results as a fixed-width text table, one row per figure case."""
    body = [HEADER, *rows([r.to_dict() for r in results])]
    widths = [max(len(row[i]) for row in body) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(path: str, payload: dict) -> None:
    """Write ``payload`` to ``path`` atomically: a temporary file, then a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, suffix=".json.tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, allow_nan=True, ensure_ascii=False)
            f.write("\n")
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


def machine_line(info: dict, quick: bool) -> str:
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['torch_threads']} torch threads, "
        f"torch {info['torch']}, load {info['load_average_1min'] or 0:.2f}, {info['date']}"
        + (" (quick)" if quick else "")
    )


def run_figures(
    modules, quick: bool, cores: int, quick_for: tuple[str, ...] = ()
) -> tuple[list[Result], list[str]]:
    """Run each figure; return its results and the failures, one sentence each.

    Figures named in ``quick_for`` run at their quick size even in a full run, and each
    of their rows carries a note that says so."""
    results: list[Result] = []
    failures: list[str] = []
    for module in modules:
        name = module.__name__.rsplit(".", 1)[-1]
        print(f"running {name} ...", file=sys.stderr, flush=True)
        before = load_average()
        small = quick or any(part in name for part in quick_for)
        try:
            found = module.run(small)
            if small and not quick:
                for r in found:
                    r.notes.append("run at its quick size (--quick-for) in this full run")
        except Exception as error:  # a figure that cannot run fails the run, named
            traceback.print_exc()
            failures.append(f"{name} raised {type(error).__name__}: {error}")
            continue
        after = load_average()
        loads = [x for x in (before, after) if x is not None]
        for r in found:
            r.load = max(loads) if loads else None
            r.loaded = None if r.load is None else r.load > cores
            for check in r.failed_checks:
                failures.append(
                    f"[{r.figure}] {r.case}: the two sides disagree: {check.what} = "
                    f"{check.value:.3g} > tolerance {check.tolerance:.3g} ({check.why})"
                )
        results.extend(found)
    return results, failures


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    threads = pin_threads(args.threads)
    info = machine()
    line = machine_line(info, args.quick)
    print(line, flush=True)
    cores = info["cores"] or 1
    modules = FIGURES
    if args.only:
        modules = [m for m in FIGURES if any(part in m.__name__ for part in args.only)]
    started = time.perf_counter()
    results, failures = run_figures(modules, args.quick, cores, tuple(args.quick_for))
    print(table(results))
    loaded = [r for r in results if r.loaded]
    warnings = []
    if loaded:
        warnings.append(
            f"{len(loaded)} of {len(results)} rows ran under load (1-minute load above "
            f"{cores} cores): other processes took CPU time, so those ratios are noisy"
        )
    for warning in warnings:
        print(f"WARNING: {warning}")
    for r in results:
        print(f"  [{r.figure}] handgrad: {r.handgrad_side}; peer: {r.peer_side}")
        print(f"  [{r.figure}] timing includes: {r.includes}")
        for check in r.checks:
            verdict = "ok" if check.ok else "FAILED"
            print(
                f"  [{r.figure}] check {verdict}: {check.what} = {check.value:.3g} "
                f"(tolerance {check.tolerance:.3g})"
            )
        for note in r.notes:
            print(f"  [{r.figure}] {note}")
    payload = {
        "machine": {**info, "threads_pinned": threads},
        "quick": args.quick,
        "quick_for": args.quick_for,
        "seconds": time.perf_counter() - started,
        "warnings": warnings,
        "failures": failures,
        "results": [r.to_dict() for r in results],
    }
    write_json(args.out, payload)
    print(f"wrote {args.out}")
    if not args.no_chart and results:
        chart = os.path.splitext(args.out)[0] + ".png"
        draw_chart(chart, results, line)
        print(f"wrote {chart}")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
