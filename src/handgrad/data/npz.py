"""Read an ``.npz`` archive of arrays ``X`` (q, n) and ``Y`` (q,) or (q, p) into a Table.

Optional string arrays ``feature_names`` (n,) and ``target_names`` (p,) name the columns;
without them the columns are called ``x0, x1, ...`` and ``y0, y1, ...``. Y's columns are the
table's default targets.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np

from handgrad.data import cells
from handgrad.data.cells import Table
from handgrad.data.sniff import wrong_format
from handgrad.errors import UserError

_NAMES = {"X": ("feature_names", "x"), "Y": ("target_names", "y")}
_SAVE = "save it with np.savez(path, X=X, Y=Y)"


def read_npz(data: bytes, source: str, arrays: tuple[str, ...]) -> Table:
    """Columns of the arrays named in ``arrays`` (among "X", "Y"), X's first."""
    message = wrong_format(data, source, "npz")
    if message:
        raise UserError(message)
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(f"{source} is not a readable .npz archive ({error}); {_SAVE}") from None
    with archive:
        has = list(archive.files)
        missing = [name for name in arrays if name not in has]
        if missing:
            raise UserError(
                f"{source} has no array named {' or '.join(missing)}; its arrays are: "
                f"{', '.join(has) or 'none'}; {_SAVE}"
            )
        loaded = {name: _array(archive, name, source) for name in has if name in arrays}
        names = {
            name: _names(archive, _NAMES[name][0], source) if _NAMES[name][0] in has else None
            for name in loaded
        }
    _check_shapes(loaded, source)
    columns: list[cells.Column] = []
    unnamed = False
    default: tuple[str, ...] = ()
    for name, array in loaded.items():
        matrix = array if array.ndim == 2 else array[:, None]  # (q,) Y -> (q, 1)
        given = names[name]
        if given is None:
            unnamed = unnamed or name == "X"
            given = [f"{_NAMES[name][1]}{j}" for j in range(matrix.shape[1])]
        elif len(given) != matrix.shape[1]:
            raise UserError(
                f"{_NAMES[name][0]} in {source} has {len(given)} names but {name} has "
                f"{matrix.shape[1]} columns; give one name per column"
            )
        columns += [cells.from_numbers(label, matrix[:, j]) for j, label in enumerate(given)]
        if name == "Y":
            default = tuple(given)
    return Table(source, columns, default_targets=default, unnamed=unnamed)


def _array(archive, name: str, source: str) -> np.ndarray:
    try:
        array = archive[name]
    except ValueError:  # an object array, which needs pickle
        raise UserError(
            f"{name} in {source} is an array of Python objects; save it as numbers "
            f"(np.asarray({name}, dtype=float))"
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(f"{source} is damaged: cannot read {name} ({error}); {_SAVE}") from None
    if array.dtype.kind not in "biuf":
        raise UserError(
            f"{name} in {source} holds {array.dtype} values, not numbers; save it as numbers "
            f"(np.asarray({name}, dtype=float))"
        )
    return array


def _names(archive, name: str, source: str) -> list[str]:
    try:
        array = archive[name]
    except ValueError:
        array = None
    if array is None or array.dtype.kind not in "US" or array.ndim != 1:
        raise UserError(
            f"{name} in {source} must be a 1-D array of strings; save it as "
            f"np.array(names, dtype=str)"
        )
    return [v.decode() if isinstance(v, bytes) else str(v) for v in array.tolist()]


def _check_shapes(loaded: dict[str, np.ndarray], source: str) -> None:
    X, Y = loaded.get("X"), loaded.get("Y")
    if X is not None and X.ndim != 2:
        fix = " (one feature? use X.reshape(-1, 1))" if X.ndim == 1 else ""
        raise UserError(
            f"X in {source} has shape {X.shape}; it must be 2-D, (examples, features){fix}"
        )
    if Y is not None and Y.ndim not in (1, 2):
        raise UserError(
            f"Y in {source} has shape {Y.shape}; it must be 1-D (examples,) or 2-D "
            "(examples, targets)"
        )
    if X is not None and Y is not None and len(X) != len(Y):
        raise UserError(
            f"X and Y in {source} have different numbers of rows ({len(X)} and {len(Y)}); "
            "they must match row for row"
        )
