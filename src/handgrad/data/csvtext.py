"""Read a CSV/TSV/TXT file with a header line into a Table of text cells, with line numbers."""

from __future__ import annotations

import io
import re

import numpy as np

from handgrad.data import cells
from handgrad.data.cells import Table
from handgrad.data.sniff import empty_message, not_text
from handgrad.errors import UserError


def _separator(header: str, suffix: str) -> str:
    """The separator the header line uses: the default for the suffix unless it is absent."""
    default = {".csv": ",", ".tsv": "\t"}.get(suffix)
    counts = {sep: header.count(sep) for sep in (",", "\t", ";", "|")}
    if default is not None and counts[default] > 0:
        return default
    best = max(counts, key=counts.get)
    if counts[best] > 0:
        return best
    return default or r"\s+"


def read_text(data: bytes, source: str, suffix: str) -> Table:
    """Read UTF-8 text with a header line into a Table whose ``lines`` point into the file.

    All cells are read as text (pandas' C parser, ``dtype=str``) so that ``cells.from_text``
    can tell missing values, text and overflow apart and quote the offending cell.
    """
    import pandas as pd  # not at the top: a streamed numeric file never needs pandas

    message = not_text(data, source)
    if message:
        raise UserError(message)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UserError(
            f"{source} is not UTF-8 text (byte 0x{data[error.start]:02x} on line {line}); "
            "save it as UTF-8 CSV"
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise UserError(empty_message(source))
    raw_lines = text.split("\n")
    header = next(line for line in raw_lines if line.strip())
    sep = _separator(header, suffix)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=None,
            dtype=str,
            keep_default_na=False,  # missing values are decided per cell by cells.from_text
            skip_blank_lines=False,  # keeps line numbers right; blank rows are dropped below
            engine="c",
        )
    except pd.errors.EmptyDataError:
        raise UserError(empty_message(source)) from None
    except pd.errors.ParserError as error:
        raise UserError(_parser_message(str(error), source)) from None
    grid = frame.fillna("").to_numpy(dtype=object)  # (rows including the header, columns)
    # Line on which each row starts: quoted cells may hold newlines, which span lines.
    spans = np.ones(len(grid), dtype=np.int64)
    if '"' in text:
        spans += (
            frame.fillna("").apply(lambda column: column.str.count("\n")).sum(axis=1).to_numpy()
        )
    starts = 1 + np.concatenate([[0], np.cumsum(spans)[:-1]])
    # A blank line reads as a row of empty cells; drop it, but keep a row of empty cells
    # that was written as separators (",,"), which is a row of missing values.
    blank = np.array([s <= len(raw_lines) and not raw_lines[s - 1].strip() for s in starts])
    for k in np.flatnonzero(blank):
        blank[k] = not any(str(cell).strip() for cell in grid[k])
    grid, starts = grid[~blank], starts[~blank]
    names = [str(name).strip() for name in grid[0]]
    body = grid[1:]
    columns = [cells.from_text(name, body[:, j]) for j, name in enumerate(names)]
    table = Table(source, columns, lines=starts[1:])
    if names and body.size and all(cells.from_text("", [n]).codes[0] == cells.OK for n in names):
        raise UserError(
            f"the first line of {source} holds numbers ({', '.join(names[:4])}), not column "
            "names; add a header line naming the columns, such as: "
            + ",".join(f"x{j}" for j in range(len(names) - 1))
            + (",y" if len(names) > 1 else "y")
        )
    message = _decimal_comma(table, sep)
    if message:
        raise UserError(message)
    return table


# A number written with a decimal comma: "1,5", "-0,25", "3,2e-4".
_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+([eE][+-]?\d+)?$")


def _decimal_comma(table: Table, sep: str) -> str | None:
    """One message for a file whose numbers use a decimal comma (cells split by ';' or a
    tab), rather than a warning per column, each read as text, then "no feature columns"."""
    if sep == ",":
        return None  # a decimal comma there would have split the cells
    for column in table.columns:
        texts = np.flatnonzero(column.codes == cells.TEXT)
        if texts.size and all(_DECIMAL_COMMA.match(column.text[i].strip()) for i in texts):
            i = int(texts[0])
            shown = {";": "';'", "\t": "tabs", "|": "'|'"}.get(sep, "spaces")
            return (
                f"{table.source} writes numbers with a decimal comma ({column.cell(i)} in "
                f"column '{column.name}' at {table.where(i)}); handgrad reads '.' as the "
                "decimal point: export the file again with '.' as the decimal point, or "
                f"replace every ',' with '.' (its cells are separated by {shown}, not commas)"
            )
    return None


def _parser_message(detail: str, source: str) -> str:
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", detail)
    if found:
        expected, line, saw = found.groups()
        return (
            f"line {line} of {source} has {saw} cells but the header has {expected} columns; "
            "give every row one cell per column (quote cells that contain the separator)"
        )
    found = re.search(r"EOF inside string starting at row (\d+)", detail)
    if found:
        return (
            f'{source} has a quote (") that is never closed, starting near line '
            f"{int(found.group(1)) + 1}; close it or remove it"
        )
    return f"cannot read {source} as a table: {detail.strip()}"
