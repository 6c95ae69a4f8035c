"""Tell what a file really is from its first bytes, to explain a wrong extension."""

from __future__ import annotations

import io
import zipfile

_SAVE_AS_CSV = (
    "save it as CSV from the spreadsheet program (File > Save As > CSV, "
    "with '.' as the decimal point), and give that file"
)
# First bytes of the binary formats, to say what a mislabelled file really is.
_MAGIC = {
    b"PAR1": ("a Parquet file", "rename it to end in .parquet"),
    b"PK\x03\x04": ("a zip or .npz archive", "rename it to end in .npz if it is one"),
    b"\x93NUMPY": ("a single .npy array", "save X and Y together with np.savez(path, X=X, Y=Y)"),
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": ("an Excel 97-2003 workbook (.xls)", _SAVE_AS_CSV),
}


def _spreadsheet(data: bytes) -> str | None:
    """What spreadsheet a zip archive is (xlsx and ods are zips of XML), or None."""
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return None
    if any(name.startswith("xl/") for name in names):
        return "an Excel workbook (.xlsx)"
    if "mimetype" in names and b"opendocument.spreadsheet" in data[:200]:
        return "an OpenDocument spreadsheet (.ods)"
    return None


def _what(data: bytes) -> tuple[str, str] | None:
    """(what the file is, how to fix) for a known binary format, else None."""
    for magic, (what, fix) in _MAGIC.items():
        if data.startswith(magic):
            spreadsheet = _spreadsheet(data) if magic.startswith(b"PK") else None
            return (spreadsheet, _SAVE_AS_CSV) if spreadsheet else (what, fix)
    return None


def not_text(data: bytes, source: str) -> str | None:
    """A message if ``data`` is binary rather than text, naming the format it looks like."""
    found = _what(data)
    if found:
        return f"{source} looks like {found[0]}, not text; {found[1]}"
    if b"\x00" in data[:65536]:
        return f"{source} is binary, not text; a CSV file must be text with a header line"
    return None


def wrong_format(data: bytes, source: str, expected: str) -> str | None:
    """A message if ``data`` is plainly not ``expected`` (a binary format), else None."""
    found = _what(data)
    if expected == "Parquet" and data.startswith(b"PAR1"):
        return None
    if expected == "npz" and data.startswith(b"PK\x03\x04") and found[1] != _SAVE_AS_CSV:
        return None
    if found:
        return f"{source} looks like {found[0]}, not {expected}; {found[1]}"
    if b"\x00" not in data[:65536]:
        return f"{source} looks like text, not {expected}; give a CSV file the .csv extension"
    return None


def empty_message(source: str) -> str:
    return f"{source} is empty; it needs a header line naming the columns, then one row per example"
