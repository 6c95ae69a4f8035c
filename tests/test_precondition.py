"""Whitening (training/precondition.py): the map is what its derivation says, the runs
it serves reach the optimum, and it is chosen, reported and resumed as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from benchmarks.fig7_convergence import breast_cancer

from handgrad.config import TrainConfig, check
from handgrad.data.dataset import Dataset
from handgrad.data.datasets import load_dataset
from handgrad.training import Trainer, prepare
from handgrad.training.averaging import IterateAverage
from handgrad.training.precondition import AUTO_MAX_COLUMNS, Whitening


def trainer(data, **settings) -> Trainer:
    # The maps' algebra, on the CPU (the reference lives there): tests/test_devices.py
    # whitens on the device under test.
    config = check(TrainConfig(**{"device": "cpu", **settings}))
    return Trainer(prepare(data, config), config)


@pytest.fixture(scope="module")
def cancer() -> Dataset:
    return breast_cancer()


@pytest.fixture(scope="module")
def whitening(cancer) -> Whitening:
    run = trainer(cancer, dtype="float64", max_epochs=1)
    return Whitening(run.stats, torch.float64, torch.device("cpu")), run


def test_the_whitened_hessian_is_the_identity(whitening):
    white, run = whitening
    S = run.stats.S.numpy() / run.stats.q
    M = white.M.numpy()
    assert white.rank == S.shape[0]  # the breast-cancer columns are collinear, not singular
    np.testing.assert_allclose(M.T @ S @ M, np.eye(white.rank), atol=1e-9)
    np.testing.assert_allclose(white.M_pinv.numpy() @ M, np.eye(white.rank), atol=1e-9)


def test_the_gradient_in_v_is_autograds_of_the_reparametrised_loss(whitening):
    white, run = whitening
    X, Y = run.data.train.X, run.data.train.Y  # float64
    V = torch.randn(white.rank, Y.shape[1], dtype=torch.float64, requires_grad=True)
    theta = white.M @ V  # (n+1, p)
    loss = ((X @ theta[:-1] + theta[-1] - Y) ** 2).sum() / X.shape[0]
    (expected,) = torch.autograd.grad(loss, V)
    W = theta[:-1].detach().requires_grad_()
    b = theta[-1].detach().requires_grad_()
    grad_W, grad_b = torch.autograd.grad(((X @ W + b - Y) ** 2).sum() / X.shape[0], (W, b))
    torch.testing.assert_close(white.gradient(grad_W, grad_b), expected, rtol=1e-10, atol=1e-12)


def test_coordinates_and_weights_are_inverse_maps(whitening):
    white, _ = whitening
    V = torch.randn(white.rank, 1, dtype=torch.float64)
    W, b = torch.empty(white.rank - 1, 1, dtype=torch.float64), torch.empty(1, dtype=torch.float64)
    white.weights_into(V, W, b)
    torch.testing.assert_close(white.coordinates(W, b), V, rtol=1e-9, atol=1e-9)
    # The largest row norm in V is the rows' largest leverage times q, at most q.
    norm2 = white.max_row_norm2(whitening[1].data.train.X)
    assert white.rank <= norm2 <= whitening[1].stats.q


@pytest.mark.parametrize("optimizer", ["gd", "sgd", "adam"])
def test_auto_whitens_an_ill_conditioned_mini_batch_run_and_it_converges(cancer, optimizer):
    # Unwhitened, batch 32 reached 7e-4 only at the 20,000-epoch limit (κ ≈ 1.9e4).
    momentum = 0.9 if optimizer == "sgd" else 0.0
    run = trainer(cancer, batch_size=32, optimizer=optimizer, momentum=momentum).fit()
    metrics = run.metrics()
    assert metrics["whitened"] is True and "whitened features (κ 1.9e+04" in run.precondition_note
    assert metrics["converged"] is True and metrics["gap_to_optimum"] < 1e-3
    assert metrics["epochs"] < 5_000


def test_auto_leaves_full_batch_and_well_conditioned_runs_plain(cancer):
    assert trainer(cancer, max_epochs=1).whitening is None  # heavy ball: O(√κ) epochs
    diabetes = load_dataset("diabetes")  # κ ≈ 420
    assert trainer(diabetes, batch_size=32, max_epochs=1).whitening is None
    assert trainer(cancer, batch_size=32, precondition="none", max_epochs=1).whitening is None


def test_whiten_on_full_batch_is_newtons_step(cancer):
    run = trainer(cancer, precondition="whiten", optimizer="gd", dtype="float64").fit()
    # Hessian 2I and the rate 2/(L+μ) = 1/2: the first step lands on the optimum.
    assert run.epoch <= 2 and run.metrics()["gap_to_optimum"] < 1e-9


def test_rank_deficient_features_reach_the_minimum_norm_optimum():
    base = load_dataset("diabetes")
    X = np.hstack([base.X, base.X[:, :1]])  # a duplicate column: rank n, not n + 1
    names = (*base.feature_names, "copy")
    data = Dataset(X=X, Y=base.Y, feature_names=names, target_names=base.target_names, name="d")
    run = trainer(data, batch_size=32, precondition="whiten", dtype="float64").fit()
    assert run.whitening.rank == X.shape[1]  # n + 1 columns with the intercept, one lost
    assert run.metrics()["gap_to_optimum"] < 1e-3
    W = run.weights[0]
    # The duplicate pair shares its weight equally, as the minimum-norm optimum does.
    torch.testing.assert_close(W[0], W[-1], rtol=1e-6, atol=1e-6)
    assert float((W - run.reference.W).norm() / run.reference.W.norm()) < 0.05


def test_wide_data_is_not_whitened_by_auto_and_says_so():
    rng = np.random.default_rng(0)
    n = AUTO_MAX_COLUMNS
    Z = rng.standard_normal((2 * n, n))
    Z[:, 1] = Z[:, 0] + 1e-3 * Z[:, 1]  # collinear: κ far above the auto threshold
    Y = Z @ rng.standard_normal((n, 1))
    data = Dataset(
        X=Z, Y=Y, feature_names=tuple(f"x{i}" for i in range(n)), target_names=("y",), name="w"
    )
    run = trainer(data, batch_size=64, max_epochs=1, test_fraction=0.0)
    assert run.whitening is None
    assert run.precondition_note.startswith("not whitened") and "--precondition whiten" in (
        run.precondition_note
    )


def test_a_whitened_run_resumes_bit_for_bit(cancer):
    settings = dict(batch_size=32, optimizer="sgd", momentum=0.9, max_epochs=30, tol=0.0)
    whole = trainer(cancer, **settings).fit()
    first = trainer(cancer, **settings).fit(max_epochs=11)
    second = trainer(cancer, **settings)
    second.load_state(first.state())
    second.fit()
    assert torch.equal(second.W, whole.W) and torch.equal(second.V, whole.V)
    assert second.history["train_mse"] == whole.history["train_mse"]


def test_the_iterate_mean_keeps_moving_in_float32():
    # 20,000 steps at 1, then 20,000 at 1 + 1e-5: each late update is 2/(k+1)·1e-5 ≈ 5e-10,
    # far below float32's half-ulp of 1 (6e-8). A float32 mean froze at exactly 1.
    W, b = torch.ones(1, 1), torch.zeros(1)
    mean = IterateAverage(W, b, enabled=True)
    expected = 0.0
    for k in range(1, 40_001):
        value = 1.0 if k <= 20_000 else 1.0 + 1e-5
        W.fill_(value)
        mean.update(W, b)
        expected += (2.0 / (k + 1)) * (value - expected) if k > 1 else value - expected
    assert mean.weights(W, b)[0].dtype == torch.float32
    assert float(mean.weights(W, b)[0]) - 1.0 == pytest.approx(expected - 1.0, rel=1e-2)
    assert expected - 1.0 == pytest.approx(0.75e-5, rel=1e-3)


def test_a_batch_of_every_row_says_it_is_full_batch(recwarn):
    from handgrad import GDRegressor

    data = load_dataset("linnerud")
    run = trainer(data, batch_size=1000, max_epochs=2)
    assert run.full_batch and run.batch_note.startswith("batch size 1000 is at least the 16")
    GDRegressor(batch_size=5000, max_epochs=3).fit(data.X, data.Y)
    messages = [str(w.message) for w in recwarn if w.category is UserWarning]
    assert any("batch_size=5000 is at least the 20 training rows" in m for m in messages)


def test_partial_fit_after_a_whitened_fit_goes_on_in_its_coordinates(cancer):
    from handgrad import GDRegressor

    model = GDRegressor(batch_size=32, precondition="whiten", random_state=0)
    model.fit(cancer.X, cancer.Y[:, 0])
    before = model.score(cancer.X, cancer.Y[:, 0])
    # It used to load fit's V into coordinates built from these 100 rows: diverged.
    model.partial_fit(cancer.X[:100], cancer.Y[:100, 0])
    assert model._trainer.whitening is not None
    assert model.score(cancer.X, cancer.Y[:, 0]) == pytest.approx(before, abs=1e-3)


def test_resume_takes_the_checkpoints_basis_not_a_recomputed_one(cancer):
    settings = dict(batch_size=32, optimizer="sgd", momentum=0.9, max_epochs=20, tol=0.0)
    whole = trainer(cancer, **settings).fit()
    first = trainer(cancer, **settings).fit(max_epochs=7)
    second = trainer(cancer, **settings)
    # As if the statistics had differed in their last bits (other ranks): a rotated
    # basis. The checkpoint's maps must win, or V means something else.
    Q, _ = torch.linalg.qr(torch.randn(second.whitening.rank, second.whitening.rank))
    second.whitening.M = second.whitening.M @ Q.to(second.whitening.M)
    second.load_state(first.state())
    second.fit()
    assert torch.equal(second.W, whole.W) and torch.equal(second.b, whole.b)


def test_a_column_far_from_zero_keeps_its_rank_unstandardised():
    # x = 1e8 ± 1 beside the column of ones: uncentred, their scaled Gram matrix is
    # singular to rounding and the whitening dropped the slope (gap 388).
    rng = np.random.default_rng(0)
    x = 1e8 + rng.standard_normal((400, 1))
    X = np.hstack([x, rng.standard_normal((400, 1))])
    Y = 2.0 * (x - 1e8) + X[:, 1:] + 0.1 * rng.standard_normal((400, 1))
    data = Dataset(X=X, Y=Y, feature_names=("big", "z"), target_names=("y",), name="far")
    run = trainer(data, batch_size=32, standardize=False, precondition="whiten", dtype="float64")
    assert run.whitening.rank == run.reference.rank == 3
    run.fit()
    assert run.metrics()["gap_to_optimum"] < 1e-3
