"""The examples run as a user would run them, and do what they say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name, *args, cwd=None):
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        timeout=300,
    )


def test_descent_by_hand_loss_falls_and_is_logged(tmp_path):
    result = run_example("descent_by_hand.py", "--logdir", str(tmp_path / "log"))
    losses = [float(x) for x in re.findall(r"loss\s+([0-9.]+)", result.stdout)]
    assert len(losses) == 11
    assert losses[-1] < 0.1 * losses[0]
    assert all(later <= earlier for earlier, later in zip(losses, losses[1:], strict=False))
    assert list((tmp_path / "log").glob("events.out.tfevents.*"))


def test_gradient_check_example_reports_ok():
    result = run_example("gradient_check.py")  # check=True: exit code 0 means all ok
    assert result.stdout.strip().endswith("all gradients ok")
    assert result.stdout.count("input ") == 5  # X, W, b, then Y_hat, Y
