"""``CsvSource``: a large CSV/TSV/TXT file, streamed by ``pyarrow.csv.open_csv``.

The chunks are the reader's record batches: blocks of ``BLOCK_BYTES`` of text, so their
boundaries come from the file alone. A streaming reader can only go forward, so the
whole file is one group: a shuffled epoch reads the chunks in file order and shuffles
the rows within each chunk (``training/passes.py``); for a shuffled chunk order, write
the data as Parquet.

Checks, with the messages of the whole-file reader (``data/csvtext.py``):

- before any row is streamed, the file's head (its first ``HEAD_BYTES``) is read as
  text by ``csvtext.read_text``: not text, not UTF-8, no header, decimal commas, the
  separator, the column names; the features and targets are chosen from the head's
  columns by ``files``' rules, and the head's cells are checked;
- while streaming, a cell the reader cannot convert (text) or a missing or infinite
  value ends the pass: the chunk's rows are read again as text (``_explain``) and
  ``cells.checked_values`` names the column, the data row and its line. The reader
  gives no row numbers: the source counts the rows of the batches it has yielded.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from handgrad.data import cells, files, tables
from handgrad.data.arrow import column_values
from handgrad.data.csvtext import _separator, read_text
from handgrad.data.sources import Chunk, Source
from handgrad.errors import UserError

# Text per chunk. About 8 MiB of float64 rows (sources.CHUNK_BYTES) hold as many rows as
# 4-8 MiB of text at 10-20 characters a cell: chunks of either kind are alike in size.
BLOCK_BYTES = 4 << 20
# The head read as text for the schema: enough rows to tell numbers from text.
HEAD_BYTES = 256 << 10
# A blank line, and one of CR LF alone: the regular expression engine finds them about 2.6
# times as fast as bytearray.find (2.3 against 6.1 ms per 8 MiB of numbers).
_BLANK, _CR_BLANK = re.compile(b"\n\n"), re.compile(b"\n\r\n")


def streamable(path, suffix: str) -> bool:
    """Whether the file's separator is one character (pyarrow reads no regular expression)."""
    with open(path, "rb") as stream:
        head = stream.read(64 << 10).decode("utf-8-sig", errors="replace")
    header = next((line for line in head.splitlines() if line.strip()), "")
    return len(_separator(header, suffix)) == 1


