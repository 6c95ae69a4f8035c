"""Tell what a file really is from its first bytes, to explain a wrong extension."""

from __future__ import annotations

# First bytes of the binary formats, to say what a mislabelled file really is.
_MAGIC = {
    b"PAR1": ("a Parquet file", "rename it to end in .parquet"),
    b"PK\x03\x04": ("a zip or .npz archive", "rename it to end in .npz if it is one"),
    b"\x93NUMPY": ("a single .npy array", "save X and Y together with np.savez(path, X=X, Y=Y)"),
}


def not_text(data: bytes, source: str) -> str | None:
    """A message if ``data`` is binary rather than text, naming the format it looks like."""
    for magic, (what, fix) in _MAGIC.items():
        if data.startswith(magic):
            return f"{source} looks like {what}, not text; {fix}"
    if b"\x00" in data[:65536]:
        return f"{source} is binary, not text; a CSV file must be text with a header line"
    return None


def wrong_format(data: bytes, source: str, expected: str) -> str | None:
    """A message if ``data`` is plainly not ``expected`` (a binary format), else None."""
    if expected == "Parquet" and data.startswith(b"PAR1"):
        return None
    if expected == "npz" and data.startswith(b"PK\x03\x04"):
        return None
    for magic, (what, fix) in _MAGIC.items():
        if data.startswith(magic):
            return f"{source} looks like {what}, not {expected}; {fix}"
    if b"\x00" not in data[:65536]:
        return f"{source} looks like text, not {expected}; give a CSV file the .csv extension"
    return None


def empty_message(source: str) -> str:
    return f"{source} is empty; it needs a header line naming the columns, then one row per example"
