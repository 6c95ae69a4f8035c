"""Figure 9, torchrun: a whole ``handgrad train`` on 2 ranks against 1, on this machine.

How it is measured: ``torchrun --standalone --nproc-per-node N -m handgrad train`` on
``.npy`` files (float32 features and targets, streamed in groups of chunks; the
``stats`` path, the full-batch default), whole processes from start to exit (torchrun,
imports, the moments pass over each rank's own groups, its one all-reduce, the epochs,
the run directory), in interleaved rounds; medians. Each rank takes its share of the
cores (cores ÷ ranks) for torch and the BLAS. Two jobs:

- a long one (400,000 × 50 → 2) and a longer one (4,000,000 × 50 → 2, 800 MB): 2 ranks
  against 1 rank, both under torchrun. The first is mostly start-up since a stats fit
  reads its file once (about 4.6 s, of which torchrun, two imports of torch and the
  process group take most); the second is mostly the moments pass;
- a short one (2,500,000 × 20 → 1, a few seconds): 2 ranks under torchrun against one
  plain process (``python -m handgrad train``), what a user would otherwise run. There
  torchrun's own start-up (one more process importing torch, then the ranks) weighs
  about as much as the work, so a second row times the same runs net of it: each run
  less the median of the same launcher on ``-m handgrad --version`` (which imports no
  torch), labelled so: the time from the ranks' start to their exit.

Goal: on one machine, 2 ranks take ≤ 1.1× the wall time of 1: the reading splits
between them, and nothing is lost to threads fighting over the cores. The gain of more
ranks comes with more machines (or cores): on 2 cores, 1 rank already uses both.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.timing import MIN_REPEATS, Check, Result, Timing

GOAL = 1.1
LONG = (400_000, 50, 2)  # rows, features, targets
LONGER = (4_000_000, 50, 2)  # 800 MB of float32 features: the pass outweighs start-up
SHORT = (2_500_000, 20, 1)  # the new-user trial's job: 5-6 s in one process here
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node"]
PLAIN = [sys.executable, "-m", "handgrad"]


def _files(folder: Path, rows: int, features: int, targets: int) -> list[str]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, features), dtype=np.float32)
    W = rng.standard_normal((features, targets)).astype(np.float32)
    Y = X @ W + 0.1 * rng.standard_normal((rows, targets), dtype=np.float32)
    np.save(folder / "X.npy", X)
    np.save(folder / "Y.npy", Y)
    return ["--data", str(folder / "X.npy"), "--target-file", str(folder / "Y.npy")]


def _time(command: list[str]) -> float:
    import subprocess

    env = os.environ | {"OMP_NUM_THREADS": "1"}  # torchrun's default; set: no warning
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}: {done.stderr}")
    return seconds


def _rounds(commands: dict, rounds: int, warmup: int) -> dict[str, list[float]]:
    """Seconds of each command per round, ``commands[name](round)`` the command line;
    the order reverses every other round, and the first ``warmup`` rounds (the page
    cache) are not counted."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(rounds + warmup):
        for name in list(commands)[:: 1 if round_ % 2 else -1]:
            seconds = _time(commands[name](round_))
            if round_ >= warmup:
                times[name].append(seconds)
    return times


def _checks(two: dict, one: dict, against: str) -> list[Check]:
    return [
        Check(
            f"relative difference of the final train MSE, 2 ranks vs {against}",
            abs(two["train_mse"] - one["train_mse"]) / one["train_mse"],
            1e-6,
            "float64 statistics agree to ~1e-15; a float32 step may round either way",
        ),
        Check(
            "relative gap to the optimum, 2 ranks (metrics.json)",
            two["gap_to_optimum"],
            1e-3,
            "a run counts as converged below a relative gap of 1e-3",
        ),
    ]


