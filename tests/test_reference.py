"""The closed-form reference: equal to numpy.linalg.lstsq on badly scaled data, rank by
a tolerance, and the curvature that sets the auto rate, with and without standardising."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.fig7_convergence import badly_scaled

from handgrad.config import TrainConfig, check
from handgrad.data.dataset import Dataset
from handgrad.training import Trainer, prepare


def trainer_for(dataset: Dataset, **settings) -> Trainer:
    config = check(TrainConfig(test_fraction=0.0, dtype="float64", max_epochs=1, **settings))
    return Trainer(prepare(dataset, config), config)


def lstsq_optimum(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, float]:
    """numpy's SVD-based least squares on [X, 1]: fitted values and the MSE."""
    A = np.hstack([X, np.ones((len(X), 1))])
    theta, *_ = np.linalg.lstsq(A, Y, rcond=None)
    fitted = A @ theta
    return fitted, float(((fitted - Y) ** 2).sum()) / len(X)


def fitted_values(trainer: Trainer) -> np.ndarray:
    """The reference's predictions on the training rows, in the data's units."""
    data, ref = trainer.data, trainer.reference
    X = data.train.X.double().cpu()
    Z = (X @ ref.W.cpu() + ref.b.cpu()).numpy()
    return Z * data.y_scaler.scale.numpy() + data.y_scaler.mean.numpy()


@pytest.mark.parametrize("standardize", [True, False])
def test_reference_equals_lstsq_on_badly_scaled_data(standardize):
    # Columns from 1e-4 to 1e6, off zero, targets near 3.5e5: κ(X̃ᵀX̃) is about 1e20.
    dataset = badly_scaled()
    trainer = trainer_for(dataset, standardize=standardize)
    fitted, optimum = lstsq_optimum(dataset.X, dataset.Y)
    assert trainer.reference.unique and trainer.reference.rank == dataset.X.shape[1] + 1
    assert trainer.optimum_mse == pytest.approx(optimum, rel=1e-8)
    assert trainer.metrics()["optimum_train_mse"] == pytest.approx(optimum, rel=1e-8)
    # lstsq on the raw columns errs by about ε·κ(X̃) ≈ 1e-6 in θ itself; on standardised
    # columns (κ about 3) it is exact, and so must the reference's predictions be.
    Z = (dataset.X - dataset.X.mean(axis=0)) / dataset.X.std(axis=0)
    exact, _ = lstsq_optimum(Z, dataset.Y)
    np.testing.assert_allclose(fitted_values(trainer), exact, rtol=1e-11)
    np.testing.assert_allclose(fitted_values(trainer), fitted, rtol=1e-6)


def test_not_unique_only_for_a_real_rank_deficiency():
    dataset = badly_scaled()
    X = np.hstack([dataset.X, dataset.X[:, :1] * 3.0 - dataset.X[:, 5:6] * 2.0])  # dependent
    deficient = Dataset(X, dataset.Y, tuple(f"x{i}" for i in range(11)), ("a", "b", "c"), "d")
    trainer = trainer_for(deficient)
    assert not trainer.reference.unique and trainer.reference.rank == 11
    _, optimum = lstsq_optimum(deficient.X, deficient.Y)
    assert trainer.optimum_mse == pytest.approx(optimum, rel=1e-8)


@pytest.mark.parametrize("standardize", [True, False])
def test_curvature_is_the_hessians_spectrum_from_a_stable_computation(standardize):
    dataset = badly_scaled()
    trainer = trainer_for(dataset, standardize=standardize, optimizer="gd")
    X = trainer.data.train.X.cpu().numpy()
    A = np.hstack([X, np.ones((len(X), 1))])
    singular = np.linalg.svd(A, compute_uv=False)  # of the data, not of AᵀA
    largest = 2.0 * singular[0] ** 2 / len(X)
    assert trainer.reference.largest_eigenvalue == pytest.approx(largest, rel=1e-10)
    if standardize:  # μ is resolvable only when κ is well within 1/ε
        smallest = 2.0 * singular[-1] ** 2 / len(X)
        assert trainer.reference.smallest_eigenvalue == pytest.approx(smallest, rel=1e-6)
        expected = 2.0 / (largest + smallest)
    else:
        expected = 2.0 / (largest + trainer.reference.smallest_eigenvalue)
    assert trainer.learning_rate == pytest.approx(expected, rel=1e-10)


def test_a_constant_column_whose_variance_rounds_below_zero_is_a_constant_column():
    import warnings

    from handgrad.training.reference import least_squares

    rng = np.random.default_rng(0)
    X = np.hstack([rng.normal(size=(50, 2)), np.full((50, 1), 3.0)])
    Y = X[:, :1] * 2.0 + 1.0
    data = Dataset(X=X, Y=Y, feature_names=("a", "b", "c"), target_names=("y",), name="d")
    stats = trainer_for(data, standardize=False).stats
    C = stats.centred.C
    C[2, :] = C[:, 2] = 0.0
    C[2, 2] = -1e-18  # what rounding may leave of a constant column's Σ(x − x̄)²
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "invalid value encountered in sqrt"
        ref = least_squares(stats)
    assert float(ref.W[2, 0]) == 0.0
    np.testing.assert_allclose(ref.W[:2, 0].numpy(), [2.0, 0.0], atol=1e-9)
