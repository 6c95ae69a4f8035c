"""``handgrad train`` end to end, in process and in a temporary directory."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from handgrad.cli import main
from handgrad.data.datasets import load_dataset, synthetic
from handgrad.devices import device_name, resolve_device
from handgrad.model import LinearModel
from handgrad.training.prepare import split_indices


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
    assert metrics["device"] == device_name(resolve_device("auto"))  # the one --device auto took
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


def split_rows(out):
    """The raw float64 (X, Y) of each split of the run in ``out``, split as ``prepare`` does:
    a dict with "train", "val" and "test"."""
    config = json.loads((out / "config.json").read_text())
    source, settings = config["source"], config["config"]
    name = source["dataset"]
    if name == "synthetic":
        dataset = synthetic(**{k: v for k, v in source.items() if k != "dataset"})[0]
    else:
        dataset = load_dataset(name)
    val = settings["val_fraction"]
    val = (0.1 if settings["early_stopping"] else 0.0) if val is None else val
    splits = split_indices(len(dataset.X), val, settings["test_fraction"], settings["seed"])
    X, Y = np.asarray(dataset.X, dtype=np.float64), np.asarray(dataset.Y, dtype=np.float64)
    return {
        name: (X[rows], Y[rows])
        for name, rows in zip(("train", "val", "test"), splits, strict=True)
    }


def training_rows(out):
    return split_rows(out)["train"]


def lstsq_mse(X, Y) -> float:
    """The least-squares optimum's MSE (per example, summed over targets): numpy's lstsq."""
    A = np.c_[X, np.ones(len(X))]
    residual = A @ np.linalg.lstsq(A, Y, rcond=None)[0] - Y
    return float((residual**2).sum()) / len(X)


def descent_mse(X, Y, epochs, standardize=True, standardize_targets=False) -> tuple[float, float]:
    """Plain full-batch descent from 0 at 2/(L + μ) for ``epochs`` steps, in float64 NumPy,
    written from the maths alone: (final train MSE in the targets' units, the rate).
    L and μ are the largest and smallest eigenvalues of the Hessian: 2/(L + μ) is the
    constant rate that contracts the slowest and the fastest direction alike."""
    mx, sx = (X.mean(0), X.std(0)) if standardize else (0.0, 1.0)
    my, sy = (Y.mean(0), Y.std(0)) if standardize_targets else (0.0, 1.0)
    A = np.c_[(X - mx) / np.where(sx == 0, 1.0, sx), np.ones(len(X))]
    B = (Y - my) / sy
    q = len(A)
    H = (2.0 / q) * A.T @ A  # the Hessian of (1/q)‖Aθ − B‖² for each column of θ
    eigenvalues = np.linalg.eigvalsh(H)
    rate = 2.0 / (eigenvalues[-1] + eigenvalues[0])
    theta = np.zeros((A.shape[1], B.shape[1]))
    for _ in range(epochs):
        theta -= rate * (2.0 / q) * A.T @ (A @ theta - B)
    residual = (A @ theta - B) * sy
    return float((residual**2).sum()) / q, rate


def test_saved_model_is_at_the_least_squares_optimum_of_its_training_rows(diabetes_run):
    metrics = json.loads((diabetes_run / "metrics.json").read_text())
    X, Y = training_rows(diabetes_run)
    optimum = lstsq_mse(X, Y)  # 2867.91 on diabetes' 354 training rows
    # The run's own optimum is the same, up to rounding the standardised data to float32
    # (it moves the optimum's MSE by about u = 6e-8 times ‖Ŷ‖/‖R‖ ~ 1, relative).
    assert metrics["optimum_train_mse"] == pytest.approx(optimum, rel=1e-6)
    model = LinearModel.load(diabetes_run / "model")
    mse = float(((model.predict(X) - Y) ** 2).sum()) / len(X)
    gap = (mse - optimum) / optimum
    # The reported gap is the saved model's true gap (float32 weights and data: 1e-6),
    # and a default full-batch run ends within 1e-4 of the optimum: weights off by 10 %
    # in any direction would be ~1e-2 away.
    assert gap == pytest.approx(metrics["gap_to_optimum"], abs=1e-6)
    assert -1e-6 <= gap < 1e-4
    assert mse == pytest.approx(metrics["train_mse"], rel=1e-6)
    assert model.feature_names == load_dataset("diabetes").feature_names


def test_r2_is_scikit_learns_r2_score(diabetes_run, tmp_path):
    linnerud = tmp_path / "linnerud"
    assert main(["train", "--dataset", "linnerud", "--out", str(linnerud), "--quiet"]) == 0
    for out, targets in ((diabetes_run, 1), (linnerud, 3)):
        metrics = json.loads((out / "metrics.json").read_text())
        model = LinearModel.load(out / "model")
        for split, (X, Y) in split_rows(out).items():
            if split == "val":
                continue
            assert Y.shape[1] == targets
            expected = r2_score(Y, model.predict(X), multioutput="variance_weighted")
            # R² = 1 − SSE/SST: SSE of float32 weights and data is exact to ~1e-6 relative.
            assert metrics[f"r2_{split}"] == pytest.approx(expected, abs=1e-6 * (1 - expected))
            if targets == 1:
                assert expected == pytest.approx(r2_score(Y[:, 0], model.predict(X)[:, 0]))
            else:  # variance-weighted, not the plain average: they differ on linnerud
                uniform = r2_score(Y, model.predict(X))
                assert abs(uniform - expected) > 1e-3


def test_summary_is_printed(tmp_path, capsys):
    assert main(["train", "--dataset", "linnerud", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "linnerud: 3 features -> 3 targets, 16 training rows" in out
    for label in ("epochs", "train time", "train MSE", "test MSE", "optimum (train)", "gap"):
        assert label in out
    assert f"  device          {device_name(resolve_device('auto'))} (chosen by auto)\n" in out


def test_existing_run_directory_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert main(["train", "--out", str(out), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "precious"
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(
    ("flags", "expect"),
    [
        (
            ["--dataset", "synthetic", "--samples", "50", "--features", "13", "--targets", "3"],
            "optimum",
        ),
        (
            ["--batch-size", "16", "--optimizer", "adam", "--lr", "0.05", "--epochs", "50"],
            "truthful",
        ),
        (
            ["--path", "chained", "--grad", "autograd", "--optimizer", "gd", "--epochs", "30"],
            "descent",
        ),
        (["--scheduler", "plateau", "--early-stopping", "--dtype", "float64"], "truthful"),
        (
            [
                "--dataset",
                "linnerud",
                "--standardize-targets",
                "--no-standardize",
                "--optimizer",
                "gd",
                "--epochs",
                "500",
            ],
            "descent",
        ),
    ],
    ids=["lab-problem", "minibatch-adam", "chained-autograd", "early-stopping", "raw"],
)
def test_train_options_end_where_the_maths_says(tmp_path, flags, expect):
    out = tmp_path / "run"
    assert main(["train", *flags, "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    X, Y = training_rows(out)
    optimum = lstsq_mse(X, Y)
    # float32 data and weights: rounding of u = 6e-8, with margin; float64: far below.
    rel = 1e-10 if "float64" in flags else 1e-6
    assert metrics["optimum_train_mse"] == pytest.approx(optimum, rel=rel)
    model = LinearModel.load(out / "model")
    mse = float(((model.predict(X) - Y) ** 2).sum()) / len(X)
    assert metrics["train_mse"] == pytest.approx(mse, rel=10 * rel)
    gap = (mse - optimum) / optimum
    assert metrics["gap_to_optimum"] == pytest.approx(gap, rel=1e-3, abs=10 * rel)
    if "converged" in metrics:  # issue 10: a run far from the optimum says so
        assert metrics["converged"] == (gap < 1e-3)
    if expect == "optimum":  # full batch by default, to the stopping rule: at the optimum
        assert gap < 1e-4
    elif expect == "descent":  # a fixed number of plain steps: exactly where descent is
        standardize = "--no-standardize" not in flags
        expected, rate = descent_mse(
            X, Y, metrics["epochs"], standardize, "--standardize-targets" in flags
        )
        assert metrics["learning_rate"] == pytest.approx(rate, rel=1e-6)
        # float32 iterates of a contracting map: rounding (~1e-7) stays at that level.
        assert metrics["train_mse"] == pytest.approx(expected, rel=1e-5)
        assert metrics["history"]["train_mse"][0] > metrics["train_mse"]


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
