"""Figure 8, start-up: whole ``handgrad`` commands against ``python -c "import torch"``.

Each command is a fresh process, timed from its start to its exit (``subprocess.run``),
so Python's start-up, every import and every file written count. The peer is the least
any command that trains must pay, importing torch, measured in the same rounds: each
round runs the peer and every command once, in an order that rotates by round; medians.

Goals (ratio = command / peer):

- ``handgrad --help``, ``--version`` and ``train --help``: ≤ 0.15, so torch is not imported;
- ``handgrad train --dataset diabetes --quiet``: ≤ 2, a whole run (442 × 10, about 2000
  epochs, every file of the run directory written) for twice the price of torch alone;
- ``handgrad predict`` on 300 rows of a CSV: ≤ 1.5.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.timing import Result

FULL_ROUNDS, QUICK_ROUNDS = 7, 1
PEER = [sys.executable, "-c", "import torch"]
PEER_NAME = 'python -c "import torch"'
TRAIN = ("train", "--dataset", "diabetes", "--quiet")
TRAIN_CASE = "`handgrad train --dataset diabetes --quiet`, a whole run"


def _handgrad(*args: str) -> list[str]:
    return [sys.executable, "-m", "handgrad", *args]


def _seconds(command: list[str], cwd: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}: {done.stderr}")
    return seconds


def _features_csv(folder: str, rows: int = 300) -> str:
    """The first ``rows`` rows of diabetes' features, as a user's CSV."""
    from handgrad.data.datasets import diabetes

    data = diabetes()
    path = os.path.join(folder, "new.csv")
    with open(path, "w") as f:
        f.write(",".join(data.feature_names) + "\n")
        for row in data.X[:rows]:
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    return path


def run(quick: bool) -> list[Result]:
    rounds = QUICK_ROUNDS if quick else FULL_ROUNDS
    with tempfile.TemporaryDirectory() as folder:
        model = os.path.join(folder, "model-run")
        first = _seconds(_handgrad(*TRAIN, "--out", model), folder)
        data = _features_csv(folder)
        counter = iter(range(10**6))
        cases = {
            "`handgrad --help`": (lambda: _handgrad("--help"), 0.15),
            "`handgrad --version`": (lambda: _handgrad("--version"), 0.15),
            "`handgrad train --help`": (lambda: _handgrad("train", "--help"), 0.15),
            TRAIN_CASE: (lambda: _handgrad(*TRAIN, "--out", f"run{next(counter)}"), 2.0),
            "`handgrad predict` on 300 rows of a CSV": (
                lambda: _handgrad("predict", "--model", model, "--data", data),
                1.5,
            ),
        }
        commands = {PEER_NAME: lambda: PEER} | {name: make for name, (make, _) in cases.items()}
        if not quick:  # warm-up: the page cache, .pyc files (the model's run did most)
            for make in commands.values():
                _seconds(make(), folder)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        if quick:  # a smoke run: the model's own run is the one sample of a whole run
            samples[TRAIN_CASE].append(first)
            names.remove(TRAIN_CASE)
        for round_ in range(rounds):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(_seconds(commands[name](), folder))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return [
        Result(
            figure="8 start-up",
            case=name,
            handgrad=medians[name],
            peer=medians[PEER_NAME],
            peer_name=PEER_NAME,
            goal=goal,
            notes=[f"whole processes, median of {rounds} interleaved rounds"],
        )
        for name, (_, goal) in cases.items()
    ]
