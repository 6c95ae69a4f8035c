"""The tests' fakegpu device itself (fakegpu.py): it refuses what CUDA refuses and takes
what CUDA takes, and a build stopped half-way does not stall the next test run (which
would wait on torch's leftover lock file for ever)."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

import pytest

import fakegpu

from conftest import TEST_DEVICE

# Where fakegpu can be built, and where no real GPU is under test (make gpu-check runs on
# the lent machine's own torch, which fakegpu.cpp has not been built against).
NEEDS = pytest.mark.skipif(
    bool(fakegpu.missing_tool()) or TEST_DEVICE == "cuda",
    reason=f"{fakegpu.missing_tool() or 'a real GPU is under test'}",
)


@NEEDS
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
    assert done.stdout.strip() == "fakegpu:0"  # built, not stalled (timeout=240 above)


FIDELITY = r"""
import torch

fake = torch.device("fakegpu")
X, W = torch.ones(3, 2, device=fake), torch.ones(2, 2, device=fake)
refused = {
    "a CPU matrix": lambda: X @ torch.ones(2, 2),
    "a 0-dim CPU bias to addmm": lambda: torch.addmm(torch.tensor(1.0), X, W),
    "a CPU out=": lambda: torch.add(X, 1, out=torch.tensor(0.0)),
    "CPU values to index_put_": lambda: X.__setitem__(torch.tensor([0]), torch.ones(1, 2)),
    "a CPU generator": lambda: torch.randn(3, device=fake, generator=torch.Generator()),
    "an overlapping write": lambda: X.view(-1)[1:].copy_(X.view(-1)[:-1]),
    "set_ onto a CPU tensor": lambda: torch.tensor(1.0).set_(X),
}
for name, call in refused.items():
    try:
        call()
    except RuntimeError:
        continue
    raise SystemExit(f"fakegpu took {name}, which CUDA refuses")
# What CUDA takes: a 0-dim CPU number in a pointwise op, CPU indices, copies both ways.
assert (X * torch.tensor(2.0)).device == X.device
assert X[torch.tensor([1])].device == X.device
X[1:, 0].add_(1.0)  # through a view, into X's memory
assert X.cpu().tolist() == [[1.0, 1.0], [2.0, 1.0], [2.0, 1.0]]
print("ok")
"""


@NEEDS
def test_fakegpu_refuses_what_cuda_refuses_and_takes_what_it_takes():
    import os

    site = str(Path(__file__).with_name("fakegpu_site"))
    done = subprocess.run(
        [sys.executable, "-c", FIDELITY],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": site},
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.strip() == "ok"
