"""Streamed training equals in-memory training: same splits, statistics and iterates."""

from __future__ import annotations

import re
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from handgrad.config import TrainConfig, check
from handgrad.data.dataset import Dataset
from handgrad.data.moments import moments_pass
from handgrad.data.parquet import ParquetSource
from handgrad.data.sources import ArraySource, NpySource
from handgrad.data.splitting import RowSplit
from handgrad.errors import UserError
from handgrad.training import Trainer, prepare

CHUNK = 64


@pytest.fixture
def streamed(monkeypatch):
    """No split is kept in memory: every epoch reads the files again."""
    monkeypatch.setattr(sys.modules["handgrad.training.prepare"], "CACHE_BYTES", 0)


def problem(q=500, n=7, p=2, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    spread = rng.standard_normal((q, n)) * rng.uniform(0.5, 20, n)
    Y = spread @ rng.standard_normal((n, p)) + rng.standard_normal((q, p)) + 3.0
    # Far from zero: the moments must keep the precision of the spread.
    X = spread + rng.uniform(-50, 50, n) + np.eye(1, n) * 1e6
    names = tuple(f"x{j}" for j in range(n)), tuple(f"y{j}" for j in range(p))
    return Dataset(X, Y, *names, "problem")


def npy_source(tmp_path, dataset: Dataset) -> NpySource:
    np.save(tmp_path / "X.npy", dataset.X)
    np.save(tmp_path / "Y.npy", dataset.Y)
    return NpySource(tmp_path / "X.npy", tmp_path / "Y.npy", chunk_rows=CHUNK)


def fit(data, **settings) -> Trainer:
    config = check(TrainConfig(**({"dtype": "float64", "tol": 0.0, "max_epochs": 25} | settings)))
    return Trainer(prepare(data, config), config).fit()


def assert_same_descent(a: Trainer, b: Trainer, rtol: float) -> None:
    for key in ("train_mse", "test_mse"):
        np.testing.assert_allclose(a.history[key], b.history[key], rtol=rtol)
    torch.testing.assert_close(a.W, b.W, rtol=rtol, atol=1e-12)
    torch.testing.assert_close(a.b, b.b, rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("path", ["stats", "fused", "chained"])
def test_streamed_full_batch_equals_in_memory(tmp_path, streamed, path):
    dataset = problem()
    memory = fit(dataset, path=path, learning_rate=0.05)
    stream = fit(npy_source(tmp_path, dataset), path=path, learning_rate=0.05)
    assert stream.data.train.cache is None  # it did stream
    # Full batch: the same sums, added in another order (per chunk): rounding only.
    assert_same_descent(memory, stream, rtol=1e-10)
    for key, value in memory.metrics().items():
        if isinstance(value, float) and key != "train_seconds":
            assert stream.metrics()[key] == pytest.approx(value, rel=1e-10, abs=1e-12), key


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_streamed_minibatches_equal_arrays_cut_the_same_way(tmp_path, streamed, optimizer):
    dataset = problem()
    settings = dict(batch_size=16, optimizer=optimizer, learning_rate=0.01, max_epochs=4)
    memory = fit(ArraySource.of(dataset, chunk_rows=CHUNK), **settings)
    stream = fit(npy_source(tmp_path, dataset), **settings)
    assert memory.history["train_mse"] == stream.history["train_mse"]
    assert torch.equal(memory.W, stream.W) and torch.equal(memory.b, stream.b)


def test_parquet_row_groups_are_the_chunks(tmp_path, streamed):
    dataset = problem(q=300)
    columns = dict(zip(dataset.feature_names, dataset.X.T, strict=True))
    columns |= dict(zip(dataset.target_names, dataset.Y.T, strict=True))
    pq.write_table(pa.table(columns), tmp_path / "d.parquet", row_group_size=CHUNK)
    source = ParquetSource(tmp_path / "d.parquet", target=list(dataset.target_names))
    assert [len(c.X) for c in source.chunks()] == [64, 64, 64, 64, 44]
    settings = dict(batch_size=10, max_epochs=3, learning_rate=0.01)
    memory = fit(ArraySource.of(dataset, chunk_rows=CHUNK), **settings)
    stream = fit(source, **settings)
    assert torch.equal(memory.W, stream.W)


def test_one_chunk_in_memory_shuffles_all_rows_together():
    """Rows in memory are one chunk, so a mini-batch mixes rows from the whole data set."""
    dataset = problem(q=400)
    config = check(TrainConfig(dtype="float64", batch_size=50, test_fraction=0.0))
    trainer = Trainer(prepare(dataset, config), config)
    first = next(iter(trainer._batches(trainer.data.train)))[0]
    X = trainer.data.train.X
    rows = [int(torch.nonzero((row == X).all(dim=1))[0]) for row in first]
    assert max(rows) - min(rows) > 200


def test_resume_mid_run_repeats_the_streamed_descent(tmp_path, streamed):
    source = npy_source(tmp_path, problem())
    config = check(TrainConfig(dtype="float64", batch_size=32, max_epochs=6, tol=0.0))
    straight = Trainer(prepare(source, config), config).fit()
    first = Trainer(prepare(source, config), config).fit(max_epochs=3)
    second = Trainer(prepare(source, config), config)
    second.load_state(first.state())
    second.fit()
    assert torch.equal(straight.W, second.W) and torch.equal(straight.b, second.b)


def test_moments_match_numpy_on_each_split():
    dataset = problem(q=1000)
    split = RowSplit.make(1000, 0.1, 0.2, seed=3)
    result = moments_pass(ArraySource.of(dataset, chunk_rows=CHUNK), split)
    labels = split.labels(0, 1000)
    A = np.hstack([dataset.X, dataset.Y])
    for k, moments in enumerate(result):
        rows = A[labels == k]
        assert moments.q == len(rows) == split.sizes[k]
        np.testing.assert_allclose(moments.mean, rows.mean(axis=0), rtol=1e-14)
        centred = rows - rows.mean(axis=0)
        expected = centred.T @ centred
        # Each entry of C is a sum of q products about a shift s within a few spreads σ
        # of the mean: its rounding is about q·eps·(1 + ((μ − s)/σ)²) ≈ 1e-12 of σⱼσₖ·q.
        spread = np.sqrt(np.diagonal(expected))
        bound = 1e-11 * np.outer(spread, spread)
        np.testing.assert_array_less(np.abs(moments.C - expected), bound)


def test_split_is_exact_and_does_not_depend_on_the_chunks():
    split = RowSplit.make(1003, 0.1, 0.2, seed=7)
    whole = split.labels(0, 1003)
    pieces = np.concatenate([split.labels(s, min(64, 1003 - s)) for s in range(0, 1003, 64)])
    assert np.array_equal(whole, pieces)
    assert np.bincount(whole).tolist() == [702, 100, 201]
    assert not np.array_equal(whole, RowSplit.make(1003, 0.1, 0.2, seed=8).labels(0, 1003))


def test_a_bad_cell_found_while_streaming_names_file_column_and_row(tmp_path):
    dataset = problem(q=500)
    dataset.X[321, 3] = np.nan
    source = npy_source(tmp_path, dataset)
    with pytest.raises(UserError, match=r"column 'x3' of .*X\.npy has a missing value .* row 322"):
        prepare(source, check(TrainConfig()))


def test_float64_values_beyond_float32_are_refused_for_float32_training(tmp_path):
    dataset = problem(q=200)
    dataset.Y[150, 1] = 1e39
    source = npy_source(tmp_path, dataset)
    with pytest.raises(UserError, match=r"column 'y1' of .*Y\.npy holds 1e\+39 at row 151"):
        prepare(source, check(TrainConfig(dtype="float32")))
    prepare(source, check(TrainConfig(dtype="float64")))


@pytest.mark.parametrize("value", [1e200, -1e307])
def test_values_whose_squares_overflow_float64_are_named_not_lost(tmp_path, value):
    """Finite cells whose block sums overflow: once a NaN variance (1e200), once a block
    dropped from the moments without a word (1e307)."""
    dataset = problem(q=200)
    dataset.X[150, 4] = value
    source = npy_source(tmp_path, dataset)
    held = re.escape(f"holds {value:g} at row 151")
    with pytest.raises(UserError, match=rf"column 'x4' of .*X\.npy {held}"):
        prepare(source, check(TrainConfig(dtype="float64")))
    dataset.X[150, 4] = 1e140  # large, but its squares fit
    (tmp_path / "ok").mkdir()
    prepare(npy_source(tmp_path / "ok", dataset), check(TrainConfig(dtype="float64")))


@pytest.mark.parametrize("stop_after", [3, 8, 11])  # chunks; 8 per epoch, so 8 ends one
@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_resume_part_way_through_an_epoch_is_bit_identical(
    tmp_path, streamed, stop_after, optimizer
):
    from handgrad.runs.checkpoint import load_checkpoint, save_checkpoint

    source = npy_source(tmp_path, problem())
    settings = dict(dtype="float64", batch_size=16, max_epochs=3, tol=0.0, optimizer=optimizer)
    config = check(TrainConfig(**settings, learning_rate=0.01))
    straight = Trainer(prepare(source, config), config).fit()
    first = Trainer(prepare(source, config), config)
    calls = []
    first.chunk_hook = lambda t: calls.append(t.position) or len(calls) == stop_after
    first.fit()
    assert first.stop_reason == "interrupted" and first.epoch == (stop_after - 1) // 8
    assert first.position[:2] == calls[-1][:2] and calls[-1][1] >= 1
    save_checkpoint(tmp_path / "checkpoint.pt", first.state(), 0.0)
    second = Trainer(prepare(source, config), config)
    second.load_state(load_checkpoint(tmp_path / "checkpoint.pt")[0])
    second.fit()
    assert torch.equal(straight.W, second.W) and torch.equal(straight.b, second.b)
    for key, values in straight.history.items():
        np.testing.assert_array_equal(values, second.history[key])  # NaN equals NaN


def test_ctrl_c_in_a_streamed_epoch_stops_at_the_chunk_and_resume_ends_the_same(
    tmp_path, streamed, monkeypatch, capsys
):
    import os
    import signal

    from handgrad.cli import main
    from handgrad.training import passes

    npy_source(tmp_path, problem())
    monkeypatch.setattr("handgrad.data.sources.CHUNK_BYTES", 8 * 9 * CHUNK)  # 9 columns
    monkeypatch.setattr("handgrad.data.sources.MIN_CHUNK_ROWS", CHUNK)
    data = ["--data", str(tmp_path / "X.npy"), "--target-file", str(tmp_path / "Y.npy")]
    flags = [*data, "--batch-size", "16", "--epochs", "3", "--dtype", "float64", "--quiet"]
    assert main(["train", *flags, "--out", str(tmp_path / "straight")]) == 0
    batches, chunks = passes.batches, []

    def interrupted(*args):  # Ctrl-C arrives during the 11th chunk (the 2nd epoch)
        def done(at):
            chunks.append(at)
            if len(chunks) == 11:
                os.kill(os.getpid(), signal.SIGINT)
            return args[-1](at)

        return batches(*args[:-1], done)

    monkeypatch.setattr(passes, "batches", interrupted)
    cut = tmp_path / "cut"
    assert main(["train", *flags, "--out", str(cut)]) == 128 + signal.SIGINT
    assert "stopped at chunk 1 of group 3 of epoch 2" in capsys.readouterr().err
    assert len(chunks) == 11
    monkeypatch.setattr(passes, "batches", batches)
    assert main(["train", "--resume", str(cut), "--quiet"]) == 0
    weights = [
        (run / "model" / "model.safetensors").read_bytes() for run in (tmp_path / "straight", cut)
    ]
    assert weights[0] == weights[1]


def test_ctrl_c_after_training_is_deferred_until_the_results_are_written(
    tmp_path, monkeypatch, capsys
):
    """A signal during the final pass (a whole read of a large file) would leave a
    checkpoint that does not know training ended: a resume would then train on, past the
    uninterrupted run. So the results are finished first, and the run says so."""
    import json
    import os
    import signal

    from handgrad.cli import main
    from handgrad.training import Trainer

    metrics = Trainer.metrics

    def interrupted(trainer):
        os.kill(os.getpid(), signal.SIGINT)
        return metrics(trainer)

    monkeypatch.setattr(Trainer, "metrics", interrupted)
    flags = ["--dataset", "linnerud", "--quiet", "--out"]
    assert main(["train", *flags, str(tmp_path / "late")]) == 0
    assert "training is over; writing its results" in capsys.readouterr().err
    written = json.loads((tmp_path / "late" / "metrics.json").read_text())
    assert written["stop_reason"] != "interrupted"
    monkeypatch.setattr(Trainer, "metrics", metrics)
    assert main(["train", *flags, str(tmp_path / "straight")]) == 0
    weights = [
        (tmp_path / r / "model" / "model.safetensors").read_bytes() for r in ("late", "straight")
    ]
    assert weights[0] == weights[1]
