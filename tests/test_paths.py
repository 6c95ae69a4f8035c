"""The gradient paths: each computes the chained path's loss and gradients, and "auto"
picks the path its documented rule names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import handgrad.training.trainer as trainer_module
from handgrad import GDRegressor
from handgrad.config import TrainConfig, check
from handgrad.data.datasets import load_dataset, synthetic
from handgrad.training import Trainer, prepare
from handgrad.training.paths import (
    FUSED_MIN_ELEMENTS,
    ChainedPath,
    FusedPath,
    SmallBatchPath,
    StatsPath,
    choose_path,
)
from handgrad.training.statistics import statistics


def problem(q=40, n=5, p=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(q, n, generator=g, dtype=torch.float64)
    Y = torch.randn(q, p, generator=g, dtype=torch.float64)
    W = torch.randn(n, p, generator=g, dtype=torch.float64)
    b = torch.randn(p, generator=g, dtype=torch.float64)
    return X, Y, W, b


def fit(dataset, **settings) -> Trainer:
    config = check(TrainConfig(**settings))
    return Trainer(prepare(dataset, config), config).fit()


@pytest.mark.parametrize(
    "path",
    [FusedPath("manual"), FusedPath("autograd"), ChainedPath("autograd"), "stats"],
    ids=["fused-manual", "fused-autograd", "chained-autograd", "stats"],
)
def test_each_path_gives_the_chained_loss_and_gradients(path):
    X, Y, W, b = problem()
    if path == "stats":
        path = StatsPath(statistics(X, Y))
    loss, grad_W, grad_b = path(X, Y, W, b)
    expected = ChainedPath("manual")(X, Y, W, b)
    # float64; the stats path forms the loss as a difference of larger terms.
    assert float(loss) == pytest.approx(float(expected[0]), rel=1e-12)
    torch.testing.assert_close(grad_W, expected[1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad_b, expected[2], rtol=1e-12, atol=1e-12)
    assert grad_W.shape == W.shape and grad_b.shape == b.shape


def test_chained_manual_matches_torch_autograd():
    X, Y, W, b = problem(seed=1)
    W_ref, b_ref = W.clone().requires_grad_(), b.clone().requires_grad_()
    reference = ((X @ W_ref + b_ref - Y) ** 2).sum() / X.shape[0]
    reference.backward()
    loss, grad_W, grad_b = ChainedPath("manual")(X, Y, W, b)
    assert float(loss) == pytest.approx(float(reference.detach()), rel=1e-13)
    torch.testing.assert_close(grad_W, W_ref.grad, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(grad_b, b_ref.grad, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("batch_size", [None, 16])
@pytest.mark.parametrize("grad", ["manual", "autograd"])
def test_fused_trajectory_equals_chained(batch_size, grad):
    dataset = synthetic(samples=120, features=6, targets=2, noise=0.5, seed=1)[0]
    # Full batch reaches the optimum's rounding floor in about 10 epochs, where which path
    # gets there first is rounding noise: compare the epochs before it.
    epochs = 8 if batch_size is None else 40
    settings = dict(batch_size=batch_size, max_epochs=epochs, tol=0.0, dtype="float64", grad=grad)
    fused = fit(dataset, path="fused", **settings)
    chained = fit(dataset, path="chained", **settings)
    np.testing.assert_allclose(fused.history["train_mse"], chained.history["train_mse"], rtol=1e-10)
    torch.testing.assert_close(fused.W, chained.W, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fused.b, chained.b, rtol=1e-10, atol=1e-12)
    assert fused.metrics()["path"] == "fused"


def test_stats_trajectory_equals_chained():
    dataset = synthetic(samples=200, features=7, targets=3, noise=0.5, seed=4)[0]
    settings = dict(max_epochs=60, tol=0.0, dtype="float64", learning_rate=0.05)
    stats = fit(dataset, path="stats", **settings)
    chained = fit(dataset, path="chained", **settings)
    np.testing.assert_allclose(stats.history["train_mse"], chained.history["train_mse"], rtol=1e-10)
    np.testing.assert_allclose(stats.history["grad_norm"], chained.history["grad_norm"], rtol=1e-8)
    torch.testing.assert_close(stats.W, chained.W, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(stats.b, chained.b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("q", "n", "batch_size", "expected"),
    [
        (50, 13, None, "stats"),  # the lab: full batch, more rows than unknowns
        (10, 13, None, "small"),  # q <= n + 1: S would cost more than a pass
        (5000, 100, 32, "small"),  # small batches: NumPy, no torch dispatch per product
        (5000, 100, FUSED_MIN_ELEMENTS // 100, "fused"),  # large batches: one pass
        (50, 13, 50, "stats"),  # a batch as large as the data is full batch
    ],
)
def test_auto_picks_what_the_rule_says(q, n, batch_size, expected):
    config = check(TrainConfig(batch_size=batch_size))
    stats = statistics(torch.zeros(2, n), torch.zeros(2, 1))
    assert choose_path(config, q, n, stats).name == expected


def kernels_per_step(path, rows, n, p) -> int:
    """Kernel launches of one step of ``path`` off the CPU, counted by a dispatch mode on
    meta tensors (shapes, no values, no hardware): every op that is not a view or a
    dtype query. In-place ops count: they launch a kernel too."""
    from torch.utils._python_dispatch import TorchDispatchMode

    counted = []

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            returns = func._schema.returns
            alias = returns[0].alias_info if returns else None
            is_tensor = bool(returns) and str(returns[0].type) == "Tensor"
            if is_tensor and (alias is None or alias.is_write):
                counted.append(func)
            return func(*args, **(kwargs or {}))

    X, Y = torch.empty(rows, n, device="meta"), torch.empty(rows, p, device="meta")
    W, b = torch.empty(n, p, device="meta"), torch.empty(p, device="meta")
    path(X, Y, W, b)
    with Count():
        path(X, Y, W, b)
    return len(counted)


@pytest.mark.parametrize("rows", [32, 256, 4096])
def test_off_the_cpu_auto_takes_the_path_with_the_fewest_kernels(rows):
    # A mini-batch there is one block: the paths read X alike, and differ in launches.
    n, p = 100, 10
    paths = {"small": SmallBatchPath(), "fused": FusedPath("manual"), "chained": None}
    paths["chained"] = ChainedPath("manual")
    counts = {name: kernels_per_step(path, rows, n, p) for name, path in paths.items()}
    config = check(TrainConfig(batch_size=rows))
    chosen = choose_path(config, 10 * rows, n, None, torch.device("cuda")).name
    assert counts[chosen] == min(counts.values()), counts
    assert counts == {"small": 8, "fused": 8, "chained": 11}  # as paths.choose_path says


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_small_paths_torch_code_equals_its_numpy_code(dtype):
    # The torch code is what runs on a GPU; here on the CPU, against the NumPy code.
    gen = torch.Generator().manual_seed(0)
    X, W, b, Y = (
        torch.randn(s, generator=gen, dtype=dtype) for s in ((33, 5), (5, 3), (3,), (33, 3))
    )
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
    loss, grad_W, grad_b = SmallBatchPath(numpy=False)(X, Y, W, b)
    want = SmallBatchPath()(X, Y, W, b)
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0
    torch.testing.assert_close(loss, torch.tensor(want[0], dtype=dtype), **tol)
    torch.testing.assert_close(grad_W, want[1], **tol)
    torch.testing.assert_close(grad_b, want[2], **tol)


def test_small_batch_trajectory_equals_chained():
    dataset = synthetic(samples=120, features=6, targets=2, noise=0.5, seed=1)[0]
    settings = dict(batch_size=7, max_epochs=30, tol=0.0, dtype="float64", optimizer="gd")
    small = fit(dataset, path="small", **settings)
    chained = fit(dataset, path="chained", **settings)
    np.testing.assert_allclose(small.history["train_mse"], chained.history["train_mse"], rtol=1e-10)
    torch.testing.assert_close(small.W, chained.W, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(small.b, chained.b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("path", ["chained", "fused", "small", "stats"])
def test_a_named_path_is_used(path):
    dataset = synthetic(samples=60, features=4, targets=2, seed=0)[0]
    assert fit(dataset, path=path, max_epochs=2).metrics()["path"].split()[0] == path


def test_auto_on_the_lab_problem_is_recorded_as_stats():
    dataset = synthetic(samples=50, features=13, targets=3)[0]
    metrics = fit(dataset, test_fraction=0.0, max_epochs=3).metrics()
    assert metrics["path"] == "stats"


def test_gdregressor_results_do_not_depend_on_the_path(monkeypatch):
    dataset = load_dataset("diabetes")
    X, y = dataset.X, dataset.Y[:, 0]
    auto = GDRegressor().fit(X, y)
    forced = check(TrainConfig(path="chained"))

    def chained(config, q, n, stats, device):
        return choose_path(forced, q, n, stats, device)

    monkeypatch.setattr(trainer_module, "choose_path", chained)
    plain = GDRegressor().fit(X, y)
    assert plain._trainer.path.name == "chained" and auto._trainer.path.name == "stats"
    np.testing.assert_allclose(auto.coef_, plain.coef_, rtol=1e-7)
    assert auto.intercept_ == pytest.approx(plain.intercept_, rel=1e-9)
    assert abs(auto.n_iter_ - plain.n_iter_) <= 2
