"""Predictions streamed: features read chunk by chunk, predictions written as they come.

``feature_chunks`` reads the features of a file to predict on: an ``.npy`` array in
row ranges, a Parquet file or folder by row groups and a CSV file by blocks of text when
large (``STREAM_MIN_BYTES``), any other file whole through
``files.load_prediction_file`` (its checks and messages).
``write_csv_chunks`` writes the predictions to a temporary file beside the target,
renamed into place at the end: a reader never sees half a file, and a bad cell found
half-way leaves no file at all.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from handgrad.data.sources import _NpyFile, chunk_rows_for
from handgrad.data.stream import STREAM_MIN_BYTES, check_finite
from handgrad.errors import UserError
from handgrad.runs.atomic import FILE_MODE


def feature_chunks(path, feature_names, target_names=()) -> Iterator[np.ndarray]:
    """Chunks (rows, n) of the features of ``path``, in the model's column order."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        yield from _npy_chunks(path, feature_names)
        return
    big = path.is_dir() or (path.is_file() and path.stat().st_size >= STREAM_MIN_BYTES)
    if big and (path.is_dir() or suffix in (".parquet", ".pq")):
        yield from _parquet_chunks(path, feature_names, target_names)
        return
    if big and suffix in (".csv", ".tsv", ".txt"):
        from handgrad.data.csvsource import CsvSource, streamable

        if streamable(path, suffix):
            source = CsvSource.for_prediction(path, feature_names, target_names)
            for chunk in source.chunks():
                if not np.isfinite(chunk.Y).all():
                    source.explain(chunk)
                yield chunk.Y
            return
    from handgrad.data.files import load_prediction_file

    yield load_prediction_file(path, feature_names, target_names)[0]


def _npy_chunks(path: Path, feature_names) -> Iterator[np.ndarray]:
    array = _NpyFile(path, "features")
    width = array.shape[1] if array.ndim == 2 else 1
    if array.ndim != 2 or width != len(feature_names):
        raise UserError(
            f"{array.source} holds an array of shape {array.shape} but the model was trained "
            f"on {len(feature_names)} features; give a 2-D array (examples, "
            f"{len(feature_names)}) with the features in the training order"
        )
    step = chunk_rows_for(width)
    for start in range(0, array.shape[0], step):
        X = array.read(start, min(step, array.shape[0] - start))
        check_finite(X, feature_names, array.source, start, "prediction")
        yield X


def _parquet_chunks(path: Path, feature_names, target_names) -> Iterator[np.ndarray]:
    from handgrad.data.parquet import ParquetSource

    # The features as "targets" of a source with no features: the same schema checks.
    source = ParquetSource.for_columns(path, list(feature_names), ignore=target_names)
    for chunk in source.chunks():
        check_finite(chunk.Y, feature_names, source.name, chunk.start, "prediction")
        yield chunk.Y


def write_csv_chunks(path, chunks: Iterable[np.ndarray], target_names) -> int:
    """Write each chunk of predictions (rows, p) as CSV rows; return the rows written.

    ``path`` None writes to standard output as the chunks come. Otherwise ``path`` must
    not exist; missing folders are made; the file appears only once complete.
    """
    if path is None:
        return _write(sys.stdout, chunks, target_names)
    path = Path(path)
    if path.exists() or path.is_symlink():
        raise UserError(f"{path} already exists; choose another --out, or delete it first")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(
            f"cannot write {path}: a file is in the way of the folder {path.parent}; "
            "choose another --out"
        ) from None
    except OSError as error:
        raise UserError(f"cannot create the folder {path.parent}: {error.strerror}") from None
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise UserError(
            f"cannot write {path}: {error.strerror or error}; choose another --out"
        ) from None
    try:
        with os.fdopen(fd, "w", newline="") as stream:
            rows = _write(stream, chunks, target_names)
        os.chmod(temporary, FILE_MODE)  # mkstemp's 0600 -> the mode of any new file
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return rows


def _write(stream, chunks: Iterable[np.ndarray], target_names) -> int:
    rows = 0
    for Y in chunks:
        frame = pd.DataFrame(np.asarray(Y).reshape(len(Y), -1), columns=list(target_names))
        frame.to_csv(stream, index=False, header=rows == 0)
        rows += len(Y)
    if rows == 0:
        pd.DataFrame(columns=list(target_names)).to_csv(stream, index=False)
    return rows
