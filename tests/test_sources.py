"""Chunk sources read what the file holds, in fixed chunks, and refuse bad files clearly."""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from handgrad.cli import main
from handgrad.data.arrow import column_values
from handgrad.data.parquet import ParquetSource
from handgrad.data.sources import ArraySource, NpySource, chunk_rows_for
from handgrad.data.stream import open_source
from handgrad.errors import UserError


def _concat(source):
    # A chunk may be a view of a buffer the source reuses: copied before the next is read.
    arrays, chunks = [], []
    for chunk in source.chunks():
        arrays.append((chunk.X.copy(), chunk.Y.copy()))
        chunks.append(chunk)
    starts = [c.start for c in chunks]
    assert starts == list(np.cumsum([0] + [c.rows for c in chunks[:-1]]))
    return np.vstack([X for X, _ in arrays]), np.vstack([Y for _, Y in arrays])


@pytest.fixture
def arrays(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 4)).astype(np.float32)
    Y = rng.standard_normal(1000)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    return X, Y


def test_npy_source_reads_every_row_in_fixed_ranges(tmp_path, arrays):
    X, Y = arrays
    source = NpySource(tmp_path / "X.npy", tmp_path / "Y.npy", chunk_rows=300)
    assert [c.rows for c in source.chunks()] == [300, 300, 300, 100]
    got_X, got_Y = _concat(source)
    assert got_X.dtype == np.float32  # kept as stored: no float64 copy of the file
    np.testing.assert_array_equal(got_X, X)
    np.testing.assert_array_equal(got_Y[:, 0], Y)
    assert source.feature_names == ("x0", "x1", "x2", "x3") and source.target_names == ("y0",)
    assert chunk_rows_for(5) == (8 << 20) // 40  # default: 8 MiB of float64 rows


