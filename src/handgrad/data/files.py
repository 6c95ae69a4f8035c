"""Load users' data files for training and prediction, and write predictions.

Formats: CSV with a header line (``.csv``; ``.tsv`` and ``.txt`` too, the separator taken
from the header line), Parquet (``.parquet``, ``.pq``) and ``.npz`` archives of ``X`` and
``Y``. Every bad input raises ``UserError`` with a sentence that says what is wrong, where
(file, column, data row and, for text files, line) and how to fix it.

Which columns are features
--------------------------
Targets are named (``target``), or for npz are Y's columns. The features are ``features``
if given, else every other column that holds numbers. A column with no number in it at all
(an id, a category, a text note, or an empty column) is skipped with a ``DataWarning``; a
column that holds numbers but also some text is an error naming the first bad cell, since
it is most likely a numeric column with a typo.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from handgrad.data.cells import FLOAT32_MAX, TEXT, beyond_float32, checked_values
from handgrad.data.dataset import Dataset
from handgrad.data.tables import Table, read_table
from handgrad.errors import DataWarning, UserError


def load_training_file(
    path,
    target: Sequence[str] | None,
    features: Sequence[str] | None = None,
    target_file=None,
) -> Dataset:
    """Read a file of features and targets into a checked, float64 ``Dataset``.

    Parameters
    ----------
    path : str or os.PathLike
        A CSV/TSV/TXT file with a header line, a Parquet file, or an ``.npz`` archive.
    target : list of str or None
        The target column(s). Required for tables unless ``target_file`` is given;
        for npz, None means Y's columns.
    features : list of str or None, default=None
        The feature columns, in the order wanted. None means every other column holding
        numbers, in file order; columns without any number are skipped with a DataWarning.
    target_file : str or os.PathLike or None, default=None
        A second file holding the targets, row for row: all its columns, or those named by
        ``target``. The features then come from ``path``, leaving out columns named like
        a target.

    Returns
    -------
    Dataset
        X (q, n) and Y (q, p), float64 and finite, with their column names.

    Raises
    ------
    UserError
        For any problem with the files, their columns or their cells.
    """
    table = read_table(path, arrays=("X",) if target_file is not None else ("X", "Y"))
    targets_from = table if target_file is None else read_table(target_file, arrays=("Y",))
    target_names = _target_names(targets_from, target, separate=target_file is not None)
    if targets_from.n_rows != table.n_rows:
        raise UserError(
            f"{table.source} has {table.n_rows} data rows but {targets_from.source} has "
            f"{targets_from.n_rows}; the features and the targets must match row for row"
        )
    if table.n_rows < 2:
        raise UserError(
            f"{table.source} has only 1 data row; training needs at least 2 (some rows are "
            "held out for testing, and each column is standardised by its spread)"
        )
    feature_names = _feature_names(table, features, target_names)
    X = _stack(table, feature_names, "feature")  # (q, n)
    Y = _stack(targets_from, target_names, "target")  # (q, p)
    name = table.source if target_file is None else f"{table.source} + {targets_from.source}"
    return Dataset(X, Y, tuple(feature_names), tuple(target_names), name)


def load_prediction_file(
    path, feature_names: tuple[str, ...], target_names: tuple[str, ...] = ()
) -> tuple[np.ndarray, list[str]]:
    """Read the features of a file to predict on, in the training column order.

    Parameters
    ----------
    path : str or os.PathLike
        A CSV/TSV/TXT, Parquet or npz file (npz: its X; without ``feature_names`` in the
        archive, X's columns are taken to be the training features, in order).
    feature_names : tuple of str
        The features the model was trained on, in order.
    target_names : tuple of str, default=()
        The training targets: these columns may be present and are ignored, so that the
        training file itself can be predicted on. Columns with no number in them (which
        training skips) are ignored too; any other column is an error.

    Returns
    -------
    X : np.ndarray of shape (q, n)
        float64, finite, columns in the order of ``feature_names``.
    ignored : list of str
        The columns that were present and ignored (targets, and columns without numbers).

    Raises
    ------
    UserError
        If the columns are not the training features, or a cell is missing, text or infinite.
    """
    table = read_table(path, arrays=("X",))
    if table.unnamed:
        if len(table.columns) != len(feature_names):
            raise UserError(
                f"X in {table.source} has {len(table.columns)} columns but the model was "
                f"trained on {len(feature_names)} features ({_listing(feature_names)}); "
                "give X those columns in that order, or name them with feature_names"
            )
        for column, name in zip(table.columns, feature_names, strict=True):
            column.name = name
    ignored = prediction_columns(table, feature_names, target_names)
    return _stack(table, list(feature_names), "prediction"), ignored


def prediction_columns(table: Table, feature_names, target_names) -> list[str]:
    """Check that ``table`` holds the model's features; return the columns it ignores
    (targets, and columns without numbers), or raise ``UserError`` naming the others."""
    names = table.names
    missing = [name for name in feature_names if name not in names]
    # Columns training would have skipped (no number in them: ids, categories) are ignored
    # too, so that the training file itself can be predicted on.
    unused = [c.name for c in table.columns if c.name not in feature_names]
    ignored = [n for n in unused if n in target_names or not table.column(n).has_numbers]
    extra = [name for name in unused if name not in ignored]
    if missing or extra:
        parts = [f"missing: {', '.join(missing)}" if missing else "", ""]
        parts[1] = f"not used by the model: {', '.join(extra)}" if extra else ""
        allowed = (
            f"; the targets ({', '.join(target_names)}) may also be there" if target_names else ""
        )
        raise UserError(
            f"the columns of {table.source} are not the ones the model was trained on "
            f"({'; '.join(p for p in parts if p)}); give exactly the features "
            f"{_listing(feature_names)}{allowed}"
        )
    return ignored


def check_fits_dtype(dataset: Dataset, dtype: str) -> None:
    """Raise UserError if a value of ``dataset`` does not fit in ``dtype``.

    Parameters
    ----------
    dataset : Dataset
        A loaded data set (its values are already finite float64).
    dtype : {"float32", "float64"}
        The dtype training will use.
    """
    if dtype == "float64":
        return
    if dtype != "float32":
        raise UserError(f"unknown dtype {dtype!r}; choose float32 or float64")
    for M, names in ((dataset.X, dataset.feature_names), (dataset.Y, dataset.target_names)):
        too_big = np.abs(M) > FLOAT32_MAX  # (q, k)
        if too_big.any():
            j = int(np.flatnonzero(too_big.any(axis=0))[0])
            i = int(np.flatnonzero(too_big[:, j])[0])
            raise beyond_float32(names[j], dataset.name, M[i, j], i + 1)


def constant_columns(dataset: Dataset) -> list[str]:
    """The names of the features whose values are all equal, for the caller to warn about."""
    X = dataset.X
    if len(X) == 0:
        return []
    return [name for j, name in enumerate(dataset.feature_names) if np.all(X[:, j] == X[0, j])]


def write_predictions_csv(path, Y: np.ndarray, target_names: Sequence[str]) -> Path:
    """Write predictions as a CSV, one column per target, without overwriting a file.

    The file is written to a temporary file in the same folder, then moved into place with
    ``os.replace``, so a reader never sees half a file. Missing parent folders are created.

    Parameters
    ----------
    path : str or os.PathLike
        Where to write; must not exist yet.
    Y : np.ndarray of shape (q,) or (q, p)
        Predictions.
    target_names : sequence of str
        p column names.

    Returns
    -------
    Path
        The path written.
    """
    Y = np.asarray(Y, dtype=np.float64)
    Y = Y[:, None] if Y.ndim == 1 else Y  # (q,) -> (q, 1)
    if Y.ndim != 2 or Y.shape[1] != len(target_names):
        raise ValueError(f"Y must have shape (q, {len(target_names)}); got {Y.shape}")
    from handgrad.data.predictions import write_csv_chunks  # it reads sources, which read us

    write_csv_chunks(path, [Y], target_names)
    return Path(path)


def _listing(names: Sequence[str], most: int = 20) -> str:
    """The names, or the first and last ``most // 2`` of many (targets often come last)."""
    if len(names) <= most:
        return ", ".join(names)
    half = most // 2
    return f"{', '.join(names[:half])}, ..., {', '.join(names[-half:])} ({len(names)} in all)"


def _select(table: Table, wanted: Sequence[str], flag: str) -> list[str]:
    """Check that each name in ``wanted`` is a column of ``table``, once; return them."""
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    if not wanted:
        raise UserError(
            f"{flag} names no columns; columns of {table.source} are: {_listing(table.names)}"
        )
    for k, name in enumerate(wanted):
        if name in wanted[:k]:
            raise UserError(f"'{name}' is named twice in {flag}; name each column once")
        if name not in table.names:
            near = [n for n in table.names if n.lower() == name.lower()]
            near = near or difflib.get_close_matches(name, table.names, n=3)
            guess = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
            raise UserError(
                f"`{flag} {name}` is not a column of {table.source}; columns are: "
                f"{_listing(table.names)}{guess}"
            )
    return wanted


def _target_names(table: Table, target, separate: bool) -> list[str]:
    if target is not None:
        return _select(table, target, "--target")
    if table.default_targets:
        return list(table.default_targets)
    if separate:
        return table.names
    raise UserError(
        f"name the target column(s) with --target; columns of {table.source} are: "
        f"{_listing(table.names)}"
    )


def _feature_names(table: Table, features, target_names: list[str]) -> list[str]:
    if features is not None:
        chosen = _select(table, features, "--features")
        for name in chosen:
            if name in target_names:
                raise UserError(
                    f"'{name}' is named both as a target (--target) and as a feature "
                    "(--features); a column can only be one of them"
                )
        return chosen
    chosen, skipped = [], []
    for column in table.columns:
        if column.name in target_names:
            continue
        if column.has_numbers:
            chosen.append(column.name)
            continue
        skipped.append(column.name)
        texts = np.flatnonzero(column.codes == TEXT)
        why = (
            f"it holds {column.type_name} values"
            if column.type_name
            else f"it holds text, not numbers (e.g. {column.cell(int(texts[0]))})"
            if texts.size
            else "it is empty"
        )
        if column.text is not None and texts.size:
            words = {str(column.text[i]).strip().lower() for i in texts}
            if words <= {"true", "false"}:  # as Parquet's booleans are, they would train
                why += "; write true and false as 1 and 0 to train on it"
        warnings.warn(
            f"skipped column '{column.name}' of {table.source}: {why}; "
            "name the features with --features to choose them yourself",
            DataWarning,
            stacklevel=3,
        )
    if not chosen:
        others = f" (skipped: {_listing(skipped)})" if skipped else ""
        raise UserError(
            f"{table.source} has no feature columns: no column other than the targets holds "
            f"numbers{others}; add feature columns, or name them with --features"
        )
    return chosen


def _stack(table: Table, names: list[str], role: str) -> np.ndarray:
    values = [checked_values(table.column(n), table.source, table.where, role) for n in names]
    return np.column_stack(values).astype(np.float64, copy=False)  # (q, len(names))
