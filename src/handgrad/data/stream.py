"""Opening a file as a chunk source, checking each chunk's cells, moving chunks to the device.

``open_source`` picks the reader for a file: ``.npy`` features with ``.npy`` targets,
and Parquet files or folders and CSV files larger than ``STREAM_MIN_BYTES``, are
streamed; npz, small Parquet and CSV files, CSV targets in a second file and text split
by runs of spaces are read whole by ``files.load_training_file`` (whose checks and
messages they keep) and become an ``ArraySource``. Either way training sees one kind
of thing: a source of chunks.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from handgrad.data import cells
from handgrad.data.cells import FLOAT32_MAX
from handgrad.data.sources import ArraySource, Chunk, NpySource, Source
from handgrad.errors import UserError

# Threads (numpy's BLAS and torch's) for the passes over chunks. Measured on the shared
# 2-core EPYC under load (load average 12), a 400,000 × 52 moments pass: 1 BLAS thread
# 0.95-1.2 s, 2 threads 29 s, the default (2) 5-34 s; under load average 4, torch's
# (14,000 × 50) @ (50 × 2) of a chunk's SSE: 1.4-1.7 ms on 1 thread, 12 ms on the
# default 2. A chunk's products are small enough that one thread keeps them in cache;
# more threads fight whoever else holds the cores.
PASS_THREADS = 1

# Files smaller than this are read whole: for them a float copy in memory costs little,
# and every epoch then reads memory, not the file.
STREAM_MIN_BYTES = 64 << 20


def open_source(path, target=None, features=None, target_file=None, stream=None) -> Source:
    """The chunk source of a training file (and its separate targets file, if any).

    ``stream`` None decides by size (``STREAM_MIN_BYTES``); True or False forces it.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".npy" or (target_file is not None and Path(target_file).suffix == ".npy"):
        if target_file is None or suffix != ".npy" or Path(target_file).suffix != ".npy":
            raise UserError(
                "an .npy file holds one array: give the features and the targets as two .npy "
                "files, --data X.npy --target-file Y.npy"
            )
        for flag, value in (("--target", target), ("--features", features)):
            if value:
                raise UserError(f"{flag} names columns, which .npy files do not have; leave it out")
        return NpySource(path, target_file)
    parquet = suffix in (".parquet", ".pq") or (Path(path).is_dir() and target_file is None)
    text = suffix in (".csv", ".tsv", ".txt") and Path(path).is_file()
    if (parquet or text) and target_file is None:
        if stream is None:
            stream = Path(path).is_dir() or _size(path) >= STREAM_MIN_BYTES
        if stream and parquet:
            from handgrad.data.parquet import ParquetSource

            return ParquetSource(path, target, features)
        if stream and text:
            from handgrad.data.csvsource import CsvSource, streamable

            if streamable(path, suffix):
                return CsvSource(path, target, features)
    from handgrad.data.files import load_training_file

    return ArraySource.of(load_training_file(path, target, features, target_file))


def _size(path) -> int:
    return Path(path).stat().st_size if Path(path).is_file() else 0


def checked_chunk(source: Source, chunk: Chunk, dtype: str) -> None:
    """Raise ``UserError`` naming the file, column and row of the chunk's first bad cell:
    missing, infinite, or (training in float32) beyond float32's range. A source that
    can quote the cells as written (``CsvSource.explain``) says what they were."""
    explain = getattr(source, "explain", None)
    if explain is not None and not (np.isfinite(chunk.X).all() and np.isfinite(chunk.Y).all()):
        explain(chunk)
    for M, names, role in (
        (chunk.X, source.feature_names, "feature"),
        (chunk.Y, source.target_names, "target"),
    ):
        where = source.file_of(role)
        check_finite(M, names, where, chunk.start, role)
        if dtype == "float32" and M.dtype == np.float64:
            too_big = np.abs(M).max(axis=0, initial=0.0) > FLOAT32_MAX
            for j in np.flatnonzero(too_big):
                i = int(np.flatnonzero(np.abs(M[:, j]) > FLOAT32_MAX)[0])
                raise cells.beyond_float32(names[j], where, M[i, j], chunk.start + i + 1)


def check_finite(M: np.ndarray, names, source: str, start: int, role: str) -> None:
    """Raise ``cells.checked_values``'s ``UserError`` for the first column of the rows M
    (rows ``start`` ..) holding a missing or infinite value; a no-op when all are finite."""
    if np.isfinite(M).all():
        return
    for j in np.flatnonzero(~np.isfinite(M).all(axis=0)):
        column = cells.from_numbers(names[j], M[:, j])
        cells.checked_values(column, source, lambda i: f"row {start + i + 1}", role)


@contextmanager
def pass_threads(blas: bool = True):
    """Run a pass over chunks on ``PASS_THREADS`` threads: torch's (a call of about a
    microsecond) and, with ``blas``, numpy's BLAS (``threadpoolctl``: about 2 ms, so once
    per pass). Also a decorator: ``@pass_threads()``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(PASS_THREADS)
    try:
        if blas:
            with threadpool_limits(PASS_THREADS, user_api="blas"):
                yield
        else:
            yield
    finally:
        torch.set_num_threads(previous)


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """The one place where a chunk's rows cross to the run's device.

    On CUDA the rows go through pinned memory with ``non_blocking=True``, so that the copy
    overlaps the work on the previous chunk; on the CPU the tensor wraps the array as is.
    """
    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor if device.type == "cpu" else tensor.to(device)
