"""Chunk sources: the one way data reaches training, whether in memory or in files.

A source yields ``Chunk``s, blocks of consecutive rows ``(start, X, Y)`` in raw units,
whose boundaries come from the data alone: a Parquet row group cut into pieces of
``chunk_rows_for(m)`` rows, a fixed range of ``chunk_rows_for(m)`` rows of an ``.npy`` file
(m columns in all), or arrays in memory (one chunk for all of them unless asked
otherwise). Never from the memory free, nor from a number of workers.

Chunks come in *groups*, the unit a reader can start at: a Parquet row group, or a
single chunk of an array. A shuffled epoch permutes the groups, reads each group's
chunks in order and shuffles the rows within each chunk (``training/prepare.py``).

A chunk's arrays may be views of a buffer the source reuses: they are valid until the
next chunk is read, and the reader copies what it keeps.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from handgrad.errors import UserError

# Bytes of a chunk's rows [X, Y] as float64. A pass holds a few chunk-sized buffers at
# once (the rows read, their float64 copy, the standardised rows), so this sets the
# peak: 8 MiB keep it tens of MB. Per-chunk costs (a few Python calls, the split's
# labels) stay small against the arithmetic: 20,560 rows at 51 columns.
CHUNK_BYTES = 8 << 20
MIN_CHUNK_ROWS = 1024


def chunk_rows_for(m: int) -> int:
    """Rows per chunk of a file with ``m`` columns in all: fixed by the data's width."""
    return max(MIN_CHUNK_ROWS, CHUNK_BYTES // (8 * m))


@dataclass
class Chunk:
    """Rows ``start`` .. ``start + len(X) - 1`` of a source, raw (not standardised)."""

    start: int
    X: np.ndarray  # (rows, n) float32 or float64
    Y: np.ndarray  # (rows, p) float32 or float64

    @property
    def rows(self) -> int:
        return self.X.shape[0]


class Source:
    """What every source has: names, the number of rows, and its groups of chunks.

    Attributes
    ----------
    name : str
        Where the data come from, for messages and ``metrics.json``.
    feature_names, target_names : tuple of str
    n_rows : int
    in_memory : bool
        True when the rows already sit in memory: training then keeps its standardised
        copy of them, as it always has for small data.
    """

    name: str
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    n_rows: int
    in_memory: bool = False

    @property
    def n_groups(self) -> int:
        raise NotImplementedError

    def group(self, g: int) -> Iterator[Chunk]:
        """The chunks of group ``g``, in row order."""
        raise NotImplementedError

    def file_of(self, role: str) -> str:
        """The file that holds the columns of ``role`` ("feature" or "target")."""
        return self.name

    def chunks(self) -> Iterator[Chunk]:
        """Every chunk, in row order: one sequential pass."""
        for g in range(self.n_groups):
            yield from self.group(g)


class ArraySource(Source):
    """Arrays in memory (embedded sets, ``GDRegressor``, ``.npz``) as a source.

    ``chunk_rows`` None makes all rows one chunk: the in-memory path of small data.
    """

    in_memory = True

    def __init__(self, X, Y, feature_names, target_names, name, chunk_rows=None) -> None:
        self.X, self.Y = X, Y
        self.feature_names, self.target_names = tuple(feature_names), tuple(target_names)
        self.name, self.n_rows = name, X.shape[0]
        self.chunk_rows = chunk_rows or max(1, self.n_rows)

    @classmethod
    def of(cls, dataset, chunk_rows=None) -> ArraySource:
        """The source of a ``Dataset``."""
        return cls(
            dataset.X,
            dataset.Y,
            dataset.feature_names,
            dataset.target_names,
            dataset.name,
            chunk_rows,
        )

    @property
    def n_groups(self) -> int:
        return -(-self.n_rows // self.chunk_rows)

    def group(self, g: int) -> Iterator[Chunk]:
        rows = slice(g * self.chunk_rows, (g + 1) * self.chunk_rows)
        yield Chunk(g * self.chunk_rows, self.X[rows], self.Y[rows])


class NpySource(Source):
    """``X.npy`` (q, n) and ``Y.npy`` (q,) or (q, p), read in row ranges with ``pread``.

    A plain memmap pass would keep every page it touched resident (the whole file, in
    RSS) until the map is closed; reading each range into one reused buffer keeps the
    resident set at a chunk's size, and the page cache (not counted in RSS) does the rest.
    """

    def __init__(self, x_path, y_path, chunk_rows: int | None = None) -> None:
        self.x = _NpyFile(x_path, "features")
        self.y = _NpyFile(y_path, "targets")
        if self.x.ndim != 2:
            raise UserError(
                f"{self.x.source} holds an array of shape {self.x.shape}; the features "
                "must be 2-D, (examples, features) (one feature? save X.reshape(-1, 1))"
            )
        if self.y.shape[0] != self.x.shape[0]:
            raise UserError(
                f"{self.x.source} has {self.x.shape[0]} rows but {self.y.source} has "
                f"{self.y.shape[0]}; the features and the targets must match row for row"
            )
        if self.x.shape[0] < 2:
            raise UserError(f"{self.x.source} has fewer than 2 rows; training needs at least 2")
        self.n_rows, n = self.x.shape
        p = self.y.shape[1] if self.y.ndim == 2 else 1
        self.feature_names = tuple(f"x{j}" for j in range(n))
        self.target_names = tuple(f"y{j}" for j in range(p))
        self.name = f"{self.x.source} + {self.y.source}"
        self.chunk_rows = chunk_rows or chunk_rows_for(n + p)

    @property
    def n_groups(self) -> int:
        return -(-self.n_rows // self.chunk_rows)

    def file_of(self, role: str) -> str:
        return self.x.source if role == "feature" else self.y.source

    def group(self, g: int) -> Iterator[Chunk]:
        start = g * self.chunk_rows
        rows = min(self.chunk_rows, self.n_rows - start)
        X = self.x.read(start, rows)
        Y = self.y.read(start, rows)
        yield Chunk(start, X, Y.reshape(rows, -1))


class _NpyFile:
    """One ``.npy`` file: its header, checked, and ``pread`` of row ranges into a buffer."""

    def __init__(self, path, role: str) -> None:
        self.source = os.fspath(path)
        try:
            with open(path, "rb") as stream:
                version = np.lib.format.read_magic(stream)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(stream)
                self.offset = stream.tell()
        except FileNotFoundError:
            raise UserError(f"{self.source} does not exist") from None
        except (OSError, ValueError) as error:
            raise UserError(
                f"{self.source} is not a readable .npy file ({error}); save the {role} "
                "with np.save(path, array)"
            ) from None
        if dtype.kind not in "biuf" or dtype.hasobject:
            raise UserError(
                f"{self.source} holds {dtype} values, not numbers; save the {role} as numbers "
                "(np.asarray(array, dtype=float))"
            )
        if fortran and len(shape) == 2 and shape[1] > 1:
            raise UserError(
                f"{self.source} is stored column by column (Fortran order); save it row by "
                "row: np.save(path, np.ascontiguousarray(array))"
            )
        if len(shape) not in (1, 2):
            raise UserError(f"{self.source} holds an array of shape {shape}; it must be 1-D or 2-D")
        self.shape, self.dtype, self.ndim = shape, dtype, len(shape)
        self.row_bytes = dtype.itemsize * (shape[1] if self.ndim == 2 else 1)
        self._buffer = np.empty(0, dtype=dtype)
        self._fd: int | None = None

    def read(self, start: int, rows: int) -> np.ndarray:
        """Rows ``start`` .. ``start + rows - 1``, into the reused buffer, as float."""
        if self._fd is None:
            self._fd = os.open(self.source, os.O_RDONLY)
        width = self.shape[1] if self.ndim == 2 else 1
        if self._buffer.size < rows * width:
            self._buffer = np.empty(rows * width, dtype=self.dtype)
        view = memoryview(self._buffer[: rows * width].view(np.uint8))
        offset, done = self.offset + start * self.row_bytes, 0
        while done < len(view):
            got = os.preadv(self._fd, [view[done:]], offset + done)
            if got == 0:
                raise UserError(
                    f"{self.source} ends early, at row {start + done // self.row_bytes + 1} "
                    f"of {self.shape[0]}: the file is truncated; write it again"
                )
            done += got
        block = self._buffer[: rows * width].reshape(rows, width)
        return block if block.dtype in (np.float32, np.float64) else block.astype(np.float64)

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