class CsvSource(Source):
    """The rows of one CSV file with a header line, in chunks of ``BLOCK_BYTES`` of text.

    ``target`` and ``features`` name columns as for ``files.load_training_file``.
    """

    role: str | None = None  # "prediction" for the features to predict on (for_prediction)

    def __init__(self, path, target, features=None, block_bytes: int = BLOCK_BYTES) -> None:
        table = self._open(path, block_bytes)
        targets = files._target_names(table, target, separate=False)
        chosen = files._feature_names(table, features, targets)
        self._use(table, chosen, targets)
        if self.n_rows < 2:
            raise UserError(
                f"{self.name} has only {self.n_rows} data row; training needs at least 2"
            )

    @classmethod
    def for_prediction(cls, path, feature_names, target_names=(), block_bytes=BLOCK_BYTES):
        """A source whose rows are the model's features (as its "targets"), checked as
        ``files.load_prediction_file`` checks them."""
        self = cls.__new__(cls)
        table = self._open(path, block_bytes)
        files.prediction_columns(table, feature_names, target_names)
        self.role = "prediction"
        self._use(table, [], list(feature_names))
        return self

    def _open(self, path, block_bytes: int) -> cells.Table:
        """The head of the file as a table of text cells; the separator."""
        self.name, self.block_bytes = os.fspath(path), block_bytes
        head = self._head = _head(path, self.name)
        suffix = os.path.splitext(self.name)[1].lower()
        table = read_text(head, self.name, suffix)
        tables._check_names(table)
        header = next(line for line in head.decode("utf-8-sig").splitlines() if line.strip())
        self.separator = _separator(header, suffix)
        return table

    def _use(self, table: cells.Table, chosen: list[str], targets: list[str]) -> None:
        for name in [*chosen, *targets]:
            role = self.role or ("target" if name in targets else "feature")
            cells.checked_values(table.column(name), self.name, table.where, role)
        self.feature_names, self.target_names = tuple(chosen), tuple(targets)
        self.columns = [*chosen, *targets]
        self.n_rows = self._count_rows()

    @property
    def n_groups(self) -> int:
        return 1

    def _reader(self, kind: pa.DataType) -> pcsv.CSVStreamingReader:
        return pcsv.open_csv(
            self.name,
            read_options=pcsv.ReadOptions(block_size=self.block_bytes),
            parse_options=pcsv.ParseOptions(delimiter=self.separator, newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(
                column_types={name: kind for name in self.columns},
                include_columns=self.columns,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    def _batches(self, kind: pa.DataType) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._reader(kind)
        except pa.ArrowInvalid as error:
            if "conversion error" in str(error):
                raise _UnreadableError(str(error)) from None
            raise UserError(_layout_message(self.name, self.separator, str(error))) from None

    def _count_rows(self) -> int:
        """Rows of the file, which the split needs before the first pass. A plain file
        (no quote, no blank or CR-only line after the header) has one row per line,
        counted at the speed of reading; any other is counted by the reader."""
        header = self._head.index(b"\n") + 1 if self._head[:1].strip() else None
        lines = _plain_lines(self.name, header) if header else None
        if lines is not None:
            return lines
        return sum(batch.num_rows for batch in self._batches(pa.string()))

    def group(self, g: int) -> Iterator[Chunk]:
        start = 0
        n = len(self.feature_names)
        batches = self._batches(pa.float64())
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except _UnreadableError:
                self._explain(start, None)
                raise AssertionError("unreachable: _explain raises") from None
            A = np.empty((batch.num_rows, len(self.columns)))  # (rows, n + p) float64
            for j, column in enumerate(batch.columns):
                A[:, j] = column_values(column)
            yield Chunk(start, A[:, :n], A[:, n:])
            start += batch.num_rows

    def explain(self, chunk: Chunk) -> None:
        """Raise the ``UserError`` for the first bad cell of ``chunk``, quoting the text."""
        self._explain(chunk.start, chunk.rows)

    def _explain(self, start: int, rows: int | None) -> None:
        """Read rows ``start`` .. (the chunk, or the batch the reader failed on) again as
        text, and raise ``cells.checked_values``'s message for its first bad cell."""
        done = 0
        for batch in self._batches(pa.string()):
            if done + batch.num_rows > start:
                batch = batch.slice(start - done, rows)
                break
            done += batch.num_rows
        else:
            raise UserError(f"{self.name} changed while it was read; train again")
        columns = [cells.from_text(name, batch.column(name).to_pylist()) for name in self.columns]
        bad = [c for c in columns if (c.codes != cells.OK).any()]
        if not bad:
            raise UserError(
                f"{self.name} has a cell that cannot be read as a number in data rows "
                f"{start + 1} to {start + batch.num_rows}; check those rows"
            )
        first = min(bad, key=lambda c: int(np.flatnonzero(c.codes != cells.OK)[0]))
        i = int(np.flatnonzero(first.codes != cells.OK)[0])
        line = _line_of(self.name, self.separator, start + i)
        where = lambda k: f"data row {start + k + 1}" + (f" (line {line})" if k == i else "")  # noqa: E731
        role = self.role or ("target" if first.name in self.target_names else "feature")
        cells.checked_values(first, self.name, where, role)


class _UnreadableError(Exception):
    """A cell the reader could not convert to a number: ``_explain`` says which."""


def _head(path, source: str) -> bytes:
    """The file's first ``HEAD_BYTES``, cut after its last whole line."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(HEAD_BYTES)
    except OSError as error:
        raise UserError(f"cannot read {source}: {error.strerror or error}") from None
    if len(head) == HEAD_BYTES and b"\n" in head:
        head = head[: head.rindex(b"\n") + 1]
    return head


def _plain_lines(path, offset: int = 0) -> int | None:
    """The number of lines from byte ``offset`` on (after the header line, which may be
    quoted) of a file with no quote and no blank or CR-only line there, else None."""
    lines, tail, buffer = 0, b"\n", bytearray(8 << 20)
    with open(path, "rb", buffering=0) as stream:
        stream.seek(offset)
        while got := stream.readinto(buffer):
            # Each test scans the bytes in place (no copy); ``tail`` (the previous
            # block's last two bytes) joins the blocks.
            if buffer.find(b'"', 0, got) >= 0 or _BLANK.search(buffer, 0, got):
                return None
            if _CR_BLANK.search(tail + bytes(buffer[: min(got, 2)])):
                return None
            last = tail[-1]
            if last == ord("\n") and buffer[0] in b"\r\n":
                return None
            if last == ord("\r") and buffer[0] != ord("\n"):
                return None
            if buffer.find(b"\r", 0, got) >= 0:
                ends = buffer[got - 1] == ord("\r")  # its "\n" starts the next block
                if buffer.count(b"\r", 0, got) != buffer.count(b"\r\n", 0, got) + ends:
                    return None
                if _CR_BLANK.search(buffer, 0, got):
                    return None
            lines += buffer.count(b"\n", 0, got)
            tail = bytes(buffer[max(0, got - 2) : got])
    return lines + (tail[-1] != ord("\n"))


def _line_of(path, separator: str, row: int) -> int:
    """The line on which data row ``row`` (0-based) starts, counted as ``csvtext`` does:
    blank lines are skipped, quoted cells may span lines. For a message only: one scan."""
    with open(path, encoding="utf-8-sig", newline="", errors="replace") as stream:
        reader = csv.reader(stream, delimiter=separator)
        seen, before = -1, 0  # data rows seen (the header is row -1); lines before a record
        for record in reader:
            if len(record) > 1 or (record and record[0].strip()):
                if seen == row:
                    return before + 1
                seen += 1
            before = reader.line_num
    return before


def _layout_message(source: str, separator: str, detail: str) -> str:
    """The reader's complaint about the file's layout, in the words of ``csvtext``: which
    line has another number of cells than the header (found by one scan of the file)."""
    with open(source, encoding="utf-8-sig", newline="", errors="replace") as stream:
        reader, width, before = csv.reader(stream, delimiter=separator), None, 0
        for record in reader:
            if len(record) > 1 or (record and record[0].strip()):
                width = width or len(record)
                if len(record) != width:
                    return (
                        f"line {before + 1} of {source} has {len(record)} cells but the "
                        f"header has {width} columns; give every row one cell per column "
                        "(quote cells that contain the separator)"
                    )
            before = reader.line_num
    return f"cannot read {source} as a table: {detail.split(': ', 1)[-1].strip()}"
