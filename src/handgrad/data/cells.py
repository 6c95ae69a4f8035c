"""The cells of a file: ``Column`` and ``Table``, and turning cells into checked float64.

Turn a column of cells into float64 numbers, and say which cells are not numbers.

Every cell gets a code: a number (``OK``), missing (``MISSING``: empty, NaN, NA, null),
text (``TEXT``), infinite (``INF``: written as inf or -inf), or a number too large for
float64 (``OVERFLOW``: 1e400 reads as inf, but the user wrote a number, so the fix differs).
The readers code the cells once; ``checked_values`` turns the first bad cell of a column
into a message that names the column, the row and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from handgrad.errors import UserError

OK, MISSING, TEXT, INF, OVERFLOW = 0, 1, 2, 3, 4

# Spellings that spreadsheets, R and pandas write for "no value"; compared lower-cased.
MISSING_WORDS = frozenset(
    {"", "na", "n/a", "nan", "-nan", "null", "none", "nat", "#n/a", "missing"}
)
INF_WORDS = frozenset({"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})
# "1,5" or "1,234": a decimal comma or a thousands separator, which handgrad does not read.
_COMMA_NUMBER = re.compile(r"^[+-]?\d+(,\d+)+(\.\d*)?$")


@dataclass
class Column:
    """One named column of a file, read but not yet checked.

    Attributes
    ----------
    name : str
        The column's name in the file.
    values : np.ndarray of shape (q,)
        float64; NaN wherever ``codes`` is not ``OK``, INF or OVERFLOW.
    codes : np.ndarray of shape (q,)
        int8 cell codes: ``OK``, ``MISSING``, ``TEXT``, ``INF`` or ``OVERFLOW``.
    text : np.ndarray of shape (q,) or None
        The cells as written (object array of str), for messages; None for numeric sources.
    type_name : str or None
        Set when the source type cannot hold numbers at all (a Parquet timestamp column).
    """

    name: str
    values: np.ndarray
    codes: np.ndarray
    text: np.ndarray | None = None
    type_name: str | None = None

    @property
    def has_numbers(self) -> bool:
        """Whether any cell is a number (finite, infinite or too large)."""
        return self.type_name is None and bool(
            np.any((self.codes != MISSING) & (self.codes != TEXT))
        )

    def cell(self, i: int) -> str:
        """Cell ``i`` as the user wrote it, for a message."""
        if self.text is not None:
            return repr(str(self.text[i]).strip())
        return repr(float(self.values[i])) if self.codes[i] != MISSING else "NaN"


def from_text(name: str, cells) -> Column:
    """Code a column of text cells (CSV, or a Parquet string column); None counts as missing."""
    import pandas as pd  # not at the top: about 35 MiB resident, which numeric files never need

    raw = pd.Series(cells, dtype=object).fillna("").astype(str)
    stripped = raw.str.strip()
    lower = stripped.str.lower()
    values = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    missing = lower.isin(MISSING_WORDS).to_numpy()
    infinite = np.isinf(values)
    written_inf = lower.isin(INF_WORDS).to_numpy()
    codes = np.full(values.shape, OK, dtype=np.int8)
    codes[np.isnan(values)] = TEXT
    codes[infinite & written_inf] = INF
    codes[infinite & ~written_inf] = OVERFLOW
    codes[missing] = MISSING
    values = np.where(missing, np.nan, values)
    return Column(name, values, codes, text=raw.to_numpy(dtype=object))


def from_numbers(name: str, values: np.ndarray) -> Column:
    """Code a column that is already numeric (Parquet numbers, npz arrays): NaN is missing."""
    values = np.asarray(values, dtype=np.float64)
    codes = np.full(values.shape, OK, dtype=np.int8)
    codes[np.isinf(values)] = INF
    codes[np.isnan(values)] = MISSING
    return Column(name, values, codes)


def checked_values(column: Column, source: str, where, role: str) -> np.ndarray:
    """Return the column's float64 values, or raise UserError about its first bad cell.

    Parameters
    ----------
    column : Column
        The column to check.
    source : str
        The file, as the user named it.
    where : callable
        Maps a 0-based row index to words such as ``"data row 3 (line 4)"``.
    role : {"feature", "target", "prediction"}
        What the column is for; it chooses the hint at the end of the message.
    """
    head = f"column '{column.name}' of {source}"
    if column.type_name is not None:
        raise UserError(
            f"{head} holds {column.type_name} values, not numbers; convert it to numbers"
            + (
                ", or leave it out by naming the features with --features"
                if role != "target"
                else ""
            )
        )
    bad = np.flatnonzero(column.codes != OK)
    if bad.size == 0:
        return column.values
    i = int(bad[0])
    code = int(column.codes[i])
    same = int(np.count_nonzero(column.codes == code))
    also = f" (the first of {same} such rows)" if same > 1 else ""
    at = f"at {where(i)}{also}"
    if code == MISSING:
        what = "an empty cell" if column.cell(i) == "''" else column.cell(i)
        doing = "predict for" if role == "prediction" else "train on"
        raise UserError(
            f"{head} has a missing value ({what}) {at}; handgrad cannot {doing} rows with "
            "missing values: drop those rows or fill them in (e.g. with the column's mean)"
        )
    if code == TEXT:
        value = column.cell(i)
        hint = "fix that cell"
        if _COMMA_NUMBER.match(value.strip("'")):
            hint = "write numbers with '.' as the decimal point and no thousands separators"
        elif role == "feature":
            hint += ", or leave the column out by naming the features with --features"
        raise UserError(f"{head} holds text where a number should be: {value} {at}; {hint}")
    if code == INF:
        raise UserError(
            f"{head} holds an infinite value ({column.cell(i)}) {at}; handgrad needs finite "
            "numbers: fix or drop that row"
        )
    raise UserError(
        f"{head} holds {column.cell(i)} {at}, too large for a 64-bit float (largest about "
        "1.8e308); rescale the column (e.g. use larger units) or drop that row"
    )


@dataclass
class Table:
    """The columns of one file, in file order, with what a message needs to point at a row.

    Attributes
    ----------
    source : str
        The path as the user gave it.
    columns : list of cells.Column
        All columns, each of length q.
    lines : np.ndarray of shape (q,) or None
        For text files, the 1-based line of the file on which each data row starts.
    default_targets : tuple of str
        For npz, the names of Y's columns; empty for tables, whose targets must be named.
    unnamed : bool
        True when the names were made up (an npz file without name arrays).
    """

    source: str
    columns: list[Column]
    lines: np.ndarray | None = None
    default_targets: tuple[str, ...] = ()
    unnamed: bool = False

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def n_rows(self) -> int:
        return len(self.columns[0].values) if self.columns else 0

    def column(self, name: str) -> Column:
        return self.columns[self.names.index(name)]

    def where(self, i: int) -> str:
        """Words for 0-based data row ``i``: ``"data row 3 (line 4)"`` or ``"row 3"``."""
        if self.lines is None:
            return f"row {i + 1}"
        return f"data row {i + 1} (line {int(self.lines[i])})"


# float32 overflows above this magnitude; training in float32 would turn such values into inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)
# Cells this large (about √(float64 max / a block's rows)) may overflow a block's sum of
# squares in float64 (``data/moments.py``): an error that names one.
SQUARES_OVERFLOW = 1e150


def beyond_float32(name: str, source: str, value: float, row: int) -> UserError:
    """The error for a cell beyond float32's range, training in float32: float64 is the
    fix only where the value's squares still fit in it."""
    fix = "train with --dtype float64, or rescale the column"
    if abs(value) >= SQUARES_OVERFLOW:
        fix = "rescale the column, e.g. divide it by a power of ten (float64 would not hold "
        fix += "its squares)"
    return UserError(
        f"column '{name}' of {source} holds {value:g} at row {row}, beyond the float32 "
        f"range (about ±3.4e38); {fix}"
    )
