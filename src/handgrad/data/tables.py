"""Read a user's CSV, Parquet or npz file into a ``Table`` of named, coded columns.

This module answers "can the file be read, and what are its columns?"; every problem
with the file as a whole (missing, unreadable, wrong format, empty, bad header) becomes a
``UserError`` here. Whether the cells are numbers is checked later, per column, by
``cells.checked_values``, once the caller knows which columns it uses.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import numpy as np

from handgrad.data import cells
from handgrad.data.cells import Table
from handgrad.data.csvtext import read_text
from handgrad.data.npz import read_npz
from handgrad.data.sniff import empty_message, wrong_format
from handgrad.errors import UserError

FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}
FORMATS[".npz"] = "npz"
SUPPORTED = ", ".join(FORMATS)
SPREADSHEETS = (".xlsx", ".xlsm", ".xls", ".ods")


def read_table(path, arrays: tuple[str, ...] = ("X", "Y")) -> Table:
    """Read ``path`` (CSV/TSV/TXT, Parquet or npz) into a Table; raise UserError if it cannot.

    ``arrays`` names the npz arrays that must be there and become columns (X's, then Y's).
    """
    source = os.fspath(path)
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    data = _read_bytes(path, source, kind)
    if kind == "csv":
        table = read_text(data, source, path.suffix.lower())
    elif kind == "parquet":
        table = _read_parquet(data, source)
    else:
        table = read_npz(data, source, arrays)
    _check_names(table)
    if table.n_rows == 0:
        raise UserError(f"{source} has a header but no data rows; add one row per example")
    return table


def _read_bytes(path: Path, source: str, kind: str | None) -> bytes:
    if not path.exists():
        raise UserError(_missing_message(path, source))
    if path.is_dir():
        raise UserError(f"{source} is a folder, not a file; give the path of a data file inside it")
    if kind is None and path.suffix.lower() in SPREADSHEETS:
        raise UserError(
            f"{source} is a spreadsheet, which handgrad cannot read; save it as CSV from the "
            "spreadsheet program (File > Save As > CSV), and give that file"
        )
    if kind is None:
        what = f"the extension '{path.suffix}'" if path.suffix else "no extension"
        raise UserError(f"{source} has {what}, which handgrad cannot read; use one of: {SUPPORTED}")
    try:
        data = path.read_bytes()
    except PermissionError:
        raise UserError(f"cannot read {source}: permission denied; check its permissions") from None
    except OSError as error:
        raise UserError(f"cannot read {source}: {error.strerror or error}") from None
    if not data.strip():
        raise UserError(empty_message(source))
    return data


def _missing_message(path: Path, source: str) -> str:
    """Say the file does not exist, and suggest a file of a close name in the same folder."""
    message = f"{source} does not exist"
    if path.parent.is_dir():
        # Names are compared without their extensions: "nope.csv" and "pm.csv" share
        # ".csv", which made them look alike, though nobody mistypes one for the other.
        stems: dict[str, str] = {}
        for entry in sorted(path.parent.iterdir()):
            stems.setdefault(Path(entry.name).stem, entry.name)
        near = difflib.get_close_matches(path.stem, list(stems), n=1, cutoff=0.75)
        if near:
            guess = os.path.join(os.path.dirname(source), stems[near[0]])
            message += f"; did you mean {guess}?"
    return message


def _read_parquet(data: bytes, source: str) -> Table:
    # Imported here: pyarrow costs a few tenths of a second, which CSV and npz need not pay.
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        arrow = pq.read_table(pa.py_buffer(data))
    except (pa.ArrowException, OSError, ValueError) as error:
        raise UserError(
            wrong_format(data, source, "Parquet")
            or f"{source} is not a readable Parquet file, perhaps truncated or damaged "
            f"({str(error).split(': ', 1)[-1]}); write it again"
        ) from None
    columns = []
    for name, array in zip(arrow.column_names, arrow.columns, strict=True):
        kind = array.type
        if pa.types.is_dictionary(kind):
            array, kind = array.cast(kind.value_type), kind.value_type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            column = cells.from_numbers(name, pc.cast(array, pa.float64()).to_numpy())
        elif pa.types.is_decimal(kind):
            column = cells.from_text(
                name, [None if v is None else str(v) for v in array.to_pylist()]
            )
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
            column = cells.from_text(name, array.to_pylist())
        else:
            column = cells.from_numbers(name, np.full(len(array), np.nan))
            column.type_name = str(kind)
        columns.append(column)
    return Table(source, columns)


def _check_names(table: Table) -> None:
    source, names = table.source, table.names
    for j, name in enumerate(names):
        if not name:
            hint = " (if it is the row index pandas wrote, save with index=False)" if j == 0 else ""
            raise UserError(
                f"column {j + 1} of {source} has no name in the header; "
                f"give every column a name{hint}"
            )
    seen: dict[str, int] = {}
    for j, name in enumerate(names):
        if name in seen:
            raise UserError(
                f"{source} has two columns named '{name}' (columns {seen[name] + 1} and {j + 1}); "
                "rename one so that every column name is unique"
            )
        seen[name] = j
