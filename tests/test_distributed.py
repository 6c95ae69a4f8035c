"""Data-parallel training across spawned ranks (``tests/distributed_worker.py``).

Each world joins through a ``file://`` store in tmp_path: no port is fixed. Worlds of 2,
3 and 4 ranks train on uneven shards; they are compared with one rank in this process,
bit for bit under ``deterministic``, and with the plain trainer of one process (no
reducer).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import distributed_worker as worker
from handgrad.data.splitting import RowSplit
from handgrad.distributed import world

LIMIT_S = 180  # a hung world fails the test instead of hanging it
RUNS = tuple(worker.CONFIGS)
SIZES = (1, 2, 3, 4)  # 12 groups: 6 + 6, 4 + 4 + 4, 3 + 3 + 3 + 3, each rank's last one short
# Ranks are forked from one server process that imported torch and handgrad once: a
# fresh interpreter per rank spent about 1.1 s of CPU importing them, 10 s for the 9
# ranks, most of these tests' time on 2 cores. The server never ran torch (no thread
# pool to inherit), and each rank joins its world as a new process would. (The server
# does not get this process's sys.path, so it preloads what the worker imports, not
# the worker itself, which each rank imports from tests/ in a few milliseconds.)
SERVER = multiprocessing.get_context("forkserver")
SERVER.set_forkserver_preload(
    ["handgrad.training", "handgrad.distributed.sharded", "handgrad.data.datasets"]
)


def launch(scenario: str, size: int, folder: Path) -> list[multiprocessing.Process]:
    folder.mkdir()
    store = folder / "store"
    processes = [
        SERVER.Process(target=worker.run, args=(scenario, rank, size, str(store), str(folder)))
        for rank in range(size)
    ]
    for process in processes:
        process.start()
    return processes


def wait(processes: list[multiprocessing.Process], folder: Path) -> list[tuple[int, str]]:
    """Each rank's exit code and the traceback it left, if any (OUT/RANK.err)."""
    deadline = time.monotonic() + LIMIT_S
    results = []
    for rank, process in enumerate(processes):
        process.join(timeout=max(1.0, deadline - time.monotonic()))
        if process.exitcode is None:
            for p in processes:
                p.kill()
            pytest.fail("a distributed world hung")
        err = folder / f"{rank}.err"
        results.append((process.exitcode, err.read_text() if err.exists() else ""))
    return results


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    """What each rank saw: worlds of 2, 3 and 4 ranks (the world of 3 then sees rank 1
    fail), started at once, while this process runs one rank, and the plain trainer."""
    base = tmp_path_factory.mktemp("worlds")
    for name, bad_row in (("data", None), ("bad", 400)):
        (base / name).mkdir()
        worker.write_data(base / name, bad_row)
    running = {size: launch("train", size, base / str(size)) for size in (2, 4)}
    running[3] = launch("train-and-fail", 3, base / "3")
    (base / "1").mkdir()
    threads = torch.get_num_threads()
    try:
        worker.train(world.World(), base / "data", base / "1")
        worker.train(None, base / "data", base / "1")
    finally:  # --deterministic took one thread for the process: give them back
        if world._thread_limits is not None:
            world._thread_limits.restore_original_limits()
        torch.set_num_threads(threads)
    codes = {size: wait(processes, base / str(size)) for size, processes in running.items()}
    for code, err in codes[2] + codes[4]:
        assert code == 0, err
    assert [code for code, _ in codes[3]] == [0, 3, 0], codes[3]
    seen = {
        size: [dict(np.load(base / str(size) / f"{r}.npz")) for r in range(size)] for size in SIZES
    }
    seen["plain"] = dict(np.load(base / "1" / "plain.npz"))
    seen["folder"] = base / "3"
    return seen


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("size", SIZES[1:])
def test_deterministic_is_bit_identical_for_any_world_size(worlds, run, size):
    one = worlds[1][0]
    for rank, seen in enumerate(worlds[size]):
        for part in ("W", "b", "S", "metrics", "fingerprint"):
            key = f"{run}-det-{part}"
            assert np.array_equal(seen[key], one[key]), (key, size, rank)


def test_plain_sums_are_not_bit_identical(worlds):
    """Without ``deterministic`` the ranks' totals are added in another order than one
    process adds the chunks: somewhere the last bits differ. So the bit-identity above
    is the deterministic mode's doing, not luck."""
    one = worlds[1][0]
    differ = [
        not np.array_equal(worlds[size][0][key], one[key])
        for size in SIZES[1:]
        for key in one
        if "-sum-" in key and key.endswith(("-W", "-S", "-metrics"))
    ]
    assert any(differ)


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("size", SIZES)
def test_all_reduce_equals_the_plain_trainer_to_1e12(worlds, run, size):
    """Against the trainer of one process with no reducer, over the same chunks."""
    plain = worlds["plain"]
    for mode in ("sum", "det"):
        for seen in worlds[size]:
            for part in ("W", "b", "S", "metrics"):
                expected, got = plain[f"{run}-sum-{part}"], seen[f"{run}-{mode}-{part}"]
                # float64 sums of a few hundred terms in another order: the rounding of
                # each term, 1e-16, times the terms' spread; 1e-12 of the largest entry.
                atol = 1e-12 * np.abs(expected).max()
                np.testing.assert_allclose(got, expected, rtol=0, atol=atol)


