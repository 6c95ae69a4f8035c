"""Per-target results: MSE and R² of each target in metrics.json and the summary, and one
predicted-against-true panel per target."""

from __future__ import annotations

import json

import numpy as np
import pytest
from benchmarks.fig7_convergence import badly_scaled
from sklearn.metrics import mean_squared_error, r2_score

from handgrad.cli import main
from handgrad.model import LinearModel
from handgrad.runs import figures


@pytest.fixture(scope="module")
def scaled_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("per_target")
    dataset = badly_scaled()
    np.savez(folder / "scaled.npz", X=dataset.X, Y=dataset.Y)
    out = folder / "run"
    argv = ["train", "--data", str(folder / "scaled.npz"), "--val-fraction", "0.1"]
    assert main([*argv, "--dtype", "float64", "--out", str(out)]) == 0
    return out, dataset


def test_metrics_give_each_targets_mse_and_r2_on_every_split(scaled_run):
    out, dataset = scaled_run
    metrics = json.loads((out / "metrics.json").read_text())
    per_target = metrics["per_target"]
    assert [t["name"] for t in per_target] == ["y0", "y1", "y2"]
    keys = {"name", "train_mse", "val_mse", "test_mse", "r2_train", "r2_val", "r2_test"}
    assert all(set(t) == keys for t in per_target)
    # Against scikit-learn on the test rows, with the saved model's predictions.
    from handgrad.training.prepare import split_indices

    _, _, test_rows = split_indices(len(dataset.X), 0.1, 0.2, 0)
    model = LinearModel.load(out / "model")
    Y_true, Y_pred = dataset.Y[test_rows], model.predict(dataset.X[test_rows])
    for j, target in enumerate(per_target):
        assert target["r2_test"] == pytest.approx(r2_score(Y_true[:, j], Y_pred[:, j]), rel=1e-9)
        expected = mean_squared_error(Y_true[:, j], Y_pred[:, j])
        assert target["test_mse"] == pytest.approx(expected, rel=1e-9)
    # The targets differ: the weakest shows, not only the variance-weighted R².
    r2 = [t["r2_test"] for t in per_target]
    assert max(r2) - min(r2) > 0.03
    assert sum(t["train_mse"] for t in per_target) == pytest.approx(metrics["train_mse"])


def test_summary_lists_each_target(tmp_path, capsys):
    assert main(["train", "--dataset", "linnerud", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "per target (3)" in out
    for name in ("Weight", "Waist", "Pulse"):
        line = next(line for line in out.splitlines() if line.strip().startswith(name))
        assert "train MSE" in line and "test MSE" in line and "R²" in line


def test_predicted_vs_true_has_one_panel_per_target(scaled_run):
    import matplotlib.image

    out, _ = scaled_run
    image = matplotlib.image.imread(out / "predicted_vs_true.png")
    height, width = image.shape[:2]
    assert width > 2.5 * height  # three panels side by side


def test_beyond_the_panel_limit_the_weakest_targets_are_drawn(tmp_path, monkeypatch):
    drawn = {}
    original = figures.Figure.subplots

    def spy(fig, rows, columns, **kwargs):
        drawn["grid"] = (rows, columns)
        axes = original(fig, rows, columns, **kwargs)
        drawn["axes"] = axes
        return axes

    monkeypatch.setattr(figures.Figure, "subplots", spy)
    p = figures.MAX_PANELS + 5
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((40, p))
    r2 = list(np.linspace(0.1, 0.99, p))
    names = tuple(f"t{j}" for j in range(p))
    figures.predicted_vs_true(Y, Y + 0.1, names, r2, "test", tmp_path / "p.png")
    assert drawn["grid"] == (3, 4)
    titles = [ax.get_title() for ax in drawn["axes"].flat if ax.get_title()]
    assert [t.split(":")[0] for t in titles] == [f"t{j}" for j in range(figures.MAX_PANELS)]
    assert (tmp_path / "p.png").stat().st_size > 0
