"""The benchmark harness: it fails a run whose two sides disagree, marks load, pins
threads, writes well-formed results, and the README's table is the committed JSON's.

Benchmarks are not timed tests: this checks the harness's behaviour, never its numbers.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import types

import pytest
import torch
from benchmarks import readme
from benchmarks import run as bench
from benchmarks.timing import Check, Result, Timing
from threadpoolctl import threadpool_info, threadpool_limits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURES = {
    "1 op overhead",
    "2 lab training",
    "3 full-batch epoch",
    "4 time to solution",
    "5 mini-batch",
    "6 memory",
    "7 convergence",
    "8 start-up",
    "9 torchrun",
}


def fake_figure(name: str, value: float, tolerance: float = 1e-6, raises: bool = False):
    """A figure module whose two sides differ by ``value`` (relative)."""

    def run(quick: bool) -> list[Result]:
        if raises:
            raise RuntimeError("the path it meant to measure was not taken")
        return [
            Result.timed(
                name,
                "a case",
                Timing(2.0, 1.0, 3.0, 7),
                Timing(4.0, 3.0, 5.0, 7),
                peer_name="peer",
                goal=1.0,
                handgrad_side="float32, path x",
                peer_side="float32, path y",
                includes="everything",
                checks=[Check("∂W, ‖Δ‖/‖∂W‖", value, tolerance, "float32 rounding")],
            )
        ]

    return types.SimpleNamespace(__name__=f"benchmarks.{name}", run=run)


@pytest.fixture
def figures(monkeypatch):
    """Replace the harness's figures; restore the thread counts it pins afterwards."""
    threads, pools = torch.get_num_threads(), threadpool_info()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(name, os.environ.get(name, ""))  # undone by monkeypatch
    yield lambda *modules: monkeypatch.setattr(bench, "FIGURES", list(modules))
    torch.set_num_threads(threads)
    threadpool_limits(limits={pool["prefix"]: pool["num_threads"] for pool in pools})


def run_main(tmp_path, *args):
    out = tmp_path / "r.json"
    code = bench.main(["--out", str(out), "--no-chart", *args])
    return code, json.loads(out.read_text())


def test_a_disagreeing_figure_fails_the_run_and_is_named(tmp_path, figures, capsys):
    figures(fake_figure("fig_agrees", 1e-8), fake_figure("fig_disagrees", 0.1))
    code, payload = run_main(tmp_path)
    assert code == 1
    failed = [line for line in capsys.readouterr().err.splitlines() if "FAILED" in line]
    assert len(failed) == 1
    assert "fig_disagrees" in failed[0] and "∂W" in failed[0]
    assert "0.1 > tolerance 1e-06" in failed[0]
    assert [r["checks"][0]["ok"] for r in payload["results"]] == [True, False]
    assert len(payload["failures"]) == 1
    assert "| FAILED |" in readme.render(payload)


def test_agreeing_figures_pass(tmp_path, figures):
    figures(fake_figure("fig_a", 0.0), fake_figure("fig_b", 5e-7))
    code, payload = run_main(tmp_path)
    assert code == 0 and payload["failures"] == []


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_non_finite_disagreement_fails(tmp_path, figures, value):
    figures(fake_figure("fig_nan", value))
    assert run_main(tmp_path)[0] == 1


def test_a_figure_that_raises_fails_the_run_and_the_others_still_run(tmp_path, figures, capsys):
    figures(fake_figure("fig_broken", 0.0, raises=True), fake_figure("fig_fine", 0.0))
    code, payload = run_main(tmp_path)
    assert code == 1
    assert "fig_broken raised RuntimeError" in capsys.readouterr().err
    assert [r["figure"] for r in payload["results"]] == ["fig_fine"]


def test_a_row_measured_under_load_is_marked(tmp_path, figures, monkeypatch):
    figures(fake_figure("fig_a", 0.0))
    cores = os.cpu_count() or 1
    monkeypatch.setattr(bench, "load_average", lambda: cores + 2.5)
    code, payload = run_main(tmp_path)
    (row,) = payload["results"]
    assert code == 0 and row["loaded"] is True and row["load"] == cores + 2.5
    assert "loaded" in bench.rows(payload["results"])[0][-1]
    assert payload["warnings"]
    monkeypatch.setattr(bench, "load_average", lambda: 0.1)
    assert run_main(tmp_path)[1]["results"][0]["loaded"] is False


def test_threads_are_pinned_and_reported(tmp_path, figures):
    figures(fake_figure("fig_a", 0.0))
    _, payload = run_main(tmp_path, "--threads", "1")
    assert torch.get_num_threads() == 1
    assert payload["machine"]["threads_pinned"] == payload["machine"]["torch_threads"] == 1
    assert all(lib.endswith(": 1") for lib in payload["machine"]["libraries"])