@pytest.mark.parametrize("size", SIZES)
def test_a_run_stopped_part_way_through_an_epoch_resumes_under_torchrun(worlds, size):
    """A checkpoint's position (groups and chunks done) is honoured by the world's
    steps: the resumed run ends where the uninterrupted one does, not an epoch's steps
    further on. The two standardise with moments summed in another order: 1e-10."""
    for seen in worlds[size]:
        expected = seen["minibatch-det-W"]
        np.testing.assert_allclose(seen["minibatch-resumed-W"], expected, rtol=1e-10, atol=0)


@pytest.mark.parametrize("size", SIZES)
def test_a_signal_stops_every_rank_after_the_same_group_and_the_run_resumes(worlds, size):
    """One rank signalled: every rank stops after the first group of the epoch (where all
    of them know of it), not at the epoch's end, and a resume ends at the weights of the
    uninterrupted run (its own world: bit for bit)."""
    for seen in worlds[size]:
        assert seen["minibatch-signalled-position"].tolist() == [1, 0]
        assert np.array_equal(seen["minibatch-signalled-W"], seen["minibatch-det-W"])


@pytest.mark.parametrize("size", SIZES[1:])
def test_each_rank_reads_only_its_own_groups(worlds, size):
    groups = -(-worker.ROWS // worker.GROUP_ROWS)
    for rank, seen in enumerate(worlds[size]):
        for key in (key for key in seen if key.endswith("-read")):
            assert list(seen[key]) == list(range(rank, groups, size)), (key, rank)


@pytest.mark.parametrize("size", SIZES[1:])
def test_every_rank_ends_with_the_same_weights(worlds, size):
    first = worlds[size][0]
    for seen in worlds[size][1:]:
        for key in first:
            if not key.endswith("-read"):
                assert np.array_equal(seen[key], first[key]), key


@pytest.mark.parametrize("size", SIZES)
def test_one_all_reduce_per_fit_or_per_step(worlds, size):
    """The moments: one exchange, and for ``stats`` nothing more: the final metrics come
    from the statistics. A full-batch pass: one; a mini-batch step: one, after one for
    the largest row norm. Batches never span two groups (``training/passes.py``), so a
    group of q training rows takes ⌈q / batch size⌉ steps."""
    split = RowSplit.make(worker.ROWS, 0.0, 0.2, 0)
    batch = worker.CONFIGS["minibatch"]["batch_size"]
    steps = 0
    for start in range(0, worker.ROWS, worker.GROUP_ROWS):
        labels = split.labels(start, min(worker.GROUP_ROWS, worker.ROWS - start))
        steps += -(-int((labels == 0).sum()) // batch)
    for seen in worlds[size]:
        for mode in ("sum", "det"):
            assert seen[f"stats-{mode}-calls"] == 1
            assert seen[f"full-{mode}-calls"] == 1 + seen[f"full-{mode}-epochs"]
            assert seen[f"minibatch-{mode}-calls"] == 2 + seen[f"minibatch-{mode}-epochs"] * steps
            for run in RUNS:  # each from the statistics, with no pass: none fell back
                assert str(seen[f"{run}-{mode}-from"]) == "statistics"


def test_a_signal_on_one_rank_is_known_to_every_rank_at_the_same_step(worlds):
    for rank in range(3):
        assert json.loads((worlds["folder"] / f"signal-{rank}.json").read_text()) == 15


@pytest.mark.parametrize("how", ("bad-cell", "die"))
def test_a_failure_on_one_rank_stops_every_rank(worlds, how):
    """Rank 1 meets a NaN in its group of the file (a UserError, exit code 2), then dies
    (exit code 3): the others stop within the timeout, with its exit code."""
    folder = worlds["folder"]
    expected = {"bad-cell": "PeerFailedError", "die": "PeerLostError"}[how]
    for rank in (0, 2):
        seen = json.loads((folder / f"{how}-{rank}.json").read_text())
        assert seen["error"] == expected
        assert seen["seconds"] < worker.TIMEOUT_S + 5.0  # within the group's timeout
    if how == "bad-cell":
        failed = json.loads((folder / "bad-cell-1.json").read_text())
        assert failed["error"] == "UserError" and "row 401" in failed["message"]
        assert failed["exit_code"] == 2 and failed["reports"]  # it alone prints its message
        for rank in (0, 2):
            seen = json.loads((folder / f"bad-cell-{rank}.json").read_text())
            assert seen["exit_code"] == 2 and not seen["reports"]
