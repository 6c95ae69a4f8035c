"""No training path materialises the file: peak memory stays far below the data's size.

A subprocess trains on a small file first (so that lazy imports and first-use allocations
are behind it), then resets the kernel's high-water mark
(``echo 5 > /proc/self/clear_refs``) and trains on a ~150 MB ``.npy`` file with the
``stats`` path, then again with streamed mini-batches. Its peak resident set above the
level after the imports (``VmHWM`` − ``VmRSS``) must stay below half the file: one
float64 copy of the rows would be the whole file. Nothing is kept in memory between
epochs (``CACHE_BYTES`` = 0), so every epoch reads the file again, and chunks are of 2 MiB
(``CHUNK_BYTES``), so that the fixed costs of a pass (a few chunk-sized buffers, about
4 × 8 MiB by default) do not hide a copy of the data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROWS, FEATURES = 320_000, 60

CHILD = """
import json, sys
def kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
from handgrad.cli import main
import handgrad.training.prepare, handgrad.data.sources
sys.modules["handgrad.training.prepare"].CACHE_BYTES = 0
sys.modules["handgrad.data.sources"].CHUNK_BYTES = 2 << 20
X, Y, small_X, small_Y, out = sys.argv[1:6]
extra = []
for k, flags in enumerate([[], ["--batch-size", "4096"]]):
    # A run on a small file first: lazy imports and first-use allocations happen there.
    warm = ["train", "--data", small_X, "--target-file", small_Y, "--epochs", "2", "--quiet"]
    assert main(warm + ["--out", f"{out}/warm{k}"] + flags) == 0
    before = kib("VmRSS")
    open("/proc/self/clear_refs", "w").write("5")  # VmHWM := VmRSS
    run = ["train", "--data", X, "--target-file", Y, "--epochs", "2", "--quiet"]
    assert main(run + ["--out", f"{out}/run{k}"] + flags) == 0
    extra.append((kib("VmHWM") - before) * 1024)
print(json.dumps(extra))
"""


def _write(path: Path, shape: tuple[int, ...], seed: int) -> None:
    """An .npy of standard normals, written block by block (the test's own memory stays small)."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=shape)
    rng = np.random.default_rng(seed)
    for start in range(0, shape[0], 100_000):
        block = array[start : start + 100_000]
        block[...] = rng.standard_normal(block.shape)
    array.flush()
    del array


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_training_on_a_large_file_never_holds_it_in_memory(tmp_path):
    X_path, Y_path = tmp_path / "X.npy", tmp_path / "Y.npy"
    _write(X_path, (ROWS, FEATURES), seed=0)
    _write(Y_path, (ROWS,), seed=1)
    _write(tmp_path / "x.npy", (1000, FEATURES), seed=2)
    _write(tmp_path / "y.npy", (1000,), seed=3)
    small = [str(tmp_path / "x.npy"), str(tmp_path / "y.npy")]
    size = X_path.stat().st_size + Y_path.stat().st_size  # float64 already: ~150 MB
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, (X_path, Y_path)), *small, str(tmp_path)],
        capture_output=True,
        text=True,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    stats_extra, minibatch_extra = json.loads(done.stdout.strip().splitlines()[-1])
    assert stats_extra < size / 2, f"stats path peak {stats_extra / 2**20:.0f} MiB"
    assert minibatch_extra < size / 2, f"mini-batch peak {minibatch_extra / 2**20:.0f} MiB"


PANDAS_CHILD = """
import sys
import handgrad.data.stream
from handgrad.cli import main
handgrad.data.stream.STREAM_MIN_BYTES = 0  # stream these small files, as a large one
folder, parquet, X, Y = sys.argv[1:]
for k, data in enumerate([["--data", parquet, "--target", "y"], ["--data", X, "--target-file", Y]]):
    for batch in ([], ["--batch-size", "64"]):
        out = f"{folder}/run{k}{len(batch)}"
        assert main(["train", *data, "--epochs", "2", "--quiet", "--out", out, *batch]) == 0
print("pandas" in sys.modules)
"""


def test_a_streamed_numeric_file_never_imports_pandas(tmp_path):
    """pandas is about 35 MiB resident (a twentieth of the Parquet goal of 600 MiB), and
    pyarrow's ``Array.to_numpy`` imports it: numeric Parquet columns (float, integer,
    boolean) are read from their buffers instead (``data/arrow.py``), and text is read
    by pandas only when a file holds some (``cells.from_text``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 3)).astype(np.float32)
    y = X @ np.array([1.0, -2.0, 0.5], dtype=np.float32)
    flags = rng.integers(0, 2, 2000).astype(bool)
    columns = {"a": X[:, 0], "b": X[:, 1], "c": (X[:, 2] * 100).astype(np.int64), "f": flags}
    pq.write_table(pa.table(columns | {"y": y}), tmp_path / "d.parquet", row_group_size=500)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", y)
    paths = [tmp_path / name for name in ("d.parquet", "X.npy", "Y.npy")]
    done = subprocess.run(
        [sys.executable, "-c", PANDAS_CHILD, str(tmp_path), *map(str, paths)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False", "pandas was imported"
