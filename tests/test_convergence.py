"""Every run ends at the optimum, or says plainly that it did not (issue 10).

The matrix of data × batch size × optimizer runs at its defaults, one seed, on sizes
that keep each cell to seconds: full batch on all four data sets, mini-batches on
linnerud, on smaller badly scaled sets and on breast cancer (κ ≈ 1.9e4, whitened:
batch 32 with every optimizer, batch 1 with gd). ``make bench`` (figure 7) runs the
whole matrix, five seeds, through both front ends.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from benchmarks.fig7_convergence import GOAL, OPTIMIZERS, badly_scaled, dataset
from sklearn.exceptions import ConvergenceWarning

from handgrad import GDRegressor
from handgrad.cli import main
from handgrad.config import TrainConfig, check
from handgrad.training import Trainer, prepare
from handgrad.training.convergence import NotConvergedWarning

CELLS = [(name, None) for name in ("diabetes", "linnerud", "breast_cancer", "scaled")]
CELLS += [("linnerud", 1), ("small_scaled", 32), ("tiny_scaled", 1), ("breast_cancer", 32)]


def data(name):
    if name.endswith("_scaled"):  # fewer rows: a batch-1 epoch is one step per row
        return badly_scaled(samples=150 if name == "small_scaled" else 50)
    return dataset(name)


@pytest.mark.parametrize(("optimizer", "momentum"), OPTIMIZERS, ids=[o for o, _ in OPTIMIZERS])
@pytest.mark.parametrize(("name", "batch"), CELLS, ids=[f"{n}-{b or 'full'}" for n, b in CELLS])
def test_defaults_converge_in_every_cell(name, batch, optimizer, momentum):
    config = check(TrainConfig(batch_size=batch, optimizer=optimizer, momentum=momentum))
    if name == "breast_cancer" and batch is None:
        # κ ≈ 1.8e4: plain descent needs O(κ) epochs, Adam thousands. Stop 10× below
        # the goal rather than at 1e-7 to keep the test short; the bench runs the
        # defaults.
        config = config.replace(tol=1e-4)
    trainer = Trainer(prepare(data(name), config), config).fit()
    metrics = trainer.metrics()
    assert metrics["converged"] is True, metrics["gap_to_optimum"]
    assert metrics["gap_to_optimum"] < GOAL


def test_batch_one_on_collinear_data_converges_whitened():
    # Plain descent at batch 1 stood at a gap of 0.67 after 1500 epochs here: its rate is
    # bounded by the largest row, its slowest direction is κ ≈ 1.9e4 times slower.
    config = check(TrainConfig(batch_size=1))
    trainer = Trainer(prepare(data("breast_cancer"), config), config).fit()
    metrics = trainer.metrics()
    assert metrics["whitened"] is True and metrics["converged"] is True
    assert metrics["gap_to_optimum"] < GOAL


def test_an_oscillating_loss_is_not_a_stall():
    # Momentum 0.9 on a well-conditioned problem: the loss swings up and down by
    # orders of magnitude for a while; a patience of 20 epochs read that as a stall.
    config = check(TrainConfig(optimizer="sgd", momentum=0.9))
    trainer = Trainer(prepare(badly_scaled(), config), config).fit()
    history = np.array(trainer.history["train_mse"])
    rises = np.flatnonzero(np.diff(history) > 0)
    assert len(rises) > 5 and trainer.stop_reason == "converged"


def test_a_stall_ends_the_run_not_converged_with_one_line(tmp_path, capsys):
    # Raw features spanning 1e-4 … 1e6: κ ≈ 1e20, no descent can get there.
    np.savez(tmp_path / "scaled.npz", X=badly_scaled().X, Y=badly_scaled().Y)
    out = tmp_path / "run"
    argv = ["train", "--data", str(tmp_path / "scaled.npz"), "--no-standardize", "--optimizer"]
    code = main([*argv, "gd", "--epochs", "300", "--out", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if ": warning: not converged" in line]
    assert len(warning) == 1, err
    assert "above the optimum" in warning[0] and "drop --no-standardize" in warning[0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["converged"] is False and metrics["gap_to_optimum"] > GOAL


def test_a_converged_run_says_so_in_metrics(tmp_path, recwarn):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "linnerud", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["converged"] is True and metrics["gap_to_optimum"] < GOAL
    assert metrics["optimizer"] == "heavy-ball" and "4/(√L+√μ)²" in metrics["learning_rate_rule"]
    assert not [w for w in recwarn if issubclass(w.category, NotConvergedWarning)]


def test_estimator_warns_when_not_converged_and_not_otherwise():
    Xy = badly_scaled()
    with pytest.warns(ConvergenceWarning, match="not converged.*standardize=False"):
        model = GDRegressor(standardize=False, optimizer="gd", max_epochs=200).fit(Xy.X, Xy.Y)
    assert model.converged_ is False
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = GDRegressor(batch_size=32, optimizer="sgd", momentum=0.9, random_state=0)
        assert model.fit(*_linnerud()).converged_ is True


def _linnerud():
    from sklearn.datasets import load_linnerud

    return load_linnerud(return_X_y=True)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"momentum": 0.9}, r"momentum=0.9 has no effect with optimizer='auto': it needs"),
        ({"optimizer": "adam", "momentum": 0.5}, r"momentum=0.5 .* with optimizer='adam'"),
    ],
)  # fmt: skip
def test_estimator_parameters_with_no_effect_are_value_errors(params, message):
    with pytest.raises(ValueError, match=message):
        GDRegressor(**params).fit(*_linnerud())


def test_quiet_prints_the_run_folder_and_a_not_converged_warning(tmp_path, capsys):
    np.savez(tmp_path / "scaled.npz", X=badly_scaled().X, Y=badly_scaled().Y)
    out = tmp_path / "run"
    argv = ["train", "--data", str(tmp_path / "scaled.npz"), "--no-standardize", "--quiet"]
    assert main([*argv, "--optimizer", "gd", "--epochs", "30", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.out.strip() == str(out)
    assert len(printed.err.strip().splitlines()) == 1 and "not converged" in printed.err