def test_the_readme_speed_table_is_the_committed_result():
    with open(os.path.join(ROOT, "benchmarks", "results", "latest.json")) as f:
        payload = json.load(f)
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    assert readme.block(text) == readme.render(payload), "run: python -m benchmarks.readme"
    assert {r["figure"] for r in payload["results"]} >= FIGURES
    if payload["quick"]:  # a smoke run may stand in, but the table must say so
        assert "(a --quick run)" in readme.block(text)
    else:  # a full run; figures run at their quick size (--quick-for) are named
        small = payload.get("quick_for", [])
        if small:
            assert f"at their quick size: {', '.join(small)}" in readme.block(text)
        full = [r for r in payload["results"] if f"fig{r['figure'].split()[0]}" not in small]
        assert full and all(r["repeats"] >= 7 for r in full)


def test_quick_run_writes_well_formed_json(tmp_path):
    out = tmp_path / "results.json"
    # One thread: on a shared, loaded machine two threads per process can stall for
    # seconds at each synchronisation; this checks the harness, not the speed.
    command = [sys.executable, "-m", "benchmarks.run", "--quick", "--threads", "1"]
    command += ["--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    payload = json.loads(out.read_text())
    assert {"cpu", "cores", "torch", "date", "torch_threads", "libraries"} <= payload[
        "machine"
    ].keys()
    assert payload["quick"] is True and payload["failures"] == []
    assert {r["figure"] for r in payload["results"]} == FIGURES
    for r in payload["results"]:
        assert r["handgrad_side"] and r["peer_side"] and r["includes"], r["case"]
        assert r["checks"] and all(c["ok"] for c in r["checks"]), r["case"]
        assert math.isfinite(r["handgrad"]) and r["handgrad"] > 0, r
        assert math.isfinite(r["peer"]) and r["peer"] > 0, r
        low, high = r["handgrad_range"]
        assert low <= r["handgrad"] <= high
    assert (tmp_path / "results.png").stat().st_size > 0
    assert not list(tmp_path.glob("*.tmp"))  # the atomic writes left no temporary behind


def test_a_merged_figure_replaces_its_rows_and_the_table_names_its_own_date():
    from benchmarks import merge

    with open(os.path.join(ROOT, "benchmarks", "results", "latest.json")) as f:
        base = json.load(f)
    row = next(r for r in base["results"] if r["figure"] == "7 convergence") | {"case": "new"}
    run = {
        "quick": False,
        "machine": base["machine"] | {"date": "2031-01-02T00:00:00", "load_average_1min": 0.5},
        "results": [row, {"figure": "3 full-batch epoch", "case": "not merged"}],
    }
    merged = merge.merge(base | {"quick_for": ["fig7"]}, run, "fig7")
    sevens = [r for r in merged["results"] if r["figure"] == "7 convergence"]
    assert sevens == [row] and merged["quick_for"] == []
    assert all(r.get("case") != "not merged" for r in merged["results"])
    assert (
        len(merged["results"])
        == len(base["results"])
        - len([r for r in base["results"] if r["figure"] == "7 convergence"])
        + 1
    )
    assert "Figure 7's rows come from a run of that figure alone" in readme.render(merged)
    assert "on 2031-01-02, 1-minute load 0.5" in readme.render(merged)
    with pytest.raises(ValueError, match="no full-size rows of figure 6"):
        merge.merge(base, run, "fig6")


def test_the_torch_range_note_speaks_only_outside_the_declared_range(monkeypatch):
    from benchmarks import versions

    declared = versions.declared_torch()
    with open(os.path.join(ROOT, "constraints.txt")) as constraints:
        pinned = next(line[7:].strip() for line in constraints if line.startswith("torch=="))
    assert pinned in declared  # the dev environment's release is a declared one
    monkeypatch.setattr(versions.torch, "__version__", f"{pinned}+cpu")
    assert versions.torch_range_note() is None
    monkeypatch.setattr(versions.torch, "__version__", "2.0.1+cu118")
    note = versions.torch_range_note()
    assert f"torch 2.0.1 is outside the range pyproject.toml declares ({declared})" in note
    assert "make test-torch TORCH=2.0.1" in note


def test_a_gpu_figure_that_disagrees_fails_the_run_but_not_the_other_figures(monkeypatch, capsys):
    from benchmarks import gpu

    def wrong(*args):
        raise gpu.DisagreementError("manual step: the two sides disagree (relative error 1.0)")

    monkeypatch.setattr(gpu, "manual_step", wrong)
    assert gpu.main(["--device", "cpu", "--quick"]) == 1
    out = capsys.readouterr().out
    assert "manual step: the two sides disagree (relative error 1.0) NO" in out
    assert "GDRegressor.fit" in out and out.count("cpu vs cpu, ") == 4  # later sections ran
