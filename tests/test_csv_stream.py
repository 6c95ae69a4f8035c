"""A large CSV is streamed by pyarrow's reader, with the whole-file reader's results and
messages: the same statistics, and the same file, column, data row and line for a bad cell."""

from __future__ import annotations

import numpy as np
import pytest

from handgrad.cli import main
from handgrad.config import TrainConfig, check
from handgrad.data.csvsource import CsvSource, _plain_lines
from handgrad.data.stream import open_source
from handgrad.errors import UserError
from handgrad.training import prepare

BLOCK = 4096  # bytes of text per chunk: a few dozen rows, so that the file has many chunks


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 3)) * [1.0, 10.0, 1e-3] + [5.0, -2.0, 0.0]
    Y = X @ [1.0, 0.5, 200.0] + rng.standard_normal(600)
    lines = ["a,note,b,c,y"]
    rows = zip(X.tolist(), Y.tolist(), strict=True)
    lines += [f"{x[0]!r},id{i},{x[1]!r},{x[2]!r},{y!r}" for i, (x, y) in enumerate(rows)]
    return lines


def _write(tmp_path, lines, name="d.csv", end="\n"):
    path = tmp_path / name
    path.write_text(end.join(lines) + end)
    return path


@pytest.mark.filterwarnings("ignore:skipped column")
def test_streamed_csv_gives_the_statistics_of_the_whole_file(tmp_path, table):
    path = _write(tmp_path, table)
    source = CsvSource(path, ["y"], block_bytes=BLOCK)
    chunks = list(source.chunks())
    assert len(chunks) > 5 and source.n_rows == 600
    assert [c.start for c in chunks] == list(np.cumsum([0] + [c.rows for c in chunks[:-1]]))
    assert source.feature_names == ("a", "b", "c")
    config = check(TrainConfig(val_fraction=0.1, test_fraction=0.2))
    whole = prepare(open_source(path, ["y"], stream=False), config)
    streamed = prepare(source, config)
    for s, w in zip(streamed.splits, whole.splits, strict=True):
        assert s.n_samples == w.n_samples
        for a, b in ((s.stats.S, w.stats.S), (s.stats.T, w.stats.T), (s.sst, w.sst)):
            assert np.allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-10 * float(b.abs().max()))


@pytest.mark.parametrize("cell", ["abc", "", "NA", "inf", "1e400", '"1,5"'])
@pytest.mark.parametrize("row", [3, 450])  # in the head read as text; found while streaming
@pytest.mark.filterwarnings("ignore:skipped column")
def test_a_bad_cell_gets_the_whole_file_readers_message(tmp_path, table, cell, row):
    lines = list(table)
    parts = lines[row].split(",")
    parts[2] = cell
    lines[row] = ",".join(parts)
    lines.insert(200, "")  # a blank line: data rows and lines part ways
    path = _write(tmp_path, lines)
    config = check(TrainConfig(test_fraction=0.0))
    with pytest.raises(UserError) as whole:
        prepare(open_source(path, ["y"], stream=False), config)
    monkey = pytest.MonkeyPatch()
    monkey.setattr("handgrad.data.csvsource.HEAD_BYTES", 2000)
    try:
        with pytest.raises(UserError) as streamed:
            prepare(CsvSource(path, ["y"], block_bytes=BLOCK), config)
    finally:
        monkey.undo()
    assert str(streamed.value) == str(whole.value)
    assert f"(line {row + 1 + (row > 200)})" in str(streamed.value)


def test_rows_are_counted_without_parsing_when_the_file_is_plain(tmp_path, table):
    assert _plain_lines(_write(tmp_path, table)) == 601
    assert _plain_lines(_write(tmp_path, table, "crlf.csv", end="\r\n")) == 601
    quoted_header = ",".join(f'"{name}"' for name in table[0].split(","))
    path = _write(tmp_path, [quoted_header, *table[1:]], "q.csv")
    assert _plain_lines(path) is None and _plain_lines(path, len(quoted_header) + 1) == 600
    with pytest.warns(UserWarning):
        assert CsvSource(path, ["y"], block_bytes=BLOCK).n_rows == 600
    assert _plain_lines(_write(tmp_path, [*table[:5], "", *table[5:]], "blank.csv")) is None
    quoted = [table[0], '1,"a\nb",2,3,4', *table[1:]]
    path = _write(tmp_path, quoted, "quoted.csv")
    assert _plain_lines(path) is None
    with pytest.warns(UserWarning):
        assert CsvSource(path, ["y"], block_bytes=BLOCK).n_rows == 601


