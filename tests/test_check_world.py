"""The checker on real-world-style Functions (``gallery.WORLD``): right ones are never
called wrong, at random sizes; wrong ones get the right input and kind named."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import handgrad
from gallery_world import WORLD, MatmulSavedVariables, MulNeeds, World

RIGHT = [w for w in WORLD if w.verdict == "OK"]


def checked(world: World, **sizes) -> handgrad.GradientReport:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # saved_variables, on purpose
        return handgrad.check(world.function, *world.inputs(**sizes))


def test_the_gallery_covers_what_people_write():
    assert len({w.function for w in WORLD}) >= 20
    assert {"OK", "WRONG", "UNDEFINED"} == {w.verdict for w in WORLD}


@pytest.mark.parametrize("world", WORLD, ids=lambda w: w.name)
def test_verdict_and_diagnosis_per_input(world):
    report = checked(world)
    assert report.verdict == world.verdict, str(report)
    assert tuple(entry.diagnosis for entry in report.inputs) == world.diagnoses, str(report)
    for entry in report.inputs:
        if entry.index in world.factors:
            assert entry.factor == pytest.approx(world.factors[entry.index], rel=1e-6)
    text = str(report)
    for phrase in world.says:
        assert phrase in text, text
    if world.verdict == "WRONG" and world.diagnoses != ("ok",) * len(world.diagnoses):
        wrong = [entry for entry in report.inputs if entry.wrong]
        assert all(f"{entry.label}: {entry.diagnosis}: " in text for entry in wrong)


@settings(max_examples=40, deadline=None)
@given(
    world=st.sampled_from(RIGHT),
    q=st.integers(1, 5),
    n=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_right_functions_are_never_called_wrong(world, q, n, seed, dtype):
    inputs = [
        x.to(dtype) if isinstance(x, torch.Tensor) and x.is_floating_point() else x
        for x in world.inputs(q=q, n=n, seed=seed)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # saved_variables, on purpose
        report = handgrad.check(world.function, *inputs)
    assert report.verdict != "WRONG", str(report)
    assert not any(entry.wrong for entry in report.inputs), str(report)


def test_the_forward_mode_check_shows_no_warning_of_torchs_own():
    # A new process: torch scripts its jvp decompositions once, on forward AD's first use,
    # and torch.jit.script warns of its own deprecation then (shown by default from 2.14).
    script = (
        "import handgrad; from gallery_world import ExpWithJvp; import torch; "
        "print(handgrad.check(ExpWithJvp, torch.randn(3, 2)).verdict)"
    )
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", script],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.strip() == "OK", done.stderr
    assert "Warning" not in done.stderr, done.stderr


def test_the_mse_hint_is_given_only_for_an_mse():
    texts = {w.name: str(checked(w)) for w in WORLD if "scaled" in w.diagnoses}
    assert "2 from the square" in texts["mse missing 2, with reduction"]
    for name, text in texts.items():
        if "mse" not in name:
            assert "2 from the square" not in text, name


def test_saved_variables_runs_on_the_manual_chain():
    X, W = torch.randn(4, 3, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    with pytest.warns(DeprecationWarning, match="saved_variables"):
        _, ctx = handgrad.forward(MatmulSavedVariables, X, W)
        grad_X, grad_W = ctx.backward(torch.ones(4, 2, dtype=torch.float64))
    torch.testing.assert_close(grad_W, X.T @ torch.ones(4, 2, dtype=torch.float64))


def test_a_context_limit_is_not_a_wrong_verdict(monkeypatch):
    # handgrad's Context as it was before it had saved_variables: the manual chain
    # raises where autograd runs, which must not make a right Function WRONG.
    monkeypatch.delattr(handgrad.Context, "saved_variables")
    world = next(w for w in WORLD if w.function is MatmulSavedVariables)
    report = checked(world)
    assert report.verdict == "OK" and report.ok, str(report)
    assert report.chaining.status == "unsupported"
    assert "a limit of handgrad's Context, not a fault of MatmulSavedVariables" in str(report)


def test_needs_input_grad_is_honoured_when_an_input_is_frozen():
    a = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 2, dtype=torch.float64)
    report = handgrad.check(MulNeeds, a, b)
    assert report.ok and [e.checked for e in report.inputs] == [True, False]
    assert report.needs_input_grad.status == "not applicable"


def test_undefined_inputs_count_and_json():
    world = next(w for w in WORLD if w.name == "log, negatives")
    x = world.inputs()[0]
    report = handgrad.check(world.function, x)
    entry = report.inputs[0]
    assert entry.undefined == int((x <= 0).sum()) > 0
    assert report.double_backward.status == "skipped"
    data = report.to_dict()
    assert data["verdict"] == "OK" and data["inputs"][0]["undefined"] == entry.undefined


def test_a_pole_or_a_kink_within_the_step_is_not_called_wrong():
    from gallery_world import Log, LogSignFlipped

    x = torch.tensor([[2e-6, 0.5, 1.5], [1e-5, 3.0, 0.2]], dtype=torch.float64)
    report = handgrad.check(Log, x)  # numeric ≈ 549306 at 2e-6, where 1/x = 500000
    assert report.verdict == "OK" and report.inputs[0].undefined == 2, str(report)
    assert handgrad.check(LogSignFlipped, x).inputs[0].diagnosis == "sign-flipped"
    kink = handgrad.check(torch.abs, torch.tensor([3e-7, 1.0, -2.0], dtype=torch.float64))
    assert kink.verdict == "OK" and kink.inputs[0].undefined == 1


def test_a_check_draws_from_its_seed_alone_and_leaves_the_callers_random_stream():
    # gradgradcheck and the jvp check draw random directions from torch's global stream;
    # the check seeds them from its own seed, in a fork: the same call gives the same
    # report whatever ran before, and a script seeded before a check draws, after it, what
    # it would have drawn without it.
    world = next(w for w in WORLD if w.name == "standardize")  # gradgradcheck fails: numbers
    reports = []
    for before in (0, 1):
        torch.manual_seed(before)
        expected = torch.rand(3)
        torch.manual_seed(before)
        reports.append(str(checked(world)))
        assert torch.equal(torch.rand(3), expected)
    assert "gradgradcheck): failed" in reports[0]
    assert reports[0] == reports[1]