def test_npy_errors_say_what_to_do(tmp_path, arrays):
    np.save(tmp_path / "short.npy", np.zeros(999))
    with pytest.raises(UserError, match="has 1000 rows but .*short.npy has 999"):
        NpySource(tmp_path / "X.npy", tmp_path / "short.npy")
    np.save(tmp_path / "F.npy", np.asfortranarray(arrays[0]))
    with pytest.raises(UserError, match=r"Fortran order.*np.ascontiguousarray"):
        NpySource(tmp_path / "F.npy", tmp_path / "Y.npy")
    data = (tmp_path / "X.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"cut.npy ends early, at row 497 of 1000"):
        list(NpySource(tmp_path / "cut.npy", tmp_path / "Y.npy").chunks())
    with pytest.raises(UserError, match=r"two .npy files, --data X.npy --target-file Y.npy"):
        open_source(tmp_path / "X.npy")


def _parquet(path, rows=250, row_group=100, **extra):
    rng = np.random.default_rng(1)
    columns = {"a": rng.standard_normal(rows), "b": rng.standard_normal(rows).astype(np.float32)}
    columns |= {"y": rng.standard_normal(rows)} | extra
    pq.write_table(pa.table(columns), path, row_group_size=row_group)
    return columns


def test_parquet_source_streams_row_groups_in_pieces(tmp_path):
    columns = _parquet(tmp_path / "d.parquet", note=["text"] * 250)
    with pytest.warns(UserWarning, match="skipped column 'note'"):
        source = ParquetSource(tmp_path / "d.parquet", target=["y"], chunk_rows=64)
    assert source.feature_names == ("a", "b")
    assert [c.rows for c in source.chunks()] == [64, 36, 64, 36, 50]
    X, Y = _concat(source)
    np.testing.assert_array_equal(X[:, 1], columns["b"])
    np.testing.assert_array_equal(Y[:, 0], columns["y"])


@pytest.mark.parametrize(
    "kind", [pa.float16(), pa.float32(), pa.int8(), pa.uint64(), pa.int32(), pa.bool_()]
)
def test_column_values_reads_sliced_buffers_as_arrow_converts_them(kind):
    values = np.random.default_rng(2).integers(0, 2 if kind == pa.bool_() else 100, 1000)
    column = pa.array(values).cast(kind)
    for start, rows in [(0, 1000), (3, 17), (8, 992), (517, 483), (999, 1), (5, 0)]:
        part = column.slice(start, rows)
        expected = pc.cast(part, pa.float64()).to_numpy()
        np.testing.assert_array_equal(column_values(part).astype(np.float64), expected)
    coded = column_values(pa.array(["b", "a", "b"]).dictionary_encode().slice(1))
    assert list(coded) == ["a", "b"]
    with_null = column_values(pa.array([1.0, None, 3.0], kind if kind != pa.bool_() else None))
    assert np.isnan(with_null.astype(np.float64)[1])


def test_parquet_batches_that_straddle_chunks_give_the_file_rows(tmp_path, monkeypatch):
    """Batches of 48 rows into chunks of 64: every copy after the first starts part-way
    into a batch (the slice's offset), and chunks and row groups end in mid-batch."""
    monkeypatch.setattr(sys.modules["handgrad.data.parquet"], "READ_ROWS", 48)
    flags = np.random.default_rng(3).integers(0, 2, 250).astype(bool)
    columns = _parquet(tmp_path / "d.parquet", row_group=130, n=np.arange(250), f=flags)
    source = ParquetSource(tmp_path / "d.parquet", target=["y"], chunk_rows=64)
    assert [c.rows for c in source.chunks()] == [64, 64, 2, 64, 56]
    X, Y = _concat(source)
    for j, name in enumerate(source.feature_names):
        np.testing.assert_array_equal(X[:, j], np.asarray(columns[name], dtype=np.float64))
    np.testing.assert_array_equal(Y[:, 0], columns["y"])


def test_a_parquet_folder_is_one_source(tmp_path):
    (tmp_path / "parts").mkdir()
    first = _parquet(tmp_path / "parts" / "0.parquet", rows=120)
    _parquet(tmp_path / "parts" / "1.parquet", rows=80)
    source = open_source(tmp_path / "parts", target=["y"])
    assert source.n_rows == 200 and source.n_groups == 3
    np.testing.assert_array_equal(_concat(source)[0][:120, 0], first["a"])
    pq.write_table(pa.table({"a": [1.0, 2.0]}), tmp_path / "parts" / "2.parquet")
    with pytest.raises(UserError, match=r"2.parquet has another schema .*\(it lacks b, y\)"):
        open_source(tmp_path / "parts", target=["y"])
    table = pa.table(first).cast(
        pa.schema([("a", pa.float32()), ("b", pa.float32()), ("y", pa.float64())])
    )
    pq.write_table(table, tmp_path / "parts" / "2.parquet")
    with pytest.raises(UserError, match=r"\(column 'a' is float in it, double there\)"):
        open_source(tmp_path / "parts", target=["y"])


def test_parquet_schema_is_checked_before_any_row_is_read(tmp_path):
    _parquet(tmp_path / "d.parquet")
    with pytest.raises(UserError, match=r"`--target price` is not a column of .*d.parquet"):
        ParquetSource(tmp_path / "d.parquet", target=["price"])
    pq.write_table(pa.table({"a": [1.0, None, 3.0], "y": [1.0, 2.0, 3.0]}), tmp_path / "n.parquet")
    source = ParquetSource(tmp_path / "n.parquet", target=["y"])
    from handgrad.config import TrainConfig, check
    from handgrad.training import prepare

    with pytest.raises(UserError, match=r"column 'a' of .*n.parquet has a missing value .* row 2"):
        prepare(source, check(TrainConfig(test_fraction=0.0)))


def test_small_files_are_read_whole_and_keep_their_checks(tmp_path):
    (tmp_path / "d.csv").write_text("a,y\n1,2\n2,4\n3,7\n")
    source = open_source(tmp_path / "d.csv", target=["y"])
    assert isinstance(source, ArraySource) and source.n_groups == 1


def test_cli_trains_on_npy_and_predicts_in_streamed_chunks(tmp_path, arrays, capsys):
    X, _ = arrays
    data = ["--data", str(tmp_path / "X.npy"), "--target-file", str(tmp_path / "Y.npy")]
    assert main(["train", *data, "--out", str(tmp_path / "run"), "--quiet"]) == 0
    out = tmp_path / "p.csv"
    assert (
        main(["predict", "--model", str(tmp_path / "run"), "--data", data[1], "--out", str(out)])
        == 0
    )
    lines = out.read_text().splitlines()
    assert lines[0] == "y0" and len(lines) == 1 + len(X)
    assert not list(tmp_path.glob(".p.csv.*"))  # the temporary file was renamed


def test_a_bad_cell_ends_the_run_before_anything_is_written(tmp_path, arrays, capsys):
    X, Y = arrays
    Y = Y.copy()
    Y[700] = np.inf
    np.save(tmp_path / "Y.npy", Y)
    data = ["--data", str(tmp_path / "X.npy"), "--target-file", str(tmp_path / "Y.npy")]
    assert main(["train", *data, "--out", str(tmp_path / "run")]) == 2
    assert "column 'y0' of" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_bad_cell_half_way_through_predict_leaves_no_file(tmp_path, arrays, monkeypatch):
    data = ["--data", str(tmp_path / "X.npy"), "--target-file", str(tmp_path / "Y.npy")]
    assert main(["train", *data, "--out", str(tmp_path / "run"), "--quiet"]) == 0
    X = arrays[0].copy()
    X[900, 2] = np.nan
    np.save(tmp_path / "new.npy", X)
    monkeypatch.setattr("handgrad.data.sources.CHUNK_BYTES", 8 * 4 * 256)  # 256-row chunks
    monkeypatch.setattr("handgrad.data.sources.MIN_CHUNK_ROWS", 256)
    out = tmp_path / "p.csv"
    args = ["predict", "--model", str(tmp_path / "run"), "--data", str(tmp_path / "new.npy")]
    assert main([*args, "--out", str(out)]) == 2
    assert not out.exists() and not list(tmp_path.glob(".p.csv.*"))