def _long(folder: Path, quick: bool, rounds: int, warmup: int, size=LONG) -> Result:
    rows, features, targets = (40_000, *size[1:]) if quick else size
    data = _files(folder, rows, features, targets)

    train = ["-m", "handgrad", "train", "--quiet", *data]
    commands = {
        n: lambda r, n=n: [*TORCHRUN, str(n), *train, "--out", str(folder / f"{r}-{n}")]
        for n in (1, 2)
    }
    times = _rounds(commands, rounds, warmup)
    last = rounds + warmup - 1
    metrics = {n: json.loads((folder / f"{last}-{n}" / "metrics.json").read_text()) for n in (1, 2)}
    return Result.timed(
        "9 torchrun",
        f"handgrad train, {rows:,} × {features} → {targets} .npy, stats: 2 ranks vs 1",
        Timing.of(times[2]),
        Timing.of(times[1]),
        peer_name="1 rank",
        goal=GOAL,
        handgrad_side="torchrun, 2 ranks (gloo), float32 descent on float64 statistics",
        peer_side="torchrun, 1 rank, the same command",
        includes="process start to exit: torchrun, imports, the moments pass, the one "
        "all-reduce, the run directory",
        checks=_checks(metrics[2], metrics[1], "1"),
        notes=[
            "each rank reads only its own groups of the file (group g to rank g mod 2)",
            f"cores: {os.cpu_count()}",
        ],
    )


def _short(folder: Path, quick: bool, rounds: int, warmup: int) -> list[Result]:
    rows, features, targets = (250_000, *SHORT[1:]) if quick else SHORT
    data = _files(folder, rows, features, targets)
    train = ["train", "--quiet", *data]
    commands = {
        "torchrun": lambda r: [
            *TORCHRUN,
            "2",
            "-m",
            "handgrad",
            *train,
            "--out",
            str(folder / f"t{r}"),
        ],
        "plain": lambda r: [*PLAIN, *train, "--out", str(folder / f"p{r}")],
        "torchrun start-up": lambda r: [*TORCHRUN, "2", "-m", "handgrad", "--version"],
        "python start-up": lambda r: [*PLAIN, "--version"],
    }
    times = _rounds(commands, rounds, warmup)
    last = rounds + warmup - 1
    two = json.loads((folder / f"t{last}" / "metrics.json").read_text())
    one = json.loads((folder / f"p{last}" / "metrics.json").read_text())
    # Each run less the median start-up of its own launcher: what the ranks (or the one
    # process) spend after Python started them, torch's import included.
    launch = {name: statistics.median(times[f"{name} start-up"]) for name in ("torchrun", "python")}
    net = {
        "torchrun": [t - launch["torchrun"] for t in times["torchrun"]],
        "plain": [t - launch["python"] for t in times["plain"]],
    }
    case = f"handgrad train, {rows:,} × {features} → {targets} .npy, stats (a short job)"
    shared = dict(
        peer_name="1 process",
        handgrad_side="torchrun, 2 ranks (gloo), float32 descent on float64 statistics",
        peer_side="python -m handgrad train, one process, no torchrun",
        checks=_checks(two, one, "1 process"),
    )
    notes = [
        f"start-ups (median, -m handgrad --version): torchrun with 2 ranks "
        f"{launch['torchrun']:.2f} s, python {launch['python']:.2f} s",
        f"cores: {os.cpu_count()}",
    ]
    return [
        Result.timed(
            "9 torchrun",
            f"{case}: 2 ranks vs 1 process",
            Timing.of(times["torchrun"]),
            Timing.of(times["plain"]),
            goal=GOAL,
            includes="process start to exit, torchrun's own start-up included",
            notes=notes,
            **shared,
        ),
        Result.timed(
            "9 torchrun",
            f"{case}, from the ranks' start: 2 ranks vs 1 process",
            Timing.of(net["torchrun"]),
            Timing.of(net["plain"]),
            goal=None,  # the goal is the wall time's; this row shows where it goes
            includes="each run less its launcher's start-up (torchrun, or python, on -m "
            "handgrad --version): from the ranks' start to their exit",
            notes=notes,
            **shared,
        ),
    ]


def run(quick: bool) -> list[Result]:
    # A full run's first round warms the page cache and is not counted.
    rounds, warmup = (1, 0) if quick else (MIN_REPEATS, 1)
    results = []
    for size in (LONG,) if quick else (LONG, LONGER):  # quick: the same small job once
        with tempfile.TemporaryDirectory() as name:
            results.append(_long(Path(name), quick, rounds, warmup, size))
    with tempfile.TemporaryDirectory() as name:
        return results + _short(Path(name), quick, rounds, warmup)
