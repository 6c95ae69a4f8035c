"""No run loses its work: kill -9, Ctrl-C and SIGTERM, atomic files, reproducibility."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from handgrad.runs.atomic import write_text
from handgrad.runs.checkpoint import load_checkpoint

# Mini-batch Adam with a step schedule: shuffling, optimizer and scheduler state all
# have to come back for the resumed run to end where the uninterrupted one does.
TRAIN = [
    "train", "--dataset", "synthetic", "--samples", "2000", "--features", "20",
    "--targets", "2", "--batch-size", "16", "--optimizer", "adam", "--lr", "0.001",
    "--scheduler", "step", "--lr-step-size", "4", "--lr-gamma", "0.5",
    "--epochs", "20", "--tol", "0", "--checkpoint-every", "1", "--val-fraction", "0.1",
]  # fmt: skip


def handgrad(args, cwd, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "handgrad", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def finish(process, timeout=300):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def weights(run: Path):
    tensors = load_file(run / "model" / "model.safetensors")
    return tensors["W"], tensors["b"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("whole")
    code, _, err = finish(handgrad([*TRAIN, "--out", "run", "--quiet"], cwd))
    assert code == 0, err
    return cwd / "run"


def wait_for_epochs(run: Path, process, epochs: int, timeout=120.0) -> None:
    """Wait until a checkpoint of at least ``epochs`` epochs exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be interrupted"
        try:
            if load_checkpoint(run / "checkpoint.pt")[0].epoch >= epochs:
                return
        except Exception:  # not there yet, or being replaced right now
            pass
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared in time")


def test_kill_9_then_resume_gives_the_same_weights(tmp_path, uninterrupted):
    process = handgrad([*TRAIN, "--out", "run", "--quiet"], tmp_path)
    wait_for_epochs(tmp_path / "run", process, 3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "run" / "model").exists()
    state, _ = load_checkpoint(tmp_path / "run" / "checkpoint.pt")  # readable after a kill
    assert 3 <= state.epoch < 20
    code, _, err = finish(handgrad(["train", "--resume", "run", "--quiet"], tmp_path))
    assert code == 0, err
    W, b = weights(tmp_path / "run")
    W_whole, b_whole = weights(uninterrupted)
    assert torch.equal(W, W_whole) and torch.equal(b, b_whole)
    assert logged_steps(tmp_path / "run") == list(range(1, 21))  # each epoch once, in one file


def logged_steps(run: Path) -> list[int]:
    assert len(list((run / "tensorboard").iterdir())) == 1
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return [event.step for event in events.Scalars("Loss/train")]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_saves_a_resumable_run(tmp_path, uninterrupted, signum):
    process = handgrad([*TRAIN, "--out", "run", "--quiet"], tmp_path)
    wait_for_epochs(tmp_path / "run", process, 2)
    process.send_signal(signum)
    code, _, err = finish(process)
    assert code == 128 + signum
    assert "Traceback" not in err
    assert f"by {signal.Signals(signum).name}; checkpoint saved" in err
    assert "handgrad train --resume run" in err
    run = tmp_path / "run"
    assert (run / "metrics.json").is_file() and list((run / "tensorboard").iterdir())
    assert not (run / "model").exists()  # an unfinished run is no model
    code, _, err = finish(handgrad(["train", "--resume", "run", "--quiet"], tmp_path))
    assert code == 0, err
    W, b = weights(run)
    W_whole, b_whole = weights(uninterrupted)
    assert torch.equal(W, W_whole) and torch.equal(b, b_whole)
    assert logged_steps(run) == list(range(1, 21))


def test_same_seed_same_weights(tmp_path, uninterrupted):
    code, _, err = finish(handgrad([*TRAIN, "--out", "again", "--quiet"], tmp_path))
    assert code == 0, err
    W, b = weights(tmp_path / "again")
    W_whole, b_whole = weights(uninterrupted)
    assert torch.equal(W, W_whole) and torch.equal(b, b_whole)


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    write_text(target, "old")

    class BoomError(Exception):
        pass

    def failing(tmp):
        tmp.write_text("half")
        raise BoomError

    from handgrad.runs.atomic import write_atomic

    with pytest.raises(BoomError):
        write_atomic(target, failing)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
