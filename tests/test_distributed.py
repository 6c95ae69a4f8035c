"""Data-parallel training across spawned ranks (``tests/distributed_worker.py``).

Each world joins through a ``file://`` store in tmp_path: no port is fixed. Worlds of 2
and 3 ranks train on uneven shards; they are compared with one rank in this process, bit
for bit under ``deterministic``, and with the plain trainer of one process (no reducer).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import distributed_worker as worker
from handgrad.distributed import sharded, world

LIMIT_S = 180  # a hung world fails the test instead of hanging it
RUNS = tuple(worker.CONFIGS)


def launch(scenario: str, size: int, folder: Path) -> list[subprocess.Popen]:
    folder.mkdir()
    store = folder / "store"
    return [
        subprocess.Popen(
            [sys.executable, worker.__file__, scenario, str(rank), str(size), str(store), folder],
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(size)
    ]


def wait(processes: list[subprocess.Popen]) -> list[tuple[int, str]]:
    deadline = time.monotonic() + LIMIT_S
    results = []
    for process in processes:
        try:
            _, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for p in processes:
                p.kill()
            pytest.fail("a distributed world hung")
        results.append((process.returncode, err))
    return results


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    """What each rank saw: worlds of 2 and 3 ranks (the latter then sees rank 1 fail),
    started at once, while this process runs one rank, and the plain trainer."""
    base = tmp_path_factory.mktemp("worlds")
    running = {2: launch("train", 2, base / "2"), 3: launch("train-and-fail", 3, base / "3")}
    (base / "1").mkdir()
    chunk_rows = sharded.CHUNK_ROWS
    try:
        worker.train(world.World(), base / "1")
        worker.train(None, base / "1")
    finally:
        sharded.CHUNK_ROWS = chunk_rows
    codes = {size: wait(processes) for size, processes in running.items()}
    for code, err in codes[2]:
        assert code == 0, err
    assert [code for code, _ in codes[3]] == [0, 3, 0], codes[3]
    seen = {
        size: [dict(np.load(base / str(size) / f"{r}.npz")) for r in range(size)]
        for size in (1, 2, 3)
    }
    seen["plain"] = dict(np.load(base / "1" / "plain.npz"))
    seen["folder"] = base / "3"
    return seen


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("size", (2, 3))
def test_deterministic_is_bit_identical_for_any_world_size(worlds, run, size):
    one = worlds[1][0]
    for rank, seen in enumerate(worlds[size]):
        for part in ("W", "b", "S"):
            key = f"{run}-det-{part}"
            assert np.array_equal(seen[key], one[key]), (key, size, rank)


def test_plain_sums_are_not_bit_identical(worlds):
    """Without ``deterministic`` the ranks' totals are added in another order than one
    process adds the chunks: somewhere the last bits differ. So the bit-identity above
    is the deterministic mode's doing, not luck."""
    one = worlds[1][0]
    differ = [
        not np.array_equal(worlds[size][0][key], one[key])
        for size in (2, 3)
        for key in one
        if "-sum-" in key and key[-2:] in ("-W", "-S")
    ]
    assert any(differ)


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("size", (1, 2, 3))
def test_all_reduce_equals_the_plain_trainer_to_1e12(worlds, run, size):
    """Against the trainer with no reducer (one pass over all rows, no chunks)."""
    plain = worlds["plain"]
    for mode in ("sum", "det"):
        for seen in worlds[size]:
            for part in ("W", "b", "S"):
                expected, got = plain[f"{run}-sum-{part}"], seen[f"{run}-{mode}-{part}"]
                # float64 sums of a few hundred terms in another order: the rounding of
                # each term, 1e-16, times the terms' spread; 1e-12 of the largest entry.
                atol = 1e-12 * np.abs(expected).max()
                np.testing.assert_allclose(got, expected, rtol=0, atol=atol)


@pytest.mark.parametrize("size", (2, 3))
def test_every_rank_ends_with_the_same_weights(worlds, size):
    first = worlds[size][0]
    for seen in worlds[size][1:]:
        for key in first:
            assert np.array_equal(seen[key], first[key]), key


def test_one_all_reduce_per_fit_or_per_step(worlds):
    seen = worlds[2][0]
    for mode in ("sum", "det"):
        assert seen[f"stats-{mode}-calls"] == 1  # the statistics of train and test at once
        # one for the statistics, then one per full-batch pass
        assert seen[f"full-{mode}-calls"] == 1 + seen[f"full-{mode}-epochs"]
        steps = -(-800 // worker.CONFIGS["minibatch"]["batch_size"])
        epochs = seen[f"minibatch-{mode}-epochs"]
        assert seen[f"minibatch-{mode}-calls"] == 1 + epochs * steps


def test_a_signal_on_one_rank_is_known_to_every_rank_at_the_same_step(worlds):
    for rank in range(3):
        assert json.loads((worlds["folder"] / f"signal-{rank}.json").read_text()) == 15


@pytest.mark.parametrize("how", ("error", "die"))
def test_a_failure_on_one_rank_stops_every_rank(worlds, how):
    """Rank 1 raises a UserError in its partial (exit code 2), then dies (exit code 3)."""
    folder = worlds["folder"]
    expected = {"error": "PeerFailedError", "die": "PeerLostError"}[how]
    for rank in (0, 2):
        seen = json.loads((folder / f"{how}-{rank}.json").read_text())
        assert seen["error"] == expected
        assert seen["seconds"] < worker.TIMEOUT_S + 5.0  # within the group's timeout
    if how == "error":
        failed = json.loads((folder / "error-1.json").read_text())
        assert failed["error"] == "UserError"
        assert failed["exit_code"] == 2 and failed["reports"]  # it alone prints its message
        for rank in (0, 2):
            seen = json.loads((folder / f"error-{rank}.json").read_text())
            assert seen["exit_code"] == 2 and not seen["reports"]
