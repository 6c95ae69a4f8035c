"""``ParquetSource``: a Parquet file, or a folder of Parquet files with one schema, streamed.

Each row group is a group of the source, cut into chunks of ``chunk_rows_for(m)`` rows; it
is read by ``ParquetFile.iter_batches`` with ``pre_buffer=False``. With pyarrow's default
(pre-buffering), memory grows with the file: 2.45 GB peak for a 2.39 GB file, against
166 MB without it (pyarrow 26). The schema (which columns, of which types) is checked
when the source is opened, before any row is read; the cells, chunk by chunk, as they
are used (``data/stream.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from handgrad.data import cells, files
from handgrad.data.arrow import column_values
from handgrad.data.cells import Table
from handgrad.data.sources import Chunk, Source, chunk_rows_for
from handgrad.errors import UserError

READ_ROWS = 4096  # rows per batch pyarrow decodes (see ParquetSource.group)


def _numeric(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def _open(path: Path, source: str) -> pq.ParquetFile:
    try:
        # buffer_size: column chunks are read in 64 KiB pieces, not whole. Measured on
        # 52 float32 columns in 1M-row groups, one pass above the imports: 383 MiB
        # unbuffered, 197 MiB with 1 MiB pieces, 151 MiB with 64 KiB, at the same speed.
        # The peak grows with the row groups' pages, not with the file.
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=64 << 10)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise UserError(
            f"{source} is not a readable Parquet file, perhaps truncated or damaged "
            f"({str(error).split(': ', 1)[-1]}); write it again"
        ) from None


class ParquetSource(Source):
    """The rows of ``path`` (a ``.parquet`` file or a folder of them, read in name order).

    ``target`` and ``features`` name columns as for ``load_training_file``; columns that
    cannot hold numbers (strings, timestamps) are skipped with a ``DataWarning`` unless
    named, which is an error.
    """

    def __init__(self, path, target, features=None, chunk_rows: int | None = None) -> None:
        schema = self._open(path)
        table = Table(self.name, [_schema_column(field) for field in schema])
        targets = files._target_names(table, target, separate=False)
        chosen = files._feature_names(table, features, targets)
        for name in chosen + targets:
            if not _numeric(schema.field(name).type):
                cells.checked_values(table.column(name), self.name, table.where, "target")
        self._use(chosen, targets, chunk_rows)
        if self.n_rows < 2:
            raise UserError(
                f"{self.name} has {self.n_rows} data row{'s' * (self.n_rows != 1)}; "
                "training needs at least 2"
            )

    @classmethod
    def for_columns(cls, path, columns, ignore=(), chunk_rows: int | None = None):
        """A source whose rows are just ``columns`` (as its "targets"): the features to
        predict on. Other numeric columns must be among ``ignore`` (the training targets)."""
        self = cls.__new__(cls)
        schema = self._open(path)
        missing = [name for name in columns if name not in schema.names]
        extra = [
            field.name
            for field in schema
            if field.name not in columns and field.name not in ignore and _numeric(field.type)
        ]
        if missing or extra:
            parts = [f"missing: {', '.join(missing)}"] if missing else []
            parts += [f"not used by the model: {', '.join(extra)}"] if extra else []
            raise UserError(
                f"the columns of {self.name} are not the ones the model was trained on "
                f"({'; '.join(parts)}); give exactly the features {', '.join(columns)}"
            )
        self._use([], list(columns), chunk_rows)
        return self

    def _open(self, path) -> pa.Schema:
        self.name = os.fspath(path)
        path = Path(path)
        paths = [path]
        if path.is_dir():
            paths = sorted(path.glob("*.parquet")) + sorted(path.glob("*.pq"))
        if not paths:
            raise UserError(f"{self.name} is a folder with no .parquet files in it")
        self.files = [(os.fspath(p), _open(p, os.fspath(p))) for p in paths]
        schema = self.files[0][1].schema_arrow
        for source, handle in self.files[1:]:
            if not handle.schema_arrow.equals(schema):
                raise UserError(
                    f"{source} has another schema than {self.files[0][0]} "
                    f"({_difference(handle.schema_arrow, schema)}); every file of the "
                    f"folder {self.name} must have the same columns, of the same types"
                )
        return schema

    def _use(self, chosen: list[str], targets: list[str], chunk_rows: int) -> None:
        schema = self.files[0][1].schema_arrow
        self.feature_names, self.target_names = tuple(chosen), tuple(targets)
        self.columns = [*chosen, *targets]
        self.chunk_rows = chunk_rows or chunk_rows_for(len(self.columns))
        # (file, row group, first row) for each group
        self._groups: list[tuple[int, int, int]] = []
        start = 0
        for f, (_, handle) in enumerate(self.files):
            meta = handle.metadata
            for g in range(meta.num_row_groups):
                self._groups.append((f, g, start))
                start += meta.row_group(g).num_rows
        self.n_rows = start
        n = len(chosen)
        floats = {schema.field(c).type for c in self.columns}
        self._dtype = np.float32 if floats == {pa.float32()} else np.float64
        self._n = n

    @property
    def n_groups(self) -> int:
        return len(self._groups)

    def group(self, g: int) -> Iterator[Chunk]:
        f, row_group, start = self._groups[g]
        handle = self.files[f][1]
        # Read in batches of READ_ROWS, copied into a chunk of chunk_rows: pyarrow's own
        # buffers grow with the batch it assembles (measured on 52 float32 columns in
        # 1M-row groups: 207 MiB above the imports with batches of 4096 rows, 261 MiB
        # with 20,560), while the chunks keep the rows their boundaries need. One thread:
        # for batches this small pyarrow's pool took twice as long (0.53 against 0.28 s
        # to decode 2.4M rows).
        batches = handle.iter_batches(
            batch_size=min(READ_ROWS, self.chunk_rows),
            row_groups=[row_group],
            columns=self.columns,
            use_threads=False,
        )
        n = self._n
        # reused; column-major, so that each column of a batch is one contiguous copy
        A = np.empty((len(self.columns), self.chunk_rows), dtype=self._dtype).T
        filled = 0
        for batch in batches:
            done = 0
            while done < batch.num_rows:
                rows = min(batch.num_rows - done, self.chunk_rows - filled)
                for j, column in enumerate(batch.columns):
                    A[filled : filled + rows, j] = column_values(column.slice(done, rows))
                done, filled = done + rows, filled + rows
                if filled == self.chunk_rows:
                    yield Chunk(start, A[:, :n], A[:, n:])
                    start, filled = start + filled, 0
        if filled:
            yield Chunk(start, A[:filled, :n], A[:filled, n:])


def _difference(schema: pa.Schema, first: pa.Schema) -> str:
    """What sets ``schema`` apart from the ``first`` file's, in a few words."""
    missing = [name for name in first.names if name not in schema.names]
    extra = [name for name in schema.names if name not in first.names]
    parts = [f"it lacks {', '.join(missing)}"] if missing else []
    parts += [f"it adds {', '.join(extra)}"] if extra else []
    for name in [] if parts else first.names:
        kind, expected = schema.field(name).type, first.field(name).type
        if kind != expected:
            return f"column '{name}' is {kind} in it, {expected} there"
    return "; ".join(parts) or "the same columns, in another order or with other metadata"


def _schema_column(field: pa.Field) -> cells.Column:
    """A one-cell stand-in for a column, so that ``files`` picks the columns by its rules."""
    numeric = _numeric(field.type)
    column = cells.from_numbers(field.name, np.zeros(1))
    column.type_name = None if numeric else f"{field.type}"
    return column
