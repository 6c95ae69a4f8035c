"""Bad flags, run directories, models and divergence through the real command line.

Each case runs ``python -m handgrad`` in a subprocess and checks the exit code, that
stderr says what is wrong in at most two lines (warnings aside), and that no traceback
shows. Every message is also quoted in docs/errors.md, which a test keeps true.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

DOCS = Path(__file__).resolve().parent.parent / "docs" / "errors.md"


@dataclass
class Case:
    id: str
    args: list[str]
    message: str  # a regular expression the first stderr line must match
    code: int = 2
    setup: str | None = None  # the name of a function below that prepares tmp_path


def run_cli(args, cwd, env=None):
    # No GPU is visible to the command, so that the cases about a missing device say the
    # same on a machine with one.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""} if env is None else env
    return subprocess.run(
        [sys.executable, "-m", "handgrad", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env=env,
    )


# --- set-ups: each makes what its case needs inside the working directory ----------------
def finished_run(cwd: Path) -> None:
    assert (
        run_cli(["train", "--dataset", "linnerud", "--out", "run", "--quiet"], cwd).returncode == 0
    )


def run_at_its_limit(cwd: Path) -> None:
    args = ["train", "--dataset", "linnerud", "--epochs", "5", "--out", "run", "--quiet"]
    assert run_cli(args, cwd).returncode == 0


def corrupt_checkpoint(cwd: Path) -> None:
    run_at_its_limit(cwd)
    (cwd / "run" / "checkpoint.pt").write_bytes(b"not a checkpoint")


def run_recorded_on_cuda(cwd: Path) -> None:
    """A run that was trained with --device cuda, to go on where there is none."""
    run_at_its_limit(cwd)
    recorded = json.loads((cwd / "run" / "config.json").read_text())
    recorded["config"]["device"] = "cuda"
    (cwd / "run" / "config.json").write_text(json.dumps(recorded))


def interrupted_run(cwd: Path) -> None:
    """What Ctrl-C leaves: no model, and metrics.json saying so."""
    run_at_its_limit(cwd)
    model = cwd / "run" / "model"
    for path in model.iterdir():
        path.unlink()
    model.rmdir()
    metrics = json.loads((cwd / "run" / "metrics.json").read_text())
    (cwd / "run" / "metrics.json").write_text(json.dumps(metrics | {"stop_reason": "interrupted"}))


def model_json(cwd: Path, change) -> None:
    finished_run(cwd)
    path = cwd / "run" / "model" / "model.json"
    meta = json.loads(path.read_text())
    path.write_text(change(meta))


def future_model(cwd: Path) -> None:
    model_json(cwd, lambda meta: json.dumps(meta | {"format_version": 99}))


def corrupt_model(cwd: Path) -> None:
    model_json(cwd, lambda meta: "{ truncated")


def features_csv(cwd: Path) -> None:
    (cwd / "new.csv").write_text("Chins,Situps,Jumps\n5,162,60\n")


def empty_dir(cwd: Path) -> None:
    (cwd / "empty").mkdir()


def single_row(cwd: Path) -> None:
    (cwd / "one.csv").write_text("a,b,y\n1,2,3\n")


def huge_values(cwd: Path) -> None:
    (cwd / "huge.csv").write_text("a,y\n1,2\n1e200,3\n2,5\n3,4\n")


CASES = [
    # flags
    Case("batch size 0", ["train", "--batch-size", "0"], r"argument --batch-size: must be a positive whole number or 'full'; got '0'"),
    Case("negative learning rate", ["train", "--lr", "-1"], r"argument --lr: must be a positive number or 'auto'; got '-1'"),
    Case("zero epochs", ["train", "--epochs", "0"], r"argument --epochs: must be a positive whole number; got '0'"),
    Case("misspelt flag", ["train", "--taget", "y"], r"unrecognized arguments: --taget y; did you mean --target\?"),
    Case("test fraction 1.5", ["train", "--test-fraction", "1.5"], r"argument --test-fraction: must be a number in \[0, 1\); got '1.5'"),
    Case("negative val fraction", ["train", "--val-fraction", "-0.1"], r"argument --val-fraction: must be a number in \[0, 1\); got '-0.1'"),
    Case("fractions leave no rows", ["train", "--test-fraction", "0.6", "--val-fraction", "0.5"], r"val_fraction \+ test_fraction must leave rows to train on"),
    Case("unknown data set", ["train", "--dataset", "iris"], r"argument --dataset: invalid choice: 'iris' \(choose from '?diabetes'?, '?linnerud'?, '?synthetic'?\)"),
    Case("unknown optimizer", ["train", "--optimizer", "adm"], r"argument --optimizer: invalid choice: 'adm' \(choose from '?auto'?, '?gd'?, '?sgd'?, '?adam"),
    Case("unknown scheduler", ["train", "--scheduler", "linear"], r"argument --scheduler: invalid choice: 'linear' \(choose from '?auto'?, '?none'?, '?step"),
    Case("unknown device", ["train", "--device", "tpu"], r"--device tpu is not a device; use auto, cpu, cuda or cuda:1\."),
    Case("an empty device", ["train", "--device", ""], r"--device '' is not a device; use auto, cpu, cuda or cuda:1\."),
    Case("no CUDA device", ["train", "--device", "cuda"], r"--device cuda: no CUDA device is available here; use --device cpu"),
    Case("a numbered GPU, none here", ["train", "--device", "cuda:1"], r"--device cuda:1: no CUDA device is available here; use --device cpu"),
    Case("MPS, which has no float64", ["train", "--device", "mps"], r"--device mps: training keeps its statistics, metrics and iterate means in float64, which Apple's MPS does not have; use --device cpu"),
    Case("both data sources", ["train", "--dataset", "diabetes", "--data", "x.csv"], r"give either --dataset or --data, not both"),
    Case("nesterov without sgd", ["train", "--nesterov"], r"--nesterov has no effect with --optimizer auto: it needs --optimizer sgd; set that, or drop --nesterov"),
    Case("nesterov without momentum", ["train", "--optimizer", "sgd", "--nesterov"], r"--nesterov has no effect with --momentum 0: it needs --momentum above 0"),
    Case("momentum without sgd", ["train", "--momentum", "0.9"], r"--momentum 0.9 has no effect with --optimizer auto: it needs --optimizer sgd; set that, or drop --momentum"),
    Case("momentum with adam", ["train", "--optimizer", "adam", "--momentum", "0.9"], r"--momentum 0.9 has no effect with --optimizer adam: it needs --optimizer sgd"),
    Case("lr-gamma without a scheduler", ["train", "--lr-gamma", "0.5"], r"--lr-gamma 0.5 has no effect with --scheduler auto: it needs --scheduler step, exponential or plateau"),
    Case("lr-step-size without step", ["train", "--lr-step-size", "10", "--scheduler", "exponential"], r"--lr-step-size 10 has no effect with --scheduler exponential: it needs --scheduler step"),
    Case("early stopping without validation", ["train", "--early-stopping", "--val-fraction", "0"], r"early_stopping needs a validation split"),
    Case("one data row", ["train", "--data", "one.csv", "--target", "y"], r"one.csv has only 1 data row", setup="single_row"),
    Case("squares overflow float64", ["train", "--data", "huge.csv", "--target", "y", "--dtype", "float64"], r"column 'a' of huge.csv holds 1e\+200 at row 2: float64 sums of its squares overflow \(beyond about 1e\+150 a value\); rescale the column, e.g. divide it by a power of ten", setup="huge_values"),
    # run directories
    Case("run directory exists", ["train", "--out", "empty"], r"run directory empty already exists; handgrad never overwrites a run", setup="empty_dir"),
    Case("resume a missing run", ["train", "--resume", "nowhere"], r"--resume nowhere: no such run directory"),
    Case("resume a folder that is no run", ["train", "--resume", "empty"], r"--resume empty: not a handgrad run directory", setup="empty_dir"),
    Case("resume with a corrupt checkpoint", ["train", "--resume", "run", "--epochs", "10"], r"run/checkpoint.pt is corrupt or from another handgrad version", setup="corrupt_checkpoint"),
    Case("resume a run at its epoch limit", ["train", "--resume", "run"], r"run is finished: it reached its limit of 5 epochs. To train on, raise the limit: handgrad train --resume run --epochs 10", setup="run_at_its_limit"),
    Case("resume a CUDA run without one", ["train", "--resume", "run", "--epochs", "10"], r"run was trained with --device cuda, which this machine does not have; go on elsewhere with --resume run --device cpu", setup="run_recorded_on_cuda"),
    Case("resume with other settings", ["train", "--resume", "run", "--lr", "0.1"], r"--resume continues a run with its own settings; drop --lr", setup="finished_run"),
    # models
    Case("model folder missing", ["predict", "--model", "nowhere", "--data", "new.csv"], r"--model nowhere: no such run directory or model folder", setup="features_csv"),
    Case("folder that is no run", ["predict", "--model", "empty", "--data", "new.csv"], r"--model empty is neither a run directory nor a model folder", setup="empty_dir"),
    Case("run interrupted before its model", ["predict", "--model", "run", "--data", "new.csv"], r"run has no model: the run was interrupted after 5 full epochs, before it finished. Finish it with: handgrad train --resume run$", setup="interrupted_run"),
    Case("corrupt model", ["predict", "--model", "run", "--data", "new.csv"], r"run/model/model.json is corrupt", setup="corrupt_model"),
    Case("model from a newer handgrad", ["predict", "--model", "run", "--data", "new.csv"], r"run/model was written in model format version 99, but this handgrad reads version 1", setup="future_model"),
    # divergence
    Case("learning rate too large", ["train", "--lr", "5", "--out", "diverged"], r"training diverged at epoch \d+ .*the learning rate 5 is too large.*largest stable rate is 2/L = 0\.\d+; try --lr 0\.\d+, or --lr auto", code=1),
]  # fmt: skip


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run every case once, a few processes at a time; the tests below read the results."""

    def one(case):
        cwd = tmp_path_factory.mktemp("case")
        if case.setup:
            globals()[case.setup](cwd)
        return case.id, (run_cli(case.args, cwd), cwd)

    tmp_path_factory.getbasetemp()  # made once here: mktemp in threads would race to make it
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, CASES))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_error_is_one_clear_line(case, results):
    result, _ = results[case.id]
    assert result.returncode == case.code, result.stderr
    assert "Traceback" not in result.stderr
    progress = re.compile(r"^epoch\s+\d+  train MSE|: warning: ")
    lines = [line for line in result.stderr.splitlines() if not progress.search(line)]
    assert 1 <= len(lines) <= 2, result.stderr
    assert re.search(case.message, lines[0]), lines[0]
    assert lines[0].startswith(f"handgrad {case.args[0]}: error: ")


def test_divergence_keeps_a_checkpoint_and_saves_no_model(results):
    _, cwd = results["learning rate too large"]
    run = cwd / "diverged"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["stop_reason"] == "diverged"
    # The weights kept are those whose loss was recorded as the best, not the next ones.
    history = metrics["history"]["train_mse"]
    best = min(value for value in history if value is not None)
    assert metrics["train_mse"] == pytest.approx(best, rel=1e-9)
    assert history.index(best) == metrics["best_epoch"] - 1 < len(history) - 1
    assert not (run / "model").exists()
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert torch.isfinite(state["W"]).all() and torch.isfinite(state["b"]).all()


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli(["train", "--device", "cuda", "--debug"], tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_docs_quote_the_real_messages(results):
    text = DOCS.read_text(encoding="utf-8")
    prefix = re.compile(r"^handgrad \w+: error: ")
    for case in CASES:
        result, cwd = results[case.id]
        error = next(line for line in result.stderr.splitlines() if prefix.match(line))
        first = prefix.sub("", error).replace(str(cwd) + os.sep, "")
        assert first.replace("|", "\\|") in text, f"docs/errors.md lacks: {first}"
