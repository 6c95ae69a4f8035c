"""The tests' fakegpu device itself (fakegpu.py): a build stopped half-way must not stall
the next test run, which would wait on torch's leftover lock file for ever."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

import pytest

import fakegpu


@pytest.mark.skipif(bool(fakegpu.missing_tool()), reason=str(fakegpu.missing_tool()))
def test_a_lock_left_by_a_killed_build_does_not_stall_the_next():
    build = Path(sys.prefix) / "torch_extensions" / fakegpu.NAME
    build.mkdir(parents=True, exist_ok=True)
    with open(build / "handgrad.lock", "w") as held:  # as a build killed half-way
        fcntl.flock(held, fcntl.LOCK_EX)
        (build / "lock").touch()  # what torch leaves then
    script = "import fakegpu, torch; print(torch.ones(2, device=fakegpu.register()).device)"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fakegpu:0"
    assert not (build / "lock").exists()
