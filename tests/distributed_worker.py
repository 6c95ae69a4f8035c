"""One rank of the distributed tests, as its own process: ``tests/test_distributed.py``
forks ``run`` from a server that has imported torch and handgrad, or:

    python distributed_worker.py SCENARIO RANK SIZE STORE OUT

Each joins a world of SIZE ranks through the file STORE (``file://``, no port) and, for
SCENARIO "train", trains every run of CONFIGS on the ``.npy`` files in OUT/../data
(OUT/RANK.npz); "train-and-fail" then sees rank 2 receive a signal, a bad cell in a group
of rank 1 (OUT/../bad), and rank 1 die (OUT/*.json).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from handgrad.config import TrainConfig, check
from handgrad.data.datasets import synthetic
from handgrad.data.sources import NpySource
from handgrad.distributed import launch, world
from handgrad.distributed.reduce import Reducer
from handgrad.errors import UserError
from handgrad.training import Trainer

# 1,000 rows in groups of 90: 12 groups, the last of 10 rows, so 2, 3 and 4 ranks get
# uneven shares (6 + 6 groups, 4 + 4 + 4, 3 + 3 + 3 + 3, a short last group) of every split.
ROWS, GROUP_ROWS = 1000, 90
TIMEOUT_S = 20.0
CONFIGS = {
    # 5 epochs end at a gap of about 1e-9: past the 8th the gap is rounding noise, and
    # with tol=0 when a run stops would depend on the last bits of its statistics.
    "stats": {"path": "stats", "max_epochs": 5},
    "full": {"path": "fused", "max_epochs": 6},
    "minibatch": {"batch_size": 64, "optimizer": "sgd", "momentum": 0.5, "max_epochs": 2},
    # Steps in whitened coordinates (training/precondition.py): the largest row norm in V
    # is every rank's maximum, and the same steps follow.
    "whitened": {"batch_size": 64, "optimizer": "gd", "precondition": "whiten", "max_epochs": 2},
}


def write_data(folder: Path, bad_row: int | None = None) -> None:
    """X.npy (1,000 × 6) and Y.npy (1,000 × 2) in ``folder``; NaN at ``bad_row``."""
    data, _, _ = synthetic(samples=ROWS, features=6, targets=2, noise=0.5, seed=3)
    X = data.X.copy()
    X[:, 0] += 1e4  # a column far from zero: the shifted moments keep their precision
    if bad_row is not None:
        X[bad_row, 3] = np.nan
    np.save(folder / "X.npy", X)
    np.save(folder / "Y.npy", data.Y)


class Recorded(NpySource):
    """An ``.npy`` source that records which groups were read."""

    def group(self, g: int):
        self.read.add(g)
        return super().group(g)


def source(folder: Path) -> Recorded:
    recorded = Recorded(folder / "X.npy", folder / "Y.npy", chunk_rows=GROUP_ROWS)
    recorded.read = set()
    return recorded


def train(rank_world: world.World | None, data_folder: Path, out: Path) -> None:
    """Every run of CONFIGS, summed plainly and deterministically; with ``rank_world``
    None, the trainer of one process with no reducer at all (the reference)."""
    results = {}
    for name, options in CONFIGS.items():
        config = check(TrainConfig(dtype="float64", tol=0.0, **options))
        for deterministic in (False, True) if rank_world else (False,):
            reducer = Reducer(rank_world, deterministic) if rank_world else None
            if deterministic:
                world.set_threads(1)
            files = source(data_folder)
            data = launch.prepare(files, config, reducer)
            trainer = Trainer(data, config, reducer).fit()
            metrics = trainer.metrics()
            results[f"{name}-{'det' if deterministic else 'sum'}-read"] = sorted(files.read)
            key = f"{name}-{'det' if deterministic else 'sum'}"
            results[f"{key}-W"] = trainer.W.cpu().numpy()
            results[f"{key}-b"] = trainer.b.cpu().numpy()
            results[f"{key}-S"] = trainer.stats.S.cpu().numpy()
            results[f"{key}-metrics"] = np.array([metrics["train_mse"], metrics["test_mse"]])
            results[f"{key}-fingerprint"] = np.array(data.fingerprint())
            results[f"{key}-calls"] = np.array(reducer.calls if reducer else 0)
            results[f"{key}-from"] = np.array(metrics["final_metrics_from"])
            results[f"{key}-epochs"] = np.array(trainer.epoch)
    if rank_world is not None:
        results["minibatch-resumed-W"] = resumed_part_way(rank_world, data_folder)
        position, results["minibatch-signalled-W"] = stopped_by_a_signal(rank_world, data_folder)
        results["minibatch-signalled-position"] = position
    np.savez(out / f"{rank_world.rank if rank_world else 'plain'}.npz", **results)


def resumed_part_way(rank_world: world.World, data_folder: Path) -> np.ndarray:
    """The W of CONFIGS' mini-batch run stopped after 5 of its 12 chunks in one process
    (a checkpoint saved part way through an epoch), then resumed by the world."""
    config = check(TrainConfig(dtype="float64", tol=0.0, **CONFIGS["minibatch"]))
    first = Trainer(launch.prepare(source(data_folder), config, None), config)
    chunks = []
    first.chunk_hook = lambda trainer: chunks.append(trainer.position) or len(chunks) == 5
    first.fit()
    assert first.epoch == 0 and first.position[:2] == (4, 1), first.position
    reducer = Reducer(rank_world, deterministic=True)
    second = Trainer(launch.prepare(source(data_folder), config, reducer), config, reducer)
    second.load_state(first.state())
    return second.fit().W.cpu().numpy()


def stopped_by_a_signal(rank_world: world.World, data_folder: Path):
    """The world's mini-batch run, the last rank alone signalled before its first step,
    with the CLI's rule (stop once the signal is agreed): every rank stops after the same
    group, part way through the epoch; a new world resumes it. The position, and the W
    the resumed run ends with."""
    config = check(TrainConfig(dtype="float64", tol=0.0, **CONFIGS["minibatch"]))
    reducer = Reducer(rank_world, deterministic=True)
    first = Trainer(launch.prepare(source(data_folder), config, reducer), config, reducer)
    first.chunk_hook = lambda trainer: bool(trainer.reducer.stop_agreed)
    reducer.stop_requested = 15 if rank_world.rank == rank_world.size - 1 else 0
    first.fit()
    assert first.stop_reason == "interrupted" and first.epoch == 0
    again = Reducer(rank_world, deterministic=True)
    second = Trainer(launch.prepare(source(data_folder), config, again), config, again)
    second.load_state(first.state())
    return np.array(first.position[:2]), second.fit().W.cpu().numpy()


def fail(rank_world: world.World, data_folder: Path, out: Path, how: str) -> None:
    """Rank 1 meets a bad cell in its group, or dies outright while computing its part;
    every rank records what stopped it, and when, in OUT/how-RANK.json."""
    reducer = Reducer(rank_world)
    started = time.monotonic()
    seen = {"error": None}
    try:
        if how == "bad-cell":  # group 4 (rows 361-450) belongs to rank 1 of 3
            launch.prepare(source(data_folder), check(TrainConfig()), reducer)
        else:

            def compute():
                if rank_world.rank == 1:
                    os._exit(3)
                return {rank_world.rank: np.ones(4)}

            reducer.sum({"x": (4,)}, ["x"] * rank_world.size, compute)
    except UserError as error:
        seen = {"error": type(error).__name__, "exit_code": error.exit_code}
        seen["reports"] = getattr(error, "report", rank_world.rank == 0)
        seen["message"] = str(error)
    seen["seconds"] = time.monotonic() - started
    (out / f"{how}-{rank_world.rank}.json").write_text(json.dumps(seen))


def signal(rank_world: world.World, out: Path) -> None:
    """Rank 2 alone received SIGTERM (15): every rank learns it at the same sum."""
    reducer = Reducer(rank_world)
    reducer.stop_requested = 15 if rank_world.rank == 2 else 0
    reducer.sum({"x": (1,)}, ["x"] * rank_world.size, lambda: {rank_world.rank: np.ones(1)})
    (out / f"signal-{rank_world.rank}.json").write_text(json.dumps(reducer.stop_agreed))


def run(scenario: str, rank: int, size: int, store: str, out: str) -> None:
    """``main``, leaving the traceback of a failure in OUT/RANK.err for the test to show."""
    try:
        main(scenario, rank, size, store, out)
    except BaseException:
        (Path(out) / f"{rank}.err").write_text(traceback.format_exc())
        raise


def main(scenario: str, rank: int, size: int, store: str, out: str) -> None:
    rank_world = world.World(rank=rank, size=size, local_rank=rank, local_size=size)
    rank_world = world.start(rank_world, init_method=f"file://{store}", timeout=TIMEOUT_S)
    out = Path(out)
    train(rank_world, out.parent / "data", out)
    if scenario == "train-and-fail":  # the world survives an error, not a death
        signal(rank_world, out)
        fail(rank_world, out.parent / "bad", out, "bad-cell")
        fail(rank_world, out.parent / "bad", out, "die")


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
