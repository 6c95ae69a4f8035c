"""The training core: it reaches the closed-form optimum, and its paths agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handgrad.config import TrainConfig, check
from handgrad.data.datasets import load_dataset, synthetic
from handgrad.model import LinearModel
from handgrad.training import DivergedError, Trainer, prepare


def fit(dataset, **settings) -> Trainer:
    config = check(TrainConfig(**settings))
    return Trainer(prepare(dataset, config), config).fit()


@pytest.mark.parametrize("name", ["diabetes", "linnerud"])
@pytest.mark.parametrize("path", ["auto", "chained"])
def test_defaults_reach_the_closed_form_optimum(name, path):
    metrics = fit(load_dataset(name), path=path).metrics()
    assert metrics["stop_reason"] == "converged" and metrics["converged"] is True
    assert 0 <= metrics["gap_to_optimum"] < 1e-4


def test_closed_form_reference_matches_numpy_lstsq():
    dataset = load_dataset("diabetes")
    trainer = fit(dataset, max_epochs=1, test_fraction=0.0)
    X = np.hstack([dataset.X, np.ones((dataset.n_samples, 1))])
    theta, *_ = np.linalg.lstsq(X, dataset.Y, rcond=None)
    expected = float(((X @ theta - dataset.Y) ** 2).sum()) / dataset.n_samples
    # The reference solves on the data as trained (float32 by default), hence 1e-7.
    assert trainer.metrics()["optimum_train_mse"] == pytest.approx(expected, rel=1e-7)


def test_recovers_known_weights_on_synthetic_data():
    dataset, W, b = synthetic(samples=2000, features=5, targets=3, noise=0.01, seed=3)
    trainer = fit(dataset, test_fraction=0.0, dtype="float64")
    model = LinearModel(
        trainer.W.cpu(), trainer.b.cpu(), trainer.data.x_scaler, trainer.data.y_scaler, (), ()
    )
    W_raw, b_raw = model.raw_coefficients()
    np.testing.assert_allclose(W_raw, W, atol=2e-3)
    np.testing.assert_allclose(b_raw, b, atol=2e-3)


@pytest.mark.parametrize("batch_size", [None, 16])
def test_manual_and_autograd_trajectories_are_identical(batch_size):
    dataset = synthetic(samples=120, features=6, targets=2, seed=1)[0]
    settings = dict(path="chained", batch_size=batch_size, max_epochs=30, tol=0.0)
    manual = fit(dataset, grad="manual", **settings)
    auto = fit(dataset, grad="autograd", **settings)
    assert manual.history["train_mse"] == auto.history["train_mse"]
    assert torch.equal(manual.W, auto.W) and torch.equal(manual.b, auto.b)


def test_stats_path_iterates_equal_chained_path():
    dataset = synthetic(samples=300, features=8, targets=3, noise=0.5, seed=2)[0]
    settings = dict(max_epochs=50, tol=0.0, dtype="float64", learning_rate=0.05)
    stats = fit(dataset, path="stats", **settings)
    chained = fit(dataset, path="chained", **settings)
    np.testing.assert_allclose(stats.history["train_mse"], chained.history["train_mse"], rtol=1e-10)
    torch.testing.assert_close(stats.W, chained.W, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(stats.b, chained.b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "settings",
    [
        dict(batch_size=32, scheduler="exponential", lr_gamma=0.97, max_epochs=150),
        dict(
            batch_size=1,
            learning_rate=0.01,
            max_epochs=12,
            tol=0.0,
            scheduler="exponential",
            lr_gamma=0.7,
        ),
        dict(optimizer="sgd", momentum=0.9, learning_rate=0.05),
        dict(optimizer="sgd", momentum=0.9, nesterov=True, learning_rate=0.05),
        dict(optimizer="adam", learning_rate=0.1),
        dict(scheduler="cosine", max_epochs=3000),
        dict(scheduler="step", lr_step_size=1000, lr_gamma=0.5),
    ],
    ids=["minibatch", "sgd", "momentum", "nesterov", "adam", "cosine", "step"],
)
def test_optimizers_and_schedules_converge_near_the_optimum(settings):
    metrics = fit(load_dataset("diabetes"), **settings).metrics()
    stochastic = settings.get("batch_size") is not None
    # 12 epochs of SGD end 0.3-1.1 % above the optimum, depending on the split and the
    # order (seeds 0-5), hence 2e-2 for the stochastic cases.
    assert metrics["gap_to_optimum"] < (2e-2 if stochastic else 1e-4)


@pytest.mark.filterwarnings("error::UserWarning")
def test_schedulers_change_the_rate():
    trainer = fit(load_dataset("linnerud"), scheduler="step", lr_step_size=5, max_epochs=12, tol=0)
    rates = trainer.history["lr"]
    assert rates[4] == pytest.approx(rates[0]) and rates[5] == pytest.approx(rates[0] * 0.1)
    assert rates[10] == pytest.approx(rates[0] * 0.01)


def test_learning_rate_auto_of_plain_descent_is_two_over_l_plus_mu():
    dataset = load_dataset("diabetes")
    trainer = fit(dataset, optimizer="gd", max_epochs=1, test_fraction=0.0)
    X = (dataset.X - dataset.X.mean(0)) / dataset.X.std(0)
    X = np.hstack([X, np.ones((dataset.n_samples, 1))])
    eigenvalues = np.linalg.eigvalsh(2.0 / dataset.n_samples * X.T @ X)
    expected = 2.0 / (eigenvalues[-1] + eigenvalues[0])
    assert trainer.learning_rate == pytest.approx(expected, rel=1e-6)  # float32 data


def test_early_stopping_restores_the_best_validation_weights():
    dataset = synthetic(samples=60, features=40, targets=1, noise=1.0, seed=0)[0]
    trainer = fit(dataset, early_stopping=True, val_fraction=0.3, n_iter_no_change=5)
    assert trainer.stop_reason == "early_stopping"
    best = min(trainer.history["val_mse"])
    assert trainer.metrics()["val_mse"] == pytest.approx(best, rel=1e-5)


def test_resume_from_state_is_bit_identical():
    dataset = load_dataset("diabetes")
    settings = dict(
        batch_size=40, optimizer="adam", learning_rate=0.05, scheduler="step",
        lr_step_size=7, max_epochs=25, tol=0.0, val_fraction=0.1,
    )  # fmt: skip
    whole = fit(dataset, **settings)
    config = check(TrainConfig(**settings))
    first = Trainer(prepare(dataset, config), config).fit(max_epochs=11)
    second = Trainer(prepare(dataset, config), config)
    second.load_state(first.state())
    second.fit()
    assert torch.equal(second.W, whole.W) and torch.equal(second.b, whole.b)
    assert second.history == whole.history


def test_divergence_stops_with_a_suggestion_and_restores_exactly_the_best_weights():
    config = check(TrainConfig(learning_rate=5.0))
    trainer = Trainer(prepare(load_dataset("diabetes"), config), config)
    with pytest.raises(DivergedError, match=r"learning rate 5 is too large.*2/L = 0\.2\d+"):
        trainer.fit()
    assert trainer.stop_reason == "diverged"
    history = trainer.history["train_mse"]
    best = int(np.argmin(history))
    assert best == trainer.best_epoch - 1 and len(history) > best + 1
    # The weights kept are those the best recorded loss was measured on: the exact
    # train MSE of the final weights is that loss (not the next epoch's).
    assert trainer.metrics()["train_mse"] == pytest.approx(history[best], rel=1e-9)
    # ... and they are the weights after exactly best + 1 epochs, bit for bit.
    again = Trainer(prepare(load_dataset("diabetes"), config), config).fit(max_epochs=best + 1)
    assert torch.equal(trainer.W, again.W) and torch.equal(trainer.b, again.b)


def test_more_features_than_rows_still_trains():
    dataset = synthetic(samples=20, features=30, targets=2, seed=4)[0]
    trainer = fit(dataset, test_fraction=0.0, max_epochs=500)
    assert not trainer.reference.unique
    assert trainer.metrics()["train_mse"] < 1e-2 * np.var(dataset.Y, axis=0).sum()
