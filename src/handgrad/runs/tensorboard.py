"""TensorBoard event files from a run's history: one file per run, one record per epoch.

The records are written here, by hand, rather than through ``SummaryWriter``: importing
it and building one protobuf message per scalar cost seconds per run, while an epoch's
scalars fit one small record. The format is TensorBoard's (TFRecord framing around an
``Event`` protobuf):

- a record is ``length`` (uint64, little-endian), ``masked_crc32c(length)`` (uint32),
  the ``Event`` bytes, ``masked_crc32c(Event)`` (uint32);
- ``Event`` fields: 1 ``wall_time`` (double), 2 ``step`` (int64), 3 ``file_version``
  (string), 5 ``summary``; ``Summary``: 1 repeated ``Value``; ``Value``: 1 ``tag``
  (string), 2 ``simple_value`` (float).

Because each epoch is one record, appended in step order, a resumed run knows exactly
which steps are logged: ``logged_epochs`` drops what lies past the checkpoint (and a
record cut short by ``kill -9``), and the run appends from there, so each step is logged
once.
"""

from __future__ import annotations

import math
import os
import struct
import time
from pathlib import Path

TAGS = {
    "train_mse": "Loss/train",
    "val_mse": "Loss/validation",
    "test_mse": "Loss/test",
    "r2_train": "R2/train",
    "r2_val": "R2/validation",
    "r2_test": "R2/test",
    "lr": "LearningRate",
    "grad_norm": "GradientNorm",
}
SUFFIX = ".handgrad"  # the one event file a run appends to: events.out.tfevents.<time>.handgrad


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli, reflected
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc, table = 0xFFFFFFFF, _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> bytes:
    crc = crc32c(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(step: int, summary: bytes = b"", file_version: str = "") -> bytes:
    data = b"\x09" + struct.pack("<d", time.time()) + b"\x10" + _varint(step)
    if file_version:
        data += _field(3, file_version.encode())
    if summary:
        data += _field(5, summary)
    return data


def _record(event: bytes) -> bytes:
    length = struct.pack("<Q", len(event))
    return length + _masked(length) + event + _masked(event)


def _scalar(tag: bytes, value: float) -> bytes:
    return _field(1, _field(1, tag) + b"\x15" + _float32(value))


def _float32(value: float) -> bytes:
    """``value`` as TensorBoard's float32; beyond float32's range, ±inf (as a cast gives)."""
    try:
        return struct.pack("<f", value)
    except OverflowError:  # a diverging or huge-unit loss: finite in float64 only
        return struct.pack("<f", math.copysign(math.inf, value))


def _records(path: Path):
    """Yield (end offset, step) of each whole, intact record; stop at the first that is not."""
    data = path.read_bytes()
    at = 0
    while at + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, at)
        end = at + 12 + length + 4
        event = data[at + 12 : at + 12 + length]
        if end > len(data) or data[end - 4 : end] != _masked(event):
            return
        yield end, _step(event)
        at = end


def _step(event: bytes) -> int:
    """Field 2 of an Event; the fields before it are wall_time (8 bytes) only."""
    at, shift, step = 10, 0, 0  # after b"\x09" + 8-byte double + b"\x10"
    while True:
        byte = event[at]
        step |= (byte & 0x7F) << shift
        if byte < 0x80:
            return step
        at, shift = at + 1, shift + 7


def event_file(log_dir: Path) -> Path | None:
    """The run's event file, if it has one."""
    found = sorted(Path(log_dir).glob(f"events.out.tfevents.*{SUFFIX}"))
    return found[-1] if found else None


def logged_epochs(log_dir: Path, keep: int) -> int:
    """Truncate the event file after step ``keep`` (and any damaged tail); return the last
    step it still holds, which is the number of epochs logged (steps are epochs 1, 2, ...).
    """
    path = event_file(log_dir)
    if path is None:
        return 0
    end, last = 0, 0
    for offset, step in _records(path):
        if step > keep:
            break
        end, last = offset, step
    if end < path.stat().st_size:
        os.truncate(path, end)
    return last


def write_history(log_dir: Path, history: dict[str, list], start: int) -> int:
    """Append the epochs from ``start`` on; return the number of epochs now written.

    Writing after training (or at a checkpoint), rather than inside the loop, keeps the
    loop's per-epoch cost to a few appends to lists.
    """
    epochs = len(history.get("train_mse", []))
    if epochs <= start:
        return start
    log_dir = Path(log_dir)
    log_dir.mkdir(exist_ok=True)
    path = event_file(log_dir)
    chunks = []
    if path is None:
        path = log_dir / f"events.out.tfevents.{int(time.time())}{SUFFIX}"
        chunks.append(_record(_event(0, file_version="brain.Event:2")))
    tags = [(key, tag.encode()) for key, tag in TAGS.items() if key in history]
    for epoch in range(start, epochs):
        summary = b"".join(
            _scalar(tag, value)
            for key, tag in tags
            if (value := history[key][epoch]) is not None and math.isfinite(value)
        )
        chunks.append(_record(_event(epoch + 1, summary)))
    with open(path, "ab") as stream:
        stream.write(b"".join(chunks))
        stream.flush()
        os.fsync(stream.fileno())
    return epochs
