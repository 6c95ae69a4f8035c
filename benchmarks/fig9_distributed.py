"""Figure 9, torchrun: a whole ``handgrad train`` on 2 ranks against 1, on this machine.

How it is measured: ``torchrun --standalone --nproc-per-node N -m handgrad train`` on the
same ``.npy`` files (float32 features and targets, streamed in groups of chunks; the
``stats`` path, the full-batch default), N = 2 against N = 1, whole processes from
start to exit (torchrun, imports, the moments pass over each rank's own groups, the one
all-reduce, the epochs, the final metrics pass, the run directory), in interleaved
rounds; medians. Each rank takes its share of the cores (cores ÷ ranks) for torch and
the BLAS.

Goal: on one machine, 2 ranks take ≤ 1.1× the wall time of 1: the reading splits
between them, and nothing is lost to threads fighting over the cores. The gain of more
ranks comes with more machines (or cores): on 2 cores, 1 rank already uses both.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.timing import MIN_REPEATS, Check, Result, Timing

GOAL = 1.1
FEATURES, TARGETS = 50, 2


def _files(folder: Path, rows: int) -> list[str]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, FEATURES), dtype=np.float32)
    W = rng.standard_normal((FEATURES, TARGETS)).astype(np.float32)
    Y = X @ W + 0.1 * rng.standard_normal((rows, TARGETS), dtype=np.float32)
    np.save(folder / "X.npy", X)
    np.save(folder / "Y.npy", Y)
    return ["--data", str(folder / "X.npy"), "--target-file", str(folder / "Y.npy")]


def _command(ranks: int, data: list[str], out: Path) -> list[str]:
    return [
        *[sys.executable, "-m", "torch.distributed.run", "--standalone"],
        *["--nproc-per-node", str(ranks), "-m", "handgrad", "train", "--quiet"],
        *data,
        *["--out", str(out)],
    ]


def _time(command: list[str]) -> float:
    import subprocess

    env = os.environ | {"OMP_NUM_THREADS": "1"}  # torchrun's default; set: no warning
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}: {done.stderr}")
    return seconds


def run(quick: bool) -> list[Result]:
    # A full run's first round warms the page cache and is not counted.
    rows, rounds, warmup = (40_000, 1, 0) if quick else (400_000, MIN_REPEATS, 1)
    times: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        data = _files(folder, rows)
        for round_ in range(rounds + warmup):
            for ranks in (1, 2) if round_ % 2 else (2, 1):
                seconds = _time(_command(ranks, data, folder / f"{round_}-{ranks}"))
                if round_ >= warmup:
                    times[ranks].append(seconds)
        last = rounds + warmup - 1
        metrics = {
            ranks: json.loads((folder / f"{last}-{ranks}" / "metrics.json").read_text())
            for ranks in (1, 2)
        }
    one, two = metrics[1]["train_mse"], metrics[2]["train_mse"]
    return [
        Result.timed(
            "9 torchrun",
            f"handgrad train, {rows:,} × {FEATURES} → {TARGETS} .npy, stats: 2 ranks vs 1",
            Timing.of(times[2]),
            Timing.of(times[1]),
            peer_name="1 rank",
            goal=GOAL,
            handgrad_side="torchrun, 2 ranks (gloo), float32 descent on float64 statistics",
            peer_side="torchrun, 1 rank, the same command",
            includes="process start to exit: torchrun, imports, both passes, all-reduces, "
            "the run directory",
            checks=[
                Check(
                    "relative difference of the final train MSE, 2 ranks vs 1",
                    abs(two - one) / one,
                    1e-6,
                    "float64 statistics agree to ~1e-15; a float32 step may round either way",
                ),
                Check(
                    "relative gap to the optimum, 2 ranks (metrics.json)",
                    metrics[2]["gap_to_optimum"],
                    1e-3,
                    "a run counts as converged below a relative gap of 1e-3",
                ),
            ],
            notes=[
                "each rank reads only its own groups of the file (group g to rank g mod 2)",
                f"cores: {os.cpu_count()}",
            ],
        )
    ]
