"""The command line's rough edges: closed pipes, flag typos, help texts, file modes, paths as
typed, progress, resuming a finished run, predicting from an unfinished one, TensorBoard
steps after a resume, and start-up without torch."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from handgrad.cli import build_parser, main
from handgrad.cli.progress import Progress, expected_epochs
from handgrad.config import TrainConfig
from handgrad.runs.tensorboard import event_file, logged_epochs, write_history


def handgrad(*args, cwd, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "handgrad", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished linnerud run (it stops by tol), in a folder of its own."""
    cwd = tmp_path_factory.mktemp("finished")
    assert main(["train", "--dataset", "linnerud", "--out", str(cwd / "run"), "--quiet"]) == 0
    return cwd


# --- start-up ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["train", "--help"], ["predict", "--help"]]
)
def test_help_and_version_do_not_import_torch(args):
    code = (
        "import sys\nfrom handgrad.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'numpy' in sys.modules, file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stderr.splitlines()[-1] == "False False", result.stderr


def test_import_handgrad_is_lazy_but_complete():
    code = "import sys, handgrad; lazy = 'torch' not in sys.modules; handgrad.check; "
    code += "handgrad.Linear; print(lazy, 'torch' in sys.modules, sorted(handgrad.__all__))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lazy, loaded, names = result.stdout.split(" ", 2)
    assert (lazy, loaded) == ("True", "True"), result.stderr
    import handgrad

    for name in handgrad.__all__:
        assert getattr(handgrad, name) is not None


def test_embedded_data_sets_match_scikit_learn_bit_for_bit():
    from sklearn.datasets import load_diabetes, load_linnerud

    from handgrad.data.datasets import diabetes, linnerud

    ours, theirs = diabetes(), load_diabetes()
    assert np.array_equal(ours.X, theirs.data) and np.array_equal(ours.Y[:, 0], theirs.target)
    assert ours.feature_names == tuple(theirs.feature_names)
    ours, theirs = linnerud(), load_linnerud()
    assert np.array_equal(ours.X, theirs.data) and np.array_equal(ours.Y, theirs.target)
    assert ours.feature_names == tuple(theirs.feature_names)
    assert ours.target_names == tuple(theirs.target_names)


# --- help and flags ------------------------------------------------------------------------
def test_every_flag_has_help_and_states_its_default():
    parser = build_parser()
    for name, sub in [("handgrad", parser), *parser.subcommands.items()]:
        for action in sub._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            flag = f"{name} {action.option_strings[-1]}"
            assert action.help and action.help != argparse.SUPPRESS, f"{flag} has no help"
            takes_value = action.nargs != 0
            if takes_value and name == "train":  # also what an unset flag means
                assert "default" in action.help, f"{flag} does not state its default"
            if takes_value and action.default not in (None, argparse.SUPPRESS):
                assert "%(default)s" in action.help or str(action.default) in action.help, flag
    help_text = parser.subcommands["train"].format_help()
    assert "(default: float32)" in " ".join(help_text.split())


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train", "--taget", "y"], "did you mean --target?"),
        (["predict", "--modl", "run", "--data", "x.csv"], "did you mean --model?"),
        (["train", "--optimizer", "adm"], "did you mean adam?"),
        (["check", "--jsn"], "did you mean --json?"),
    ],
)
def test_a_flag_typo_gets_a_guess_and_the_subcommands_help(args, expected, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    first, second = capsys.readouterr().err.splitlines()
    assert first.startswith(f"handgrad {args[0]}: error: ") and first.endswith(expected)
    assert second == f"See 'handgrad {args[0]} --help'."


def test_a_far_typo_gets_no_guess(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--zzzzzz"])
    assert "did you mean" not in capsys.readouterr().err


# --- closed pipes -------------------------------------------------------------------------
@pytest.mark.parametrize("what", ["predict", "check"])
def test_a_closed_pipe_ends_quietly(what, finished):
    if what == "predict":
        rows = "\n".join(f"{i},{i % 7},{i % 5}" for i in range(20_000))
        (finished / "many.csv").write_text("Chins,Situps,Jumps\n" + rows + "\n")
        args = ["predict", "--model", "run", "--data", "many.csv"]
    else:
        args = ["check", "torch:sin", "--input", "3", "--json"]
    process = handgrad(*args, cwd=finished)
    process.stdout.close()  # the reader is gone before the first line: `| head -0`
    _, err = process.communicate(timeout=300)
    assert err == "" and process.returncode == 141  # 128 + SIGPIPE, as `yes | head` ends


# --- files: modes, paths as typed -----------------------------------------------------------
def test_every_file_of_a_run_and_the_predictions_get_the_usual_mode(finished):
    umask = os.umask(0)
    os.umask(umask)
    assert main(["predict", "--model", str(finished / "run"), "--data", str(_features(finished)),
                 "--out", str(finished / "pred.csv")]) == 0  # fmt: skip
    files = [p for p in (finished / "run").rglob("*") if p.is_file()] + [finished / "pred.csv"]
    assert any(p.name == "model.safetensors" for p in files)
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


def _features(folder: Path) -> Path:
    path = folder / "new.csv"
    path.write_text("Chins,Situps,Jumps\n5,162,60\n2,110,60\n")
    return path


def test_messages_show_paths_as_typed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data.csv").write_text("a,b,y\n1,2,3\n4,x,6\n")
    assert main(["train", "--data", "sub/data.csv", "--target", "y"]) == 2
    err = capsys.readouterr().err
    assert "column 'b' of sub/data.csv holds text" in err and str(tmp_path) not in err


def test_no_guess_for_an_unrelated_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pm.csv").write_text("a,y\n1,2\n")
    assert main(["train", "--data", "nope.csv", "--target", "y"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "handgrad train: error: nope.csv does not exist"


# --- progress ------------------------------------------------------------------------------
def test_the_expected_total_is_where_a_geometric_descent_reaches_tol():
    tol = 1e-7
    gaps = [0.5 * 0.99**k for k in range(5000)]
    stop = next(k for k, gap in enumerate(gaps, 1) if gap <= tol)  # the trainer's rule
    for epoch in (100, 300, 1000):
        estimate = expected_epochs(gaps[:epoch], epoch, tol, 20_000)
        assert abs(estimate - stop) <= 0.02 * stop, (epoch, estimate, stop)
    assert expected_epochs(gaps[:100], 100, tol, 500) == 500  # never past the limit
    noisy = [1.0, 3.0, 2.0] * 30
    assert expected_epochs(noisy, len(noisy), tol, 20_000) is None


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_of_a_converged_run_ends_full(tmp_path):
    stream = Terminal()
    trainer = SimpleNamespace(
        epoch=0,
        history={"train_mse": []},
        stop_reason=None,
        plan=SimpleNamespace(tol=1e-7),
        max_epochs=20_000,
        config=TrainConfig(),
        gap=lambda mse: (mse - 100.0) / 100.0,
    )
    progress = Progress(trainer, 0, quiet=False, file=stream)
    for k in range(700):
        trainer.epoch = k + 1
        trainer.history["train_mse"].append(100.0 + 50.0 * 0.98**k)
        progress(trainer)
    assert progress.bar.total < 2000  # the expected end, not --epochs (20000)
    trainer.stop_reason = "converged"
    progress.close(trainer)
    assert progress.bar.n == progress.bar.total == 700
    assert "100%" in stream.getvalue().split("\r")[-1]


# --- resume and predict on finished and unfinished runs -----------------------------------
def test_resuming_a_converged_run_says_it_is_finished(finished, monkeypatch, capsys):
    monkeypatch.chdir(finished)
    before = (finished / "run" / "metrics.json").read_text()
    assert main(["train", "--resume", "run", "--epochs", "100000"]) == 2
    err = capsys.readouterr().err
    assert "run is finished: it reached the optimum at epoch" in err
    assert (finished / "run" / "metrics.json").read_text() == before  # nothing rewritten


def test_resuming_at_the_epoch_limit_needs_a_higher_limit(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset", "linnerud", "--epochs", "5", "--out", "r", "--quiet"]) == 0
    assert main(["train", "--resume", "r"]) == 2
    assert "r is finished: it reached its limit of 5 epochs" in capsys.readouterr().err
    assert main(["train", "--resume", "r", "--epochs", "5"]) == 2
    assert "handgrad train --resume r --epochs 10" in capsys.readouterr().err
    assert main(["train", "--resume", "r", "--epochs", "8", "--quiet"]) == 0
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["epochs"] == 8 and len(metrics["history"]["train_mse"]) == 8
    steps = _steps(tmp_path / "r")
    assert steps == list(range(1, 9))  # each epoch logged once, across the resume


def _steps(run: Path) -> list[int]:
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return [event.step for event in events.Scalars("Loss/train")]


@pytest.mark.parametrize("named", ["run", "run/model"])
def test_predict_on_an_interrupted_run_says_how_to_finish_it(named, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset", "linnerud", "--epochs", "5", "--out", "run", "--quiet"]) == 0
    model = tmp_path / "run" / "model"
    for path in model.iterdir():
        path.unlink()
    model.rmdir()  # as a run stopped by Ctrl-C leaves it
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    (tmp_path / "run" / "metrics.json").write_text(
        json.dumps(metrics | {"stop_reason": "interrupted"})
    )
    assert main(["predict", "--model", named, "--data", str(_features(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert (
        "run has no model: the run was interrupted after 5 full epochs, before it finished" in err
    )
    assert err.rstrip().endswith("Finish it with: handgrad train --resume run")


def test_predict_accepts_the_model_folder_too(finished, capsys):
    data = str(_features(finished))
    for model in (finished / "run", finished / "run" / "model"):
        assert main(["predict", "--model", str(model), "--data", data]) == 0
    first, second = capsys.readouterr().out.split("Weight", 2)[1:]
    assert first == second


# --- TensorBoard across a resume and a kill -9 ----------------------------------------------
def _history(epochs: int) -> dict[str, list]:
    return {"train_mse": [1.0 / (k + 1) for k in range(epochs)], "lr": [0.1] * epochs}


def test_a_resume_after_kill_9_logs_each_step_once(tmp_path):
    log = tmp_path / "tb"
    assert write_history(log, _history(30), 0) == 30  # checkpoint at 20, logs to 30
    path = event_file(log)
    path.write_bytes(path.read_bytes()[:-7])  # the kill cut the last record short
    assert logged_epochs(log, keep=20) == 20  # the checkpoint's epoch: the rest is dropped
    write_history(log, _history(40), 20)
    assert list(log.iterdir()) == [path]  # one file per run
    events = EventAccumulator(str(log))
    events.Reload()
    loss = events.Scalars("Loss/train")
    assert [e.step for e in loss] == list(range(1, 41))
    assert [e.value for e in loss] == pytest.approx([1.0 / k for k in range(1, 41)], rel=1e-6)
    assert logged_epochs(log, keep=100) == 40


# --- figures drawn by a helper process -------------------------------------------------------
def _job(folder: Path, name: str) -> dict:
    history = {"train_mse": [3.0, 2.0, 1.5], "val_mse": [float("nan")] * 3}
    history["test_mse"] = [4.0, 3.0, 2.5]
    scatter = {"Y_true": [[1.0], [2.0], [3.0]], "Y_pred": [[1.1], [1.9], [3.2]], "names": ["y"]}
    scatter |= {"r2": [0.97], "split": "test"}
    return {
        "loss": {"history": history, "optimum": 1.0, "path": str(folder / f"{name}-loss.png")},
        "scatter": scatter | {"path": str(folder / f"{name}-scatter.png")},
    }


@pytest.mark.parametrize("helper", ["works", "died", "cannot start"])
def test_figures_are_drawn_by_the_helper_or_else_here(helper, tmp_path, monkeypatch):
    from handgrad.runs import painter as painter_module

    if helper == "cannot start":
        monkeypatch.setattr(painter_module.sys, "executable", str(tmp_path / "no-python"))
    with painter_module.Painter() as painter:
        assert (painter.process is None) == (helper == "cannot start")
        if helper == "died":
            painter.process.kill()
            painter.process.wait()
        painter.draw(_job(tmp_path, helper))
        painter.finish()
    for figure in ("loss", "scatter"):
        assert (tmp_path / f"{helper}-{figure}.png").stat().st_size > 1000


def test_a_loss_beyond_float32_is_logged_as_inf(tmp_path):
    # A loss of 3.7e38 is finite in float64 but not in TensorBoard's float32.
    history = {"train_mse": [3.7e38, 1.0], "test_mse": [-3.7e38, 2.0]}
    write_history(tmp_path, history, 0)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [e.value for e in events.Scalars("Loss/train")] == [float("inf"), 1.0]
    assert [e.value for e in events.Scalars("Loss/test")] == [float("-inf"), 2.0]


def test_resume_refuses_a_limit_below_the_epochs_done(tmp_path, monkeypatch, capsys):
    # An interrupted run at epoch 5, resumed with --epochs 3: it used to end at once,
    # "reached the epoch limit", not converged, advising "more --epochs (now 3)".
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--dataset", "linnerud", "--batch-size", "4", "--out", "run", "--quiet"]
    assert main([*argv, "--epochs", "5"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    (tmp_path / "run" / "metrics.json").write_text(
        json.dumps(metrics | {"stop_reason": "interrupted"})
    )
    capsys.readouterr()
    assert main(["train", "--resume", "run", "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert "--epochs 3 is not above the 5 epochs run has done" in err
    assert "--epochs 10" in err and "Traceback" not in err
