"""The benchmark driver's --quick run writes well-formed results (about 30 s).

Benchmarks are not timed tests: this checks the harness's output, never its numbers.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_run_writes_well_formed_json(tmp_path):
    out = tmp_path / "results.json"
    command = [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    payload = json.loads(out.read_text())
    assert {"cpu", "cores", "torch", "date"} <= payload["machine"].keys()
    assert payload["quick"] is True
    figures = {r["figure"] for r in payload["results"]}
    assert figures == {
        "1 op overhead",
        "2 lab training",
        "3 full-batch epoch",
        "4 time to solution",
        "5 mini-batch",
        "6 memory",
        "8 start-up",
    }
    for r in payload["results"]:
        assert {"case", "handgrad", "peer", "ratio", "goal", "met", "unit", "notes"} <= r.keys()
        assert math.isfinite(r["handgrad"]) and r["handgrad"] > 0, r
        assert math.isfinite(r["peer"]) and r["peer"] > 0, r
        assert r["met"] == (r["ratio"] <= r["goal"])
    assert (tmp_path / "results.png").stat().st_size > 0
    assert not list(tmp_path.glob("*.tmp"))  # the atomic writes left no temporary behind
