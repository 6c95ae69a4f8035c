"""Shared fixtures: seeded random problems in float64, and the device tests run on."""

from __future__ import annotations

import os
from pathlib import Path

# HANDGRAD_TEST_DEVICE=cuda runs the device tests (tests/test_devices.py) on a GPU, and
# HANDGRAD_TEST_DEVICE=fakegpu on a second device that computes on the CPU (fakegpu.py);
# unset, they run on the CPU. A device that was asked for but is missing fails the
# run rather than passing it untested. Off CUDA no GPU is visible, so that the tests
# that train with --device auto run on the CPU on a machine with a GPU too.
TEST_DEVICE = os.environ.get("HANDGRAD_TEST_DEVICE", "cpu")
DEVICES_UNDER_TEST = ("cpu", "cuda", "fakegpu")
if TEST_DEVICE != "cuda":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_terminal_summary(terminalreporter):
    # Last, where -q still shows it: a pass on an undeclared torch is not a declared one.
    from benchmarks.versions import torch_range_note

    note = torch_range_note()
    if note:
        terminalreporter.write_line(f"handgrad: {note}", yellow=True)


def pytest_configure(config):
    if TEST_DEVICE == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError(
            "HANDGRAD_TEST_DEVICE=cuda, but torch sees no CUDA device here; unset it to "
            "run the suite on the CPU."
        )
    if TEST_DEVICE not in DEVICES_UNDER_TEST:  # mps: no float64, so training refuses it
        raise pytest.UsageError(
            f"HANDGRAD_TEST_DEVICE must be cpu, cuda or fakegpu; got {TEST_DEVICE!r}."
        )
    if TEST_DEVICE == "fakegpu":
        import fakegpu

        missing = fakegpu.missing_tool()
        if missing:
            raise pytest.UsageError(f"HANDGRAD_TEST_DEVICE=fakegpu builds an extension: {missing}.")
        fakegpu.register()
        site = str(Path(__file__).with_name("fakegpu_site"))
        path = [site, os.environ.get("PYTHONPATH")]
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, path))


def pytest_addoption(parser):
    parser.addoption(
        "--only-device-tests",
        action="store_true",
        help="only the tests that take the device under test (the `device` fixture): make "
        "test's fakegpu run, beside the whole suite on the CPU",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--only-device-tests"):
        takes = [("device" in getattr(item, "fixturenames", ()), item) for item in items]
        config.hook.pytest_deselected(items=[item for chosen, item in takes if not chosen])
        items[:] = [item for chosen, item in takes if chosen]


def make_problem(q=7, n=4, p=3, dtype=torch.float64, seed=0, requires_grad=True):
    """Random X (q, n), W (n, p), b (p,), Y (q, p) from a fixed seed."""
    gen = torch.Generator().manual_seed(seed)
    X, W, b, Y = (
        torch.randn(shape, generator=gen, dtype=dtype) for shape in ((q, n), (n, p), (p,), (q, p))
    )
    return tuple(t.requires_grad_(requires_grad) for t in (X, W, b, Y))


@pytest.fixture
def problem():
    return make_problem()


@pytest.fixture
def device() -> torch.device:
    """The device under test: ``HANDGRAD_TEST_DEVICE``, the CPU by default."""
    return torch.device(TEST_DEVICE)
