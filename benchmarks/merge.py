"""Put one figure's rows from a run of that figure alone into the committed result.

``python -m benchmarks.merge RUN.json fig7`` replaces the rows of figure 7 in
``benchmarks/results/latest.json`` with those of RUN.json (written by
``python -m benchmarks.run --only fig7``), drops the figure from ``quick_for``, and
records under ``merged`` where the rows came from: the figure, the date, the load, the
threads and the seconds it took.
The README's table (``benchmarks.readme``) names every merged figure with its own date,
so a row never claims the machine and the hour of the run it was merged into.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from benchmarks.run import DEFAULT_OUT


def _number(name: str) -> str:
    """fig7 -> "7", the first word of a result's ``figure``."""
    return name.removeprefix("fig")


def _of(failure: str, number: str, name: str) -> bool:
    """Whether a failure line of ``benchmarks.run`` is about figure ``number``."""
    return failure.startswith(f"[{number} ") or name in failure.split(" ", 1)[0]


def merge(into: dict, run: dict, name: str) -> dict:
    """``into`` with figure ``name``'s rows taken from ``run``; ValueError if it has none."""
    number = _number(name)
    rows = [r for r in run["results"] if r["figure"].split()[0] == number]
    if not rows or run.get("quick"):
        raise ValueError(f"{name}: the run has no full-size rows of figure {number} to merge")
    kept = [r for r in into["results"] if r["figure"].split()[0] != number]
    at = next(
        (i for i, r in enumerate(into["results"]) if r["figure"].split()[0] == number),
        len(kept),
    )
    merged = [m for m in into.get("merged", []) if m["figure"] != number]
    merged.append(
        {
            "figure": number,
            "date": run["machine"]["date"],
            "load_average_1min": run["machine"].get("load_average_1min"),
            "threads_pinned": run["machine"].get("threads_pinned"),
            "seconds": run.get("seconds"),
        }
    )
    return into | {
        "results": kept[:at] + rows + kept[at:],
        "quick_for": [q for q in into.get("quick_for", []) if q != name],
        # The replaced figure's failures go with its rows ("[7 convergence] ..." or
        # "...fig7_convergence raised ...").
        "failures": [f for f in into.get("failures") or [] if not _of(f, number, name)]
        + (run.get("failures") or []),
        "merged": merged,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.merge", description=__doc__)
    parser.add_argument("run", help="a JSON written by python -m benchmarks.run --only NAME")
    parser.add_argument("name", help="the figure module's short name, e.g. fig7")
    parser.add_argument("--into", default=DEFAULT_OUT, help=f"(default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    with open(args.into) as f:
        into = json.load(f)
    with open(args.run) as f:
        run = json.load(f)
    try:
        payload = merge(into, run, args.name)
    except ValueError as error:
        print(f"benchmarks.merge: {error}", file=sys.stderr)
        return 2
    temporary = args.into + ".tmp"
    with open(temporary, "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(temporary, args.into)
    print(f"merged figure {_number(args.name)} of {args.run} into {args.into}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
