"""Arrow columns as NumPy arrays, without pandas.

``pyarrow.Array.to_numpy`` imports pandas on its first call (about 35 MiB resident,
which a streamed numeric file never needs otherwise); a float or integer column with no
null is its data buffer, read in place.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def column_values(column: pa.Array) -> np.ndarray:
    """The numbers of a numeric column (a view where it can be; booleans as 0 and 1).

    A column with a null goes through ``to_numpy`` (and pandas): its null becomes NaN
    (None for booleans) once copied into a float chunk, and the checks of
    ``data/stream.py`` name that cell.
    """
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    kind = column.type
    if column.null_count == 0 and (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
        dtype = np.dtype(kind.to_pandas_dtype())
        data = column.buffers()[1]
        return np.frombuffer(data, dtype, len(column), column.offset * dtype.itemsize)
    if column.null_count == 0 and pa.types.is_boolean(kind):  # one bit a value, low first
        first, rows = column.offset, len(column)
        data = np.frombuffer(column.buffers()[1], np.uint8)[first // 8 : (first + rows + 7) // 8]
        return np.unpackbits(data, bitorder="little")[first % 8 : first % 8 + rows]
    return column.to_numpy(zero_copy_only=False)
