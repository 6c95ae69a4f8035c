"""``handgrad train`` end to end, in process and in a temporary directory."""

from __future__ import annotations

import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from handgrad.cli import main
from handgrad.model import LinearModel


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "diabetes"
    assert main(["train", "--out", str(out), "--quiet"]) == 0
    return out


def test_train_writes_every_file_of_the_run_directory(diabetes_run):
    names = {p.name for p in diabetes_run.iterdir()}
    assert {"config.json", "checkpoint.pt", "metrics.json", "loss.png"} <= names
    assert {"predicted_vs_true.png", "model", "tensorboard"} <= names
    assert not [p for p in diabetes_run.rglob("*.tmp")]  # no temporary left behind
    metrics = json.loads((diabetes_run / "metrics.json").read_text())
    for key in ("train_mse", "test_mse", "r2_train", "r2_test", "optimum_train_mse"):
        assert isinstance(metrics[key], float)
    assert 0 <= metrics["gap_to_optimum"] < 1e-4
    assert metrics["epochs"] == len(metrics["history"]["train_mse"]) > 50
    assert 0 < metrics["train_seconds"] < 60
    assert metrics["path"] == "stats"
    config = json.loads((diabetes_run / "config.json").read_text())
    assert config["source"] == {"dataset": "diabetes"} and "lr_step_size" in config["config"]


def test_tensorboard_holds_the_losses_rate_and_gradient_norm(diabetes_run):
    events = EventAccumulator(str(diabetes_run / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"Loss/train", "Loss/test", "LearningRate", "GradientNorm"} <= tags
    metrics = json.loads((diabetes_run / "metrics.json").read_text())
    losses = [event.value for event in events.Scalars("Loss/train")]
    assert len(losses) == metrics["epochs"]
    assert losses[-1] == pytest.approx(metrics["history"]["train_mse"][-1], rel=1e-6)


def test_saved_model_predicts_like_the_trainer(diabetes_run):
    from handgrad.data.datasets import diabetes

    model = LinearModel.load(diabetes_run / "model")
    data = diabetes()
    predictions = model.predict(data.X)
    mse = float(((predictions - data.Y) ** 2).mean())
    assert mse == pytest.approx(2900, rel=0.05)  # diabetes' least-squares MSE is ~2860
    assert model.feature_names == data.feature_names


def test_summary_is_printed(tmp_path, capsys):
    assert main(["train", "--dataset", "linnerud", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "linnerud: 3 features -> 3 targets, 16 training rows" in out
    for label in ("epochs", "train time", "train MSE", "test MSE", "optimum (train)", "gap"):
        assert label in out


def test_existing_run_directory_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert main(["train", "--out", str(out), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "precious"
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(
    "flags",
    [
        ["--dataset", "synthetic", "--samples", "50", "--features", "13", "--targets", "3"],
        ["--batch-size", "16", "--optimizer", "adam", "--lr", "0.05", "--epochs", "50"],
        ["--path", "chained", "--grad", "autograd", "--epochs", "30"],
        ["--scheduler", "plateau", "--early-stopping", "--dtype", "float64"],
        ["--dataset", "linnerud", "--standardize-targets", "--no-standardize", "--epochs", "500"],
    ],
    ids=["lab-problem", "minibatch-adam", "chained-autograd", "early-stopping", "raw"],
)
def test_train_options_run(tmp_path, flags):
    out = tmp_path / "run"
    assert main(["train", *flags, "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_mse"] < metrics["history"]["train_mse"][0]


def test_resume_extends_a_finished_run_exactly(tmp_path):
    flags = ["--batch-size", "32", "--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.01"]
    flags += ["--tol", "0", "--quiet"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert main(["train", *flags, "--epochs", "12", "--out", str(whole)]) == 0
    assert main(["train", *flags, "--epochs", "5", "--out", str(part)]) == 0
    assert main(["train", "--resume", str(part), "--epochs", "12", "--quiet"]) == 0
    a, b = LinearModel.load(whole / "model"), LinearModel.load(part / "model")
    assert torch.equal(a.W, b.W) and torch.equal(a.b, b.b)


def test_resume_refuses_changed_settings(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "3", "--out", str(out), "--quiet"]) == 0
    assert main(["train", "--resume", str(out), "--lr", "0.1"]) == 2
    assert "drop --lr" in capsys.readouterr().err


def test_train_and_predict_on_a_csv_of_ones_own(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=["age", "bmi", "bp"])
    frame["y"] = 3 * frame["age"] - 2 * frame["bp"] + 1 + 0.01 * rng.normal(size=200)
    frame.insert(0, "id", [f"p{i}" for i in range(200)])  # text: skipped with a warning
    frame.to_csv(tmp_path / "my.csv", index=False)
    run = tmp_path / "run"
    assert (
        main(["train", "--data", str(tmp_path / "my.csv"), "--target", "y", "--out", str(run)]) == 0
    )
    assert "warning: skipped column 'id'" in capsys.readouterr().err
    frame.drop(columns=["y"]).head(4).to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "predictions.csv"
    assert (
        main(
            ["predict", "--model", str(run), "--data", str(tmp_path / "new.csv"), "--out", str(out)]
        )
        == 0
    )
    predictions = pd.read_csv(out)
    assert list(predictions.columns) == ["y"]
    expected = 3 * frame["age"][:4] - 2 * frame["bp"][:4] + 1
    np.testing.assert_allclose(predictions["y"], expected, atol=0.01)
    # The same file again: never overwritten.
    assert (
        main(
            ["predict", "--model", str(run), "--data", str(tmp_path / "new.csv"), "--out", str(out)]
        )
        == 2
    )
    # Columns that differ from the training columns are named.
    frame.drop(columns=["y", "bmi"]).to_csv(tmp_path / "short.csv", index=False)
    assert main(["predict", "--model", str(run), "--data", str(tmp_path / "short.csv")]) == 2
    assert "missing: bmi" in capsys.readouterr().err


def test_constant_feature_and_wide_data_warn_and_still_train(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(8, 12)), columns=[f"x{i}" for i in range(12)])
    frame["x0"] = 5.0
    frame["y"] = rng.normal(size=8)
    frame.to_csv(tmp_path / "wide.csv", index=False)
    args = ["train", "--data", str(tmp_path / "wide.csv"), "--target", "y", "--epochs", "50"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "warning: constant feature(s) x0 carry no information" in err
    assert "warning: the least-squares optimum is not unique" in err


def test_an_exact_fit_draws_its_figures_without_warnings(tmp_path):
    import warnings

    import pandas as pd

    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0.0, 0.0, 0.0, 0.0]}).to_csv(
        tmp_path / "zero.csv", index=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        args = ["train", "--data", str(tmp_path / "zero.csv"), "--target", "y", "--quiet"]
        assert main([*args, "--test-fraction", "0", "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "loss.png").is_file()
