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

import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.timing import Check, Result, Timing

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


def _torch_modules_imported(command: list[str], cwd: str) -> float:
    """How many torch modules ``command`` imports (``python -X importtime``'s log)."""
    traced = [command[0], "-X", "importtime", *command[1:]]
    done = subprocess.run(traced, cwd=cwd, capture_output=True, text=True)
    names = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()]
    return float(sum(name == "torch" or name.startswith("torch.") for name in names))


def _checks(name: str, make, folder: str, data: str) -> list[Check]:
    """What each command must have done, checked once after the timing."""
    command = make()
    if "--help" in command or "--version" in command:
        count = _torch_modules_imported(command, folder)
        why = "the goal: help and version answer without importing torch"
        return [Check("torch modules imported (python -X importtime)", count, 0.0, why)]
    if "predict" in command:
        out = os.path.join(folder, "checked-predictions.csv")
        _seconds([*command, "--out", out], folder)
        with open(out) as f:
            rows = sum(1 for _ in f) - 1  # less the header
        why = "every row of the 300-row file gets a prediction"
        return [Check("|rows predicted − 300|", float(abs(rows - 300)), 0.0, why)]
    run_dir = os.path.join(folder, "checked-run")
    _seconds(_handgrad(*TRAIN, "--out", run_dir), folder)
    with open(os.path.join(run_dir, "metrics.json")) as f:
        gap = json.load(f)["gap_to_optimum"]
    why = "a run counts as converged below a relative gap of 1e-3"
    return [Check("relative gap to the least-squares optimum (metrics.json)", gap, 1e-3, why)]


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
        checks = {name: _checks(name, make, folder, data) for name, (make, _) in cases.items()}
    peer = Timing.of(samples[PEER_NAME])
    return [
        Result.timed(
            "8 start-up",
            name,
            Timing.of(samples[name]),
            peer,
            peer_name=PEER_NAME,
            goal=goal,
            handgrad_side="the handgrad command, a fresh Python process (CPU, default dtype)",
            peer_side="a fresh Python process that imports torch and exits",
            includes="process start to exit: interpreter start-up, imports, work, files written",
            checks=checks[name],
            notes=[f"whole processes, median of {len(samples[name])} interleaved rounds"],
        )
        for name, (_, goal) in cases.items()
    ]