def test_a_blank_crlf_line_across_two_reads_is_not_counted(tmp_path):
    """ "\n\r" ends the first 8 MiB read and "\n" starts the next: a blank line, which the
    reader skips, so the count must come from the reader, not from the newlines."""
    header, first = b"a,y\r\n", b"100,2\r\n"
    lines = ((8 << 20) - 1 - len(first)) // 5  # "1,2\r\n": the "\r" of the blank line ends the read
    path = tmp_path / "crlf.csv"
    path.write_bytes(header + first + b"1,2\r\n" * lines + b"\r\n" + b"3,4\r\n" * 2)
    assert len(first) + 5 * lines == (8 << 20) - 1  # the read's last byte is the blank's "\r"
    assert _plain_lines(path, len(header)) is None
    assert CsvSource(path, ["y"]).n_rows == 1 + lines + 2


@pytest.mark.filterwarnings("ignore:skipped column")
def test_a_bad_cell_half_way_ends_the_run_and_saves_no_model(tmp_path, table, monkeypatch, capsys):
    lines = list(table)
    parts = lines[500].split(",")
    parts[3] = "oops"
    lines[500] = ",".join(parts)
    path = _write(tmp_path, lines)
    monkeypatch.setattr("handgrad.data.stream.STREAM_MIN_BYTES", 0)
    monkeypatch.setattr("handgrad.data.csvsource.BLOCK_BYTES", BLOCK)
    monkeypatch.setattr("handgrad.data.csvsource.HEAD_BYTES", 2000)
    assert isinstance(open_source(path, ["y"]), CsvSource)
    code = main(["train", "--data", str(path), "--target", "y", "--out", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err
    assert "column 'c' of" in err and "'oops' at data row 500 (line 501)" in err
    assert not (tmp_path / "run" / "model").exists()


@pytest.mark.filterwarnings("ignore:skipped column")
def test_a_row_of_another_width_is_named_by_its_line(tmp_path, table):
    lines = list(table)
    lines[450] += ",7"
    path = _write(tmp_path, lines)
    with pytest.raises(UserError, match=r"^line 451 of .*d.csv has 6 cells but the header has 5"):
        list(CsvSource(path, ["y"], block_bytes=BLOCK).chunks())


@pytest.mark.filterwarnings("ignore:skipped column")
def test_predict_streams_a_large_csv_with_the_whole_file_checks(
    tmp_path, table, monkeypatch, capsys
):
    path = _write(tmp_path, table)
    assert (
        main(["train", "--data", str(path), "--target", "y", "--out", str(tmp_path / "run")]) == 0
    )
    whole = tmp_path / "whole.csv"
    model = ["predict", "--model", str(tmp_path / "run"), "--data", str(path)]
    assert main([*model, "--out", str(whole)]) == 0
    monkeypatch.setattr("handgrad.data.predictions.STREAM_MIN_BYTES", 0)
    monkeypatch.setattr("handgrad.data.csvsource.BLOCK_BYTES", BLOCK)
    monkeypatch.setattr("handgrad.data.csvsource.HEAD_BYTES", 2000)
    monkeypatch.delattr("handgrad.data.files.load_prediction_file")  # not read whole
    streamed = tmp_path / "streamed.csv"
    assert main([*model, "--out", str(streamed)]) == 0
    assert streamed.read_text() == whole.read_text()
    lines = list(table)
    parts = lines[450].split(",")
    parts[0] = "NA"
    lines[450] = ",".join(parts)
    _write(tmp_path, lines, "bad.csv")
    args = ["predict", "--model", str(tmp_path / "run"), "--data", str(tmp_path / "bad.csv")]
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "p.csv")]) == 2
    assert not (tmp_path / "p.csv").exists()
    err = capsys.readouterr().err
    assert "column 'a' of" in err and "('NA') at data row 450 (line 451)" in err
    assert "cannot predict for rows with missing values" in err
