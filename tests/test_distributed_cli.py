"""``handgrad train`` under ``torchrun --standalone``: a run begun in one process is
resumed by two ranks, and ends bit for bit where one process alone ends it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import handgrad
from handgrad.cli import main
from handgrad.data.sources import chunk_rows_for
from handgrad.distributed import world
from handgrad.model import LinearModel

# 12,000 rows of 100 features and 2 targets, held in memory, are cut into groups of
# chunk_rows_for(102) = 10,280 rows under a reducer: two groups, one per rank, unevenly.
DATA = ["--dataset", "synthetic", "--samples", "12000", "--features", "100", "--targets", "2"]
FLAGS = ["--deterministic", "--dtype", "float64", "--tol", "0", "--quiet", "--optimizer", "gd"]
FLAGS += ["--lr", "0.01"]  # slow enough that 30 epochs do not reach the optimum


def torchrun() -> list[str]:
    script = Path(sys.executable).with_name("torchrun")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "torch.distributed.run"]


@pytest.fixture
def threads():
    """--deterministic in this process takes one thread for it: give them back after."""
    before = torch.get_num_threads()
    yield
    if world._thread_limits is not None:
        world._thread_limits.restore_original_limits()
    torch.set_num_threads(before)


def test_torchrun_resumes_a_run_bit_for_bit(tmp_path, threads):
    assert chunk_rows_for(102) < 12_000  # two groups, so rank 1 has work too
    alone, split = tmp_path / "alone", tmp_path / "split"
    assert main(["train", *DATA, *FLAGS, "--epochs", "30", "--out", str(alone)]) == 0
    assert main(["train", *DATA, *FLAGS, "--epochs", "10", "--out", str(split)]) == 0
    # This handgrad, whatever the working folder; OMP_NUM_THREADS set keeps torchrun quiet.
    source = str(Path(handgrad.__file__).parents[1])
    path = os.pathsep.join([source, *filter(None, [os.environ.get("PYTHONPATH")])])
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    command = [*torchrun(), "--standalone", "--nproc-per-node", "2", "-m", "handgrad"]
    done = subprocess.run(
        [*command, "train", "--resume", str(split), "--epochs", "30"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("resuming") == 1  # rank 0 alone speaks
    metrics = json.loads((split / "metrics.json").read_text())
    expected = json.loads((alone / "metrics.json").read_text())
    assert metrics["epochs"] == expected["epochs"] == 30
    assert metrics["history"]["train_mse"] == expected["history"]["train_mse"]
    got, want = LinearModel.load(split / "model"), LinearModel.load(alone / "model")
    assert np.array_equal(got.W.numpy(), want.W.numpy())
    assert np.array_equal(got.b.numpy(), want.b.numpy())
    assert not list(tmp_path.glob("runs"))  # rank 1 wrote no run directory of its own
