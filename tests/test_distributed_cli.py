"""``handgrad train`` under ``torchrun --standalone``: a run begun in one process is
resumed by two ranks, and ends bit for bit where one process alone ends it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import handgrad
from handgrad.cli import main
from handgrad.model import LinearModel

# 25,000 rows: 20,000 training rows are two chunks of the sharded statistics (16,384 and
# 3,616 rows) and the 5,000 test rows a third, so both ranks have work, unevenly.
DATA = ["--dataset", "synthetic", "--samples", "25000", "--features", "8", "--targets", "2"]
FLAGS = ["--deterministic", "--dtype", "float64", "--tol", "0", "--quiet"]


def torchrun() -> list[str]:
    script = Path(sys.executable).with_name("torchrun")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "torch.distributed.run"]


def test_torchrun_resumes_a_run_bit_for_bit(tmp_path):
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
