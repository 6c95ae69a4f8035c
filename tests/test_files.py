"""Loading users' files: the happy paths, one clear UserError for every bad input, and a fuzz.

The error cases are a table (``CASES``); ``docs/errors.md`` quotes their messages, and
``test_docs_quote_the_real_messages`` keeps the two in step.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handgrad.data.dataset import Dataset
from handgrad.data.files import (
    DataWarning,
    check_fits_dtype,
    constant_columns,
    load_prediction_file,
    load_training_file,
    write_predictions_csv,
)
from handgrad.errors import UserError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


def write(folder: Path, files: dict) -> None:
    """Write each file: str as UTF-8 text, bytes as is, a callable as ``f(path)``."""
    for name, content in files.items():
        path = folder / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            content(path)


def npz(**arrays):
    return lambda path: np.savez(path, **arrays)


def parquet(frame: pd.DataFrame):
    return lambda path: frame.to_parquet(path)


def xlsx(path: Path) -> None:
    """The skeleton of an Excel workbook: a zip of XML parts under xl/."""
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")


# ---------------------------------------------------------------------------- happy paths


def test_csv_one_target(tmp_path):
    write(tmp_path, {"d.csv": "age,bmi,y\n1,2,3\n4,5.5,6\n-7,8e1,9\n"})
    data = load_training_file(tmp_path / "d.csv", ["y"])
    assert isinstance(data, Dataset)
    assert data.X.dtype == np.float64 and data.Y.dtype == np.float64
    np.testing.assert_array_equal(data.X, [[1, 2], [4, 5.5], [-7, 80]])
    np.testing.assert_array_equal(data.Y, [[3], [6], [9]])
    assert data.feature_names == ("age", "bmi") and data.target_names == ("y",)


def test_csv_several_targets_keep_file_order(tmp_path):
    write(tmp_path, {"d.csv": "y2,a,y1,b\n1,2,3,4\n5,6,7,8\n"})
    data = load_training_file(tmp_path / "d.csv", ["y1", "y2"])
    assert data.target_names == ("y1", "y2") and data.feature_names == ("a", "b")
    np.testing.assert_array_equal(data.Y, [[3, 1], [7, 5]])
    np.testing.assert_array_equal(data.X, [[2, 4], [6, 8]])


def test_chosen_features_in_the_order_given(tmp_path):
    write(tmp_path, {"d.csv": "a,b,c,y\n1,2,3,4\n5,6,7,8\n"})
    data = load_training_file(tmp_path / "d.csv", "y", features=["c", "a"])
    assert data.feature_names == ("c", "a")
    np.testing.assert_array_equal(data.X, [[3, 1], [7, 5]])


def test_tsv_txt_semicolons_crlf_bom_blank_lines_and_spaces(tmp_path):
    write(
        tmp_path,
        {
            "d.tsv": "a\tb\ty\n1\t2\t3\n4\t5\t6\n",
            "d.txt": "a b  y\n1 2 3\n\n 4 5 6\n",
            "semi.csv": "a;b;y\r\n1;2;3\r\n4;5;6\r\n",
            "bom.csv": "\ufeff a , b , y\n1, 2 ,3\n\n4,5,6\n\n",
        },
    )
    for name in ("d.tsv", "d.txt", "semi.csv", "bom.csv"):
        data = load_training_file(tmp_path / name, ["y"])
        np.testing.assert_array_equal(data.X, [[1, 2], [4, 5]], err_msg=name)
        assert data.feature_names == ("a", "b"), name


def test_parquet(tmp_path):
    frame = pd.DataFrame({"a": [1, 2, 3], "flag": [True, False, True], "y": [0.5, 1.5, 2.5]})
    write(tmp_path, {"d.parquet": parquet(frame)})
    data = load_training_file(tmp_path / "d.parquet", ["y"])
    assert data.feature_names == ("a", "flag")
    np.testing.assert_array_equal(data.X, [[1, 1], [2, 0], [3, 1]])
    np.testing.assert_array_equal(data.Y[:, 0], frame["y"])


@pytest.mark.parametrize("y_shape", [(4,), (4, 2)])
@pytest.mark.parametrize("named", [False, True])
def test_npz(tmp_path, y_shape, named):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(4, 3)), rng.normal(size=y_shape)
    p = 1 if len(y_shape) == 1 else y_shape[1]
    names = {}
    if named:
        names = {"feature_names": np.array(["u", "v", "w"]), "target_names": np.array(["t"] * p)}
        names["target_names"] = np.array([f"t{j}" for j in range(p)])
    write(tmp_path, {"d.npz": npz(X=X, Y=Y, **names)})
    data = load_training_file(tmp_path / "d.npz", None)
    np.testing.assert_array_equal(data.X, X)
    np.testing.assert_array_equal(data.Y, Y.reshape(4, p))
    assert data.feature_names == (("u", "v", "w") if named else ("x0", "x1", "x2"))
    assert data.target_names == tuple(f"{'t' if named else 'y'}{j}" for j in range(p))


def test_target_file(tmp_path):
    write(tmp_path, {"x.csv": "a,b,y\n1,2,9\n3,4,9\n", "t.csv": "y,z\n5,6\n7,8\n"})
    data = load_training_file(tmp_path / "x.csv", None, target_file=tmp_path / "t.csv")
    assert data.feature_names == ("a", "b"), "a column named like a target is not a feature"
    assert data.target_names == ("y", "z")
    np.testing.assert_array_equal(data.Y, [[5, 6], [7, 8]])
    data = load_training_file(tmp_path / "x.csv", ["z"], target_file=tmp_path / "t.csv")
    assert data.feature_names == ("a", "b", "y") and data.target_names == ("z",)


def test_text_only_columns_are_skipped_with_a_warning(tmp_path):
    write(tmp_path, {"d.csv": "id,a,city,empty,y\nA1,1,Paris,,2\nA2,3,Rome,,4\n"})
    with pytest.warns(DataWarning) as caught:
        data = load_training_file(tmp_path / "d.csv", ["y"])
    assert data.feature_names == ("a",)
    messages = [str(w.message) for w in caught]
    assert any("'city'" in m and "'Paris'" in m for m in messages)
    assert any("'empty'" in m and "is empty" in m for m in messages)


def test_more_features_than_rows_and_constant_columns(tmp_path):
    write(tmp_path, {"d.csv": "a,b,c,d,y\n1,5,0,1,1\n2,5,1,1,2\n"})
    data = load_training_file(tmp_path / "d.csv", ["y"])
    assert data.X.shape == (2, 4)
    assert constant_columns(data) == ["b", "d"]


def test_check_fits_dtype(tmp_path):
    write(tmp_path, {"d.csv": "a,y\n1,2\n5e38,3\n"})
    data = load_training_file(tmp_path / "d.csv", ["y"])
    check_fits_dtype(data, "float64")
    with pytest.raises(UserError) as error:
        check_fits_dtype(data, "float32")
    for part in ("column 'a'", "5e+38", "row 2", "float32", "--dtype float64", "rescale"):
        assert part in str(error.value)
    with pytest.raises(UserError, match="choose float32 or float64"):
        check_fits_dtype(data, "float16")


def test_values_too_large_for_float64_squares_are_not_sent_to_float64(tmp_path):
    write(tmp_path, {"d.csv": "a,y\n1,2\n1e200,3\n"})
    data = load_training_file(tmp_path / "d.csv", ["y"])
    with pytest.raises(UserError, match=r"1e\+200 at row 2, beyond .*; rescale the column") as e:
        check_fits_dtype(data, "float32")
    assert "--dtype float64" not in str(e.value)


def test_a_column_of_true_and_false_is_skipped_with_the_fix(tmp_path):
    write(tmp_path, {"d.csv": "a,f,y\n1,true,2\n2,False,3\n3,true,5\n"})
    with pytest.warns(DataWarning, match=r"'f' .*'true'\); write true and false as 1 and 0"):
        load_training_file(tmp_path / "d.csv", ["y"])


def test_a_missing_column_lists_the_last_columns_too(tmp_path):
    header = ",".join([f"x{j}" for j in range(40)] + ["y0", "y1"])
    write(tmp_path, {"d.csv": header + "\n" + ",".join(["1"] * 42) + "\n"})
    with pytest.raises(UserError, match=r"x9, \.\.\., x32, .*, y0, y1 \(42 in all\)"):
        load_training_file(tmp_path / "d.csv", ["price"])


def test_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    write(tmp_path, {"d.csv": "a,y\n1,2\n3,4\n"})

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(UserError, match=r"cannot read .*d\.csv: permission denied"):
        load_training_file(tmp_path / "d.csv", ["y"])


# ---------------------------------------------------------------------------- prediction


def test_prediction_reorders_and_ignores_targets_and_text_columns(tmp_path):
    write(tmp_path, {"new.csv": "id,y,b,a\nA1,9,2,1\nA2,9,4,3\n"})
    X, ignored = load_prediction_file(tmp_path / "new.csv", ("a", "b"), ("y",))
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    assert X.dtype == np.float64
    assert ignored == ["id", "y"]


def test_prediction_on_the_training_file(tmp_path):
    write(tmp_path, {"d.csv": "a,b,y\n1,2,3\n4,5,NA\n"})
    X, ignored = load_prediction_file(tmp_path / "d.csv", ("a", "b"), ("y",))
    assert X.shape == (2, 2) and ignored == ["y"], "cells of ignored columns are not checked"


def test_prediction_npz_without_names_takes_columns_in_order(tmp_path):
    write(tmp_path, {"new.npz": npz(X=np.arange(6.0).reshape(3, 2))})
    X, ignored = load_prediction_file(tmp_path / "new.npz", ("a", "b"))
    np.testing.assert_array_equal(X, np.arange(6.0).reshape(3, 2))
    assert ignored == []


def test_prediction_refuses_numeric_extra_columns(tmp_path):
    write(tmp_path, {"new.csv": "a,b,c\n1,2,3\n"})
    with pytest.raises(UserError, match="not used by the model: c"):
        load_prediction_file(tmp_path / "new.csv", ("a", "b"), ("y",))


def test_write_predictions_csv(tmp_path):
    out = tmp_path / "deep" / "er" / "pred.csv"
    Y = np.array([[0.1, 2.0], [1 / 3, -4e-300]])
    assert write_predictions_csv(out, Y, ("t1", "t2")) == out
    back = pd.read_csv(out)
    assert list(back.columns) == ["t1", "t2"]
    np.testing.assert_array_equal(back.to_numpy(), Y)  # full precision, no rounding
    assert sorted(p.name for p in out.parent.iterdir()) == ["pred.csv"], "no temp file left"
    write_predictions_csv(tmp_path / "one.csv", np.array([1.0, 2.0]), ["y"])
    assert (tmp_path / "one.csv").read_text() == "y\n1.0\n2.0\n"


def test_write_predictions_csv_refuses_to_overwrite(tmp_path):
    out = tmp_path / "pred.csv"
    out.write_text("precious\n")
    with pytest.raises(UserError) as error:
        write_predictions_csv(out, np.zeros((2, 1)), ["y"])
    assert "already exists" in str(error.value) and "--out" in str(error.value)
    assert out.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.csv"]


def test_write_predictions_csv_is_atomic(tmp_path, monkeypatch):
    """A failure while writing leaves neither the file nor a temp file behind."""
    out = tmp_path / "pred.csv"

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    with pytest.raises(OSError):
        write_predictions_csv(out, np.zeros((2, 1)), ["y"])
    assert list(tmp_path.iterdir()) == []


def test_write_predictions_csv_with_a_file_in_the_way(tmp_path):
    (tmp_path / "runs").write_text("")
    with pytest.raises(UserError, match="cannot write .*choose another --out"):
        write_predictions_csv(tmp_path / "runs" / "pred.csv", np.zeros((2, 1)), ["y"])


# ---------------------------------------------------------------------------- fuzz

NUMBERS = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(repr),
)
JUNK = st.one_of(
    st.sampled_from(["", " ", "nan", "NA", "inf", "-inf", "1e400", "-1e999", "3.4e39", "x"]),
    st.sampled_from(['"', '""', '"1,5"', '"a\nb"', "1,5", "0x10", "1_000", "True", "?", "\t"]),
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=6),
)
NAMES = st.one_of(
    st.sampled_from(["a", "b", "c", "y"]),
    st.sampled_from(["", " y", '"y"', "1", "y;z", "a"]),
    st.text(max_size=4),
)


@st.composite
def malformed_csv(draw) -> bytes:
    """Text that is sometimes a CSV: random header, cells, separators, ragged rows, bytes.

    ``mess`` sets how often a cell is junk and a row ragged, so that some examples are
    valid files and the loader's success path is fuzzed too.
    """
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    mess = draw(st.sampled_from([0, 0, 0.05, 0.3, 1]))
    sep = draw(st.sampled_from([",", ",", ";", "\t", " ", "|"]))
    width = draw(st.integers(1, 4))
    header = draw(st.lists(NAMES, min_size=width, max_size=width))
    if draw(st.booleans()):
        header = [f"x{j}" for j in range(width - 1)] + ["y"]
    lines = [sep.join(header)]
    for _ in range(draw(st.integers(0, 6))):
        ragged = mess and draw(st.floats(0, 1)) < mess
        size = draw(st.integers(max(0, width - 1), width + 1)) if ragged else width
        cells = [draw(JUNK if draw(st.floats(0, 1)) < mess else NUMBERS) for _ in range(size)]
        lines.append(sep.join(cells))
    text = draw(st.sampled_from(["\n", "\r\n", "\n\n"])).join(lines)
    return text.encode("utf-8", errors="surrogatepass") + draw(st.sampled_from([b"", b"\n"]))


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=malformed_csv(), name=st.sampled_from(["d.csv", "d.txt", "d.tsv"]))
def test_fuzz_malformed_csv_gives_a_dataset_or_a_user_error(tmp_path, data, name):
    path = tmp_path / name
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        try:
            dataset = load_training_file(path, ["y"])
        except UserError as error:
            assert str(error) and "\n" not in str(error)
            return
    q, n = dataset.X.shape
    assert q >= 2 and n >= 1 and dataset.Y.shape == (q, 1)
    assert dataset.X.dtype == np.float64 and dataset.Y.dtype == np.float64
    assert np.isfinite(dataset.X).all() and np.isfinite(dataset.Y).all()
    assert len(dataset.feature_names) == n and dataset.target_names == ("y",)


# ---------------------------------------------------------------------------- every error


@dataclass
class Case:
    """One bad input: the files to write, the call, and what its message must contain."""

    id: str
    section: str  # the section of docs/errors.md it belongs to
    case: str  # a few words for the docs
    example: str  # the input, for the docs
    files: dict
    call: object  # a function of no arguments, run inside the folder of the files
    parts: tuple[str, ...]


def train(name="data.csv", target=("y",), **kwargs):
    return lambda: load_training_file(name, None if target is None else list(target), **kwargs)


def predict(name="new.csv", features=("a", "b"), targets=("y",)):
    return lambda: load_prediction_file(name, features, targets)


GOOD = "a,b,y\n1,2,3\n4,5,6\n"
XY = {"X": np.ones((3, 2)), "Y": np.ones(3)}
FIX_MISSING = "drop those rows or fill them in"
CASES = [
    # -- Files
    Case(
        "missing",
        "Files",
        "file does not exist",
        "`data.csv` absent",
        {},
        train(),
        ("data.csv does not exist",),
    ),
    Case(
        "missing-near",
        "Files",
        "file does not exist, a close name does",
        "`dta.csv`, with `data.csv` present",
        {"data.csv": GOOD},
        train("dta.csv"),
        ("dta.csv does not exist", "did you mean data.csv?"),
    ),
    Case(
        "missing-far",
        "Files",
        "file does not exist, only an unrelated name does",
        "`nope.csv`, with `pm.csv` present",
        {"pm.csv": GOOD},
        train("nope.csv"),
        ("nope.csv does not exist",),
    ),
    Case(
        "folder",
        "Files",
        "a folder",
        "`data.csv/` is a directory",
        {"data.csv": lambda p: p.mkdir()},
        train(),
        ("data.csv is a folder, not a file",),
    ),
    Case(
        "extension",
        "Files",
        "unknown extension",
        "`data.json`",
        {"data.json": "x"},
        train("data.json"),
        ("'.json'", ".csv, .tsv, .txt, .parquet, .pq, .npz"),
    ),
    Case(
        "spreadsheet",
        "Files",
        "a spreadsheet",
        "`data.xlsx`",
        {"data.xlsx": "x"},
        train("data.xlsx"),
        ("data.xlsx is a spreadsheet", "save it as CSV"),
    ),
    Case(
        "xlsx-as-csv",
        "Files",
        "an Excel workbook renamed .csv",
        "an `.xlsx` saved as `data.csv`",
        {"data.csv": xlsx},
        train(),
        ("data.csv looks like an Excel workbook (.xlsx), not text", "save it as CSV"),
    ),
    Case(
        "no-extension",
        "Files",
        "no extension",
        "`data`",
        {"data": GOOD},
        train("data"),
        ("no extension", ".csv"),
    ),
    Case(
        "empty",
        "Files",
        "empty file",
        "0 bytes",
        {"data.csv": ""},
        train(),
        ("data.csv is empty", "header line"),
    ),
    Case(
        "blank",
        "Files",
        "only blank lines",
        "`\\n\\n  \\n`",
        {"data.csv": "\n\n  \n"},
        train(),
        ("data.csv is empty",),
    ),
    Case(
        "binary",
        "Files",
        "binary garbage as .csv",
        "bytes with NUL",
        {"data.csv": b"\x00\x01\xff" * 9},
        train(),
        ("data.csv is binary, not text",),
    ),
    Case(
        "parquet-as-csv",
        "Files",
        "a Parquet file named .csv",
        "Parquet bytes in `data.csv`",
        {"data.csv": parquet(pd.DataFrame({"a": [1]}))},
        train(),
        ("looks like a Parquet file", "rename it to end in .parquet"),
    ),
    Case(
        "not-utf8",
        "Files",
        "not UTF-8",
        "Latin-1 `café` on line 3",
        {"data.csv": "a,y\n1,2\ncaf\xe9,3\n".encode("latin-1")},
        train(),
        ("not UTF-8", "line 3", "save it as UTF-8"),
    ),
    Case(
        "csv-as-parquet",
        "Files",
        "text named .parquet",
        "CSV text in `data.parquet`",
        {"data.parquet": GOOD},
        train("data.parquet"),
        ("looks like text, not Parquet",),
    ),
    Case(
        "corrupt-parquet",
        "Files",
        "corrupt Parquet",
        "`PAR1` + junk + `PAR1`",
        {"data.parquet": b"PAR1" + b"\x07" * 40 + b"PAR1"},
        train("data.parquet"),
        ("not a readable Parquet file", "write it again"),
    ),
    Case(
        "corrupt-npz",
        "Files",
        "corrupt npz",
        "a truncated zip",
        {"data.npz": b"PK\x03\x04" + b"\x00" * 30},
        train("data.npz", None),
        ("not a readable .npz archive", "np.savez"),
    ),
    Case(
        "npy-as-npz",
        "Files",
        "a .npy named .npz",
        "`np.save` output in `data.npz`",
        {"data.npz": lambda p: p.write_bytes(b"\x93NUMPY" + b"\x00" * 60)},
        train("data.npz", None),
        ("looks like a single .npy array", "np.savez(path, X=X, Y=Y)"),
    ),
    Case(
        "header-only",
        "Files",
        "header, no data rows",
        "`a,b,y`",
        {"data.csv": "a,b,y\n"},
        train(),
        ("data.csv has a header but no data rows",),
    ),
    Case(
        "ragged-long",
        "Files",
        "a row with too many cells",
        "`a,b,y` / `1,2,3` / `4,5,6,7`",
        {"data.csv": "a,b,y\n1,2,3\n4,5,6,7\n"},
        train(),
        ("line 3 of data.csv has 4 cells but the header has 3 columns",),
    ),
    Case(
        "open-quote",
        "Files",
        "a quote never closed",
        '`1,2,3` / `4,"5,6`',
        {"data.csv": 'a,b,y\n1,2,3\n4,"5,6\n7,8,9\n'},
        train(),
        ('a quote (") that is never closed', "line 3"),
    ),
    # -- Cell contents
    Case(
        "text-feature",
        "Cell contents",
        "text in a feature",
        "`b` = `x` in data row 2",
        {"data.csv": "a,b,y\n1,2,3\n4,x,6\n"},
        train(),
        ("column 'b'", "'x'", "data row 2 (line 3)", "--features"),
    ),
    Case(
        "text-target",
        "Cell contents",
        "text in a target",
        "`y` = `high`",
        {"data.csv": "a,b,y\n1,2,3\n4,5,high\n"},
        train(),
        ("column 'y'", "'high'", "data row 2"),
    ),
    Case(
        "decimal-comma",
        "Cell contents",
        "decimal comma",
        "`a;b;y` / `1,5;2;3`",
        {"data.csv": "a;b;y\n1,5;2;3\n4;5;6\n"},
        train(),
        ("column 'a'", "'1,5'", "'.' as the decimal point"),
    ),
    Case(
        "decimal-comma-everywhere",
        "Cell contents",
        "decimal commas in every column",
        "`a;b;y` / `1,5;2,25;3,1`",
        {"data.csv": "a;b;y\n1,5;2,25;3,1\n4,0;5,5;6,2\n"},
        train(),
        ("data.csv writes numbers with a decimal comma", "replace every ',' with '.'"),
    ),
    Case(
        "decimal-comma-comma-separated",
        "Cell contents",
        "a thousands separator, quoted",
        '`a,b,y` / `"1,234",2,3`',
        {"data.csv": 'a,b,y\n"1,234",2,3\n4,5,6\n'},
        train(),
        ("column 'a'", "'1,234'", "no thousands separators"),
    ),
    Case(
        "empty-cell",
        "Cell contents",
        "empty cell",
        "`4,,6`",
        {"data.csv": "a,b,y\n1,2,3\n4,,6\n7,,9\n"},
        train(),
        ("column 'b'", "an empty cell", "data row 2 (line 3)", "first of 2", FIX_MISSING),
    ),
    Case(
        "na",
        "Cell contents",
        "NA / NaN / null",
        "`y` = `NA`",
        {"data.csv": "a,b,y\n1,2,NA\n4,5,6\n"},
        train(),
        ("column 'y'", "'NA'", "data row 1 (line 2)", FIX_MISSING),
    ),
    Case(
        "short-row",
        "Cell contents",
        "a row with too few cells",
        "`4,5`",
        {"data.csv": "a,b,y\n1,2,3\n4,5\n"},
        train(),
        ("column 'y'", "missing value", "line 3"),
    ),
    Case(
        "line-numbers",
        "Cell contents",
        "line numbers count blank and quoted lines",
        "a blank line, then a quoted cell spanning 2 lines, then `?`",
        {"data.csv": 'a,b,y\n1,2,3\n\n"4\n",5,6\n7,?,9\n'},
        train(),
        ("'?'", "data row 3 (line 6)"),
    ),
    Case(
        "inf",
        "Cell contents",
        "infinity",
        "`-inf`",
        {"data.csv": "a,b,y\n1,-inf,3\n4,5,6\n"},
        train(),
        ("column 'b'", "infinite", "'-inf'", "data row 1"),
    ),
    Case(
        "overflow",
        "Cell contents",
        "beyond float64",
        "`1e400`",
        {"data.csv": "a,b,y\n1,2,3\n1e400,5,6\n"},
        train(),
        ("column 'a'", "'1e400'", "too large for a 64-bit float", "rescale"),
    ),
    Case(
        "parquet-null",
        "Cell contents",
        "null in Parquet",
        "`a` = [1, null, 3]",
        {"data.parquet": parquet(pd.DataFrame({"a": [1.0, None, 3.0], "y": [1, 2, 3]}))},
        train("data.parquet"),
        ("column 'a'", "missing value", "row 2", FIX_MISSING),
    ),
    Case(
        "npz-nan",
        "Cell contents",
        "NaN in npz",
        "`X[1, 0] = nan`",
        {"data.npz": npz(X=np.array([[1.0, 2], [np.nan, 3], [4, 5]]), Y=np.ones(3))},
        train("data.npz", None),
        ("column 'x0'", "row 2", FIX_MISSING),
    ),
    Case(
        "timestamp",
        "Cell contents",
        "dates chosen as a feature",
        "Parquet timestamp column `t`",
        {
            "data.parquet": parquet(
                pd.DataFrame({"t": pd.to_datetime(["2020-01-01"] * 2), "y": [1, 2]})
            )
        },
        train("data.parquet", features=["t"]),
        ("column 't'", "timestamp", "not numbers"),
    ),
    Case(
        "mixed-column",
        "Cell contents",
        "numbers with a few text cells",
        "`b` = 2, 5, `n/a?`",
        {"data.csv": "a,b,y\n1,2,3\n4,5,6\n7,n/a?,9\n"},
        train(),
        ("column 'b'", "'n/a?'", "data row 3 (line 4)"),
    ),
    # -- Columns
    Case(
        "no-target",
        "Columns",
        "no target named",
        "`--target` not given",
        {"data.csv": GOOD},
        train(target=None),
        ("name the target column(s) with --target", "a, b, y"),
    ),
    Case(
        "target-unknown",
        "Columns",
        "target not a column",
        "`--target price`",
        {"data.csv": GOOD},
        train(target=["price"]),
        ("`--target price` is not a column of data.csv; columns are: a, b, y",),
    ),
    Case(
        "target-near",
        "Columns",
        "target misspelt",
        "`--target Price`, column `price`",
        {"data.csv": "a,price\n1,2\n3,4\n"},
        train(target=["Price"]),
        ("did you mean 'price'?",),
    ),
    Case(
        "feature-unknown",
        "Columns",
        "feature not a column",
        "`--features a,c`",
        {"data.csv": GOOD},
        train(features=["a", "c"]),
        ("`--features c` is not a column of data.csv", "a, b, y"),
    ),
    Case(
        "target-and-feature",
        "Columns",
        "a column both target and feature",
        "`--target y --features a,y`",
        {"data.csv": GOOD},
        train(features=["a", "y"]),
        ("'y' is named both as a target", "--features"),
    ),
    Case(
        "named-twice",
        "Columns",
        "a target named twice",
        "`--target y,y`",
        {"data.csv": GOOD},
        train(target=["y", "y"]),
        ("'y' is named twice in --target",),
    ),
    Case(
        "duplicate",
        "Columns",
        "duplicate column names",
        "`a,b,a,y`",
        {"data.csv": "a,b,a,y\n1,2,3,4\n5,6,7,8\n"},
        train(),
        ("two columns named 'a' (columns 1 and 3)", "unique"),
    ),
    Case(
        "unnamed",
        "Columns",
        "a column without a name",
        "`,a,y` (a pandas index)",
        {"data.csv": ",a,y\n0,1,2\n1,3,4\n"},
        train(),
        ("column 1 of data.csv has no name", "index=False"),
    ),
    Case(
        "no-header",
        "Columns",
        "no header line",
        "`1,2,3` on line 1",
        {"data.csv": "1,2,3\n4,5,6\n"},
        train(),
        ("holds numbers (1, 2, 3), not column names", "x0,x1,y"),
    ),
    Case(
        "no-features",
        "Columns",
        "no feature column left",
        "`name,y`",
        {"data.csv": "name,y\nann,1\nbob,2\n"},
        train(),
        ("has no feature columns", "skipped: name"),
    ),
    # -- Data shape
    Case(
        "one-row",
        "Data shape",
        "a single data row",
        "`a,b,y` / `1,2,3`",
        {"data.csv": "a,b,y\n1,2,3\n"},
        train(),
        ("only 1 data row", "at least 2"),
    ),
    Case(
        "target-file-length",
        "Data shape",
        "target file of another length",
        "3 rows and 2 rows",
        {"data.csv": "a,b\n1,2\n3,4\n5,6\n", "y.csv": "y\n1\n2\n"},
        train(target=None, target_file="y.csv"),
        ("data.csv has 3 data rows but y.csv has 2", "row for row"),
    ),
    Case(
        "npz-no-y",
        "Data shape",
        "npz without Y",
        "arrays `X`, `y`",
        {"data.npz": npz(X=np.ones((3, 2)), y=np.ones(3))},
        train("data.npz", None),
        ("no array named Y", "its arrays are: X, y"),
    ),
    Case(
        "npz-no-x",
        "Data shape",
        "npz without X",
        "arrays `A`, `Y`",
        {"data.npz": npz(A=np.ones((3, 2)), Y=np.ones(3))},
        train("data.npz", None),
        ("no array named X", "its arrays are: A, Y"),
    ),
    Case(
        "npz-x-1d",
        "Data shape",
        "npz X 1-D",
        "`X.shape == (3,)`",
        {"data.npz": npz(X=np.ones(3), Y=np.ones(3))},
        train("data.npz", None),
        ("X in data.npz has shape (3,)", "X.reshape(-1, 1)"),
    ),
    Case(
        "npz-y-3d",
        "Data shape",
        "npz Y 3-D",
        "`Y.shape == (3, 1, 1)`",
        {"data.npz": npz(X=np.ones((3, 2)), Y=np.ones((3, 1, 1)))},
        train("data.npz", None),
        ("Y in data.npz has shape (3, 1, 1)",),
    ),
    Case(
        "npz-lengths",
        "Data shape",
        "npz X and Y of different lengths",
        "X (3, 2), Y (4,)",
        {"data.npz": npz(X=np.ones((3, 2)), Y=np.ones(4))},
        train("data.npz", None),
        ("different numbers of rows (3 and 4)",),
    ),
    Case(
        "npz-names",
        "Data shape",
        "npz names of the wrong length",
        "X (3, 2), 3 feature_names",
        {"data.npz": npz(**XY, feature_names=np.array(["a", "b", "c"]))},
        train("data.npz", None),
        ("feature_names in data.npz has 3 names but X has 2 columns",),
    ),
    Case(
        "npz-objects",
        "Data shape",
        "npz of Python objects",
        "`X` saved with dtype=object",
        {"data.npz": npz(X=np.array([[1, "a"], [2, "b"]], dtype=object), Y=np.ones(2))},
        train("data.npz", None),
        ("X in data.npz is an array of Python objects", "dtype=float"),
    ),
    # -- Prediction input
    Case(
        "predict-columns",
        "Prediction input",
        "columns differ from training",
        "trained on `a, b`; file has `a, c`",
        {"new.csv": "a,c\n1,2\n"},
        predict(),
        ("missing: b", "not used by the model: c", "the targets (y) may also be there"),
    ),
    Case(
        "predict-npz-count",
        "Prediction input",
        "unnamed npz X of another width",
        "trained on `a, b`; X has 3 columns",
        {"new.npz": npz(X=np.ones((2, 3)))},
        predict("new.npz"),
        ("X in new.npz has 3 columns", "2 features (a, b)"),
    ),
    Case(
        "predict-missing",
        "Prediction input",
        "missing value",
        "`b` empty",
        {"new.csv": "a,b\n1,\n"},
        predict(),
        ("column 'b'", "cannot predict for rows", FIX_MISSING),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_every_bad_input_gets_a_clear_user_error(case, tmp_path, monkeypatch):
    write(tmp_path, case.files)
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        with pytest.raises(UserError) as error:
            case.call()
    message = str(error.value)
    for part in case.parts:
        assert part in message, f"{part!r} not in {message!r}"
    assert "\n" not in message, "the CLI prints the message as one line"


def messages(tmp_path_factory) -> dict[str, str]:
    """The message of every case, run in a fresh folder each."""
    out = {}
    for case in CASES:
        folder = tmp_path_factory.mktemp(case.id)
        write(folder, case.files)
        before = os.getcwd()
        os.chdir(folder)
        try:
            case.call()
        except UserError as error:
            out[case.id] = str(error)
        finally:
            os.chdir(before)
    return out


def test_docs_quote_the_real_messages(tmp_path_factory):
    text = DOCS.read_text(encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        found = messages(tmp_path_factory)
    assert set(found) == {case.id for case in CASES}, "every case raises"
    for case_id, message in found.items():
        quoted = message.replace("|", "\\|")  # as written inside a Markdown table
        assert f"`` {quoted} ``" in text, f"docs/errors.md lacks the message of {case_id!r}"
