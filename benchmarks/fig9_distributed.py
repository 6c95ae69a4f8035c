"""Figure 9, torchrun: a whole ``handgrad train`` on 2 ranks against 1, on this machine.

How it is measured: ``torchrun --standalone --nproc-per-node N -m handgrad train`` on
the same synthetic problem (``stats`` path, the full-batch default), N = 2 against
N = 1, whole processes from start to exit (torchrun, imports, data, the statistics
pass, the epochs, the run directory), in interleaved rounds; medians. Each rank takes
its share of the cores (cores ÷ ranks on the machine) for torch and the BLAS.

Goal: on one machine, 2 ranks take ≤ 1.1× the wall time of 1: the statistics pass
splits between them, and nothing is lost to threads fighting over the cores. The gain
of more ranks comes with more machines (or cores): on 2 cores, 1 rank already uses both.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.timing import Result

GOAL = 1.1


def _command(ranks: int, samples: int, out: Path) -> list[str]:
    return [
        *[sys.executable, "-m", "torch.distributed.run", "--standalone"],
        *["--nproc-per-node", str(ranks), "-m", "handgrad", "train", "--quiet"],
        *["--dataset", "synthetic", "--samples", str(samples), "--features", "50"],
        *["--out", str(out)],
    ]


def _time(command: list[str]) -> float:
    env = os.environ | {"OMP_NUM_THREADS": "1"}  # torchrun's default; set: no warning
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, capture_output=True)
    return time.perf_counter() - started


def run(quick: bool) -> list[Result]:
    # A full run's first round warms the page cache and is not counted.
    samples, rounds, warmup = (20_000, 1, 0) if quick else (400_000, 6, 1)
    times: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(rounds):
            for ranks in (1, 2) if round_ % 2 else (2, 1):
                seconds = _time(_command(ranks, samples, Path(folder) / f"{round_}-{ranks}"))
                if round_ >= warmup:
                    times[ranks].append(seconds)
    two, one = statistics.median(times[2]), statistics.median(times[1])
    return [
        Result(
            figure="9 torchrun",
            case=f"handgrad train, {samples:,} × 50, stats: 2 ranks vs 1",
            handgrad=two,
            peer=one,
            peer_name="1 rank",
            goal=GOAL,
            notes=[
                "one all-reduce of the statistics per fit; every rank makes the "
                "synthetic data and reads its own chunks",
                f"cores: {os.cpu_count()}",
            ],
        )
    ]
