"""One rank of the distributed tests, as its own process (``tests/test_distributed.py``).

    python distributed_worker.py SCENARIO RANK SIZE STORE OUT

joins a world of SIZE ranks through the file STORE (``file://``, no port), trains (OUT/
RANK.npz) and, for SCENARIO "train-and-fail", sees rank 2 receive a signal and rank 1
fail twice (OUT/*.json).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from handgrad.config import TrainConfig, check
from handgrad.data.datasets import synthetic
from handgrad.distributed import sharded, world
from handgrad.distributed.reduce import Reducer, reports
from handgrad.errors import UserError
from handgrad.training import Trainer, prepare

# Rows per chunk here: 800 training rows are 6 chunks (5 of 150, one of 50) and 200 test
# rows 2 more, so 2 and 3 ranks get uneven shares (4 + 4; 3 + 3 + 2) and a short chunk.
CHUNK_ROWS = 150
TIMEOUT_S = 20.0
CONFIGS = {
    "stats": {"path": "stats", "max_epochs": 40},
    "full": {"path": "fused", "max_epochs": 6},
    "minibatch": {"batch_size": 64, "optimizer": "sgd", "momentum": 0.5, "max_epochs": 2},
}


def dataset():
    data, _, _ = synthetic(samples=1000, features=6, targets=2, noise=0.5, seed=3)
    data.X[:, 0] += 1e4  # a column far from zero: the shifted Gram keeps its precision
    return data


def train(rank_world: world.World | None, out: Path, name: str | None = None) -> None:
    """Every run of CONFIGS, summed plainly and deterministically; with ``rank_world``
    None, the trainer of one process with no reducer at all (the reference)."""
    sharded.CHUNK_ROWS = CHUNK_ROWS
    data = dataset()
    results = {}
    for name, options in CONFIGS.items():
        config = check(TrainConfig(dtype="float64", tol=0.0, **options))
        for deterministic in (False, True) if rank_world else (False,):
            reducer = Reducer(rank_world, deterministic) if rank_world else None
            trainer = Trainer(prepare(data, config), config, reducer).fit()
            key = f"{name}-{'det' if deterministic else 'sum'}"
            results[f"{key}-W"] = trainer.W.numpy()
            results[f"{key}-b"] = trainer.b.numpy()
            results[f"{key}-S"] = trainer.stats.S.numpy()
            results[f"{key}-calls"] = np.array(reducer.calls if reducer else 0)
            results[f"{key}-epochs"] = np.array(trainer.epoch)
    np.savez(out / f"{rank_world.rank if rank_world else 'plain'}.npz", **results)


def fail(rank_world: world.World, out: Path, how: str) -> None:
    """Rank 1 fails (a UserError while computing its partial, or dies outright); the
    others record what stopped them, and when, in OUT/how-RANK.json."""
    reducer = Reducer(rank_world)

    def compute():
        if rank_world.rank == 1:
            if how == "die":
                os._exit(3)
            raise UserError("data.csv, row 7: 'abc' is not a number.")
        return {rank_world.rank: np.ones(4)}

    started = time.monotonic()
    seen = {"error": None}
    try:
        reducer.sum({"x": (4,)}, ["x"] * rank_world.size, compute)
    except UserError as error:
        seen = {"error": type(error).__name__, "exit_code": error.exit_code}
        seen["reports"] = reports(error, rank_world)
    seen["seconds"] = time.monotonic() - started
    (out / f"{how}-{rank_world.rank}.json").write_text(json.dumps(seen))


def signal(rank_world: world.World, out: Path) -> None:
    """Rank 2 alone received SIGTERM (15): every rank learns it at the same sum."""
    reducer = Reducer(rank_world)
    reducer.stop_requested = 15 if rank_world.rank == 2 else 0
    reducer.sum({"x": (1,)}, ["x"] * rank_world.size, lambda: {rank_world.rank: np.ones(1)})
    (out / f"signal-{rank_world.rank}.json").write_text(json.dumps(reducer.stop_agreed))


def main(scenario: str, rank: int, size: int, store: str, out: str) -> None:
    rank_world = world.World(rank=rank, size=size, local_rank=rank, local_size=size)
    rank_world = world.start(rank_world, init_method=f"file://{store}", timeout=TIMEOUT_S)
    train(rank_world, Path(out))
    if scenario == "train-and-fail":  # the world survives an error, not a death
        signal(rank_world, Path(out))
        fail(rank_world, Path(out), "error")
        fail(rank_world, Path(out), "die")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
