"""Scale: training on files of 0.5, 2 and 8 GB, against one raw read of the same file.

Usage: ``python -m benchmarks.scale [--sizes 0.5,2,8] [--dir TMP]`` (``make bench-scale``,
``make bench-scale SCALE_SIZES=0.5,2``). For each size it writes, in a temporary
folder removed afterwards, an ``.npy`` pair (X float32 (q, 50), Y float32 (q, 2)) and a
Parquet file of the same rows (row groups of 1M rows), then measures, each in a fresh
subprocess so that its peak resident set (``VmHWM``) is its own:

- ``raw``: one sequential read of the file's bytes (8 MiB ``readinto``), the peer;
- ``numpy``: the plain streamed normal-equations pass of the issue's anchor (float64
  [X, Y, 1]ᵀ[X, Y, 1], one BLAS thread, nothing else): the arithmetic floor of a pass;
- ``pass``: ``prepare()``, the one moments pass that gives the standardisers and every
  split's statistics (all the ``stats`` path needs);
- ``stats``: ``handgrad train`` end to end (pass, descent, the metrics' passes, figures);
- ``minibatch``: ``handgrad train --batch-size 4096 --epochs 1``: one streamed epoch.

At sizes up to ``CSV_MAX_GB`` it also writes the rows as CSV (about 2.5 times the bytes)
and measures ``raw``, the ``pass``, ``pandas``: ``pandas.read_csv`` of the file, the
peer of the CSV goal (the pass, which also counts the rows first, at least as fast), and
``arrow``: pyarrow's streaming parse alone, with the pass's own reader and options.

Before the measured part each child imports what every run imports before it reads a
row (torch, pyarrow, handgrad's CLI: about 250 MiB resident), then resets ``VmHWM``; the
peak (what the goals are about) is reported whole and above that level. What a run
imports later (its reader, say) counts in its peak. A ``handgrad train`` run draws its
figures in a helper process (``runs/painter.py``, matplotlib): the peak of the summed
``VmRSS`` of the child and its helper, sampled every 50 ms (``procfs.run_sampled``), is
reported beside it.

Rates are the file's bytes over seconds. Goals (issue 12): the pass at ≥ 0.7× the raw
read's rate; Parquet's pass at ≥ 0.5× the ``.npy`` pass; peak RSS ≤ 512 MB (``.npy``)
and ≤ 600 MB (Parquet), at every size. The files are read from the page cache when they
fit in memory (written just before): both the peer and handgrad read them the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from benchmarks.procfs import kib, run_sampled

FEATURES, TARGETS = 50, 2
BLOCK_ROWS = 1 << 20
GOAL_RSS = {"npy": 512 << 20, "parquet": 600 << 20}
CSV_MAX_GB = 0.5  # pandas reads the whole file: at 0.5 GB of float32 rows, about 1.3 GB


def generate(folder: str, gigabytes: float) -> dict:
    """Write X.npy, Y.npy and data.parquet of about ``gigabytes`` GB (as .npy)."""
    q = int(gigabytes * 1e9 / (4 * (FEATURES + TARGETS)))
    return write(folder, q, csv=gigabytes <= CSV_MAX_GB)


def write(folder: str, q: int, csv: bool) -> dict:
    """Write ``q`` rows as X.npy, Y.npy, data.parquet (row groups of 1M rows) and, if
    ``csv``, data.csv: X standard normal, Y = X W + N(0, 1) noise, float32, seed 0."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = {k: os.path.join(folder, f) for k, f in (("X", "X.npy"), ("Y", "Y.npy"))}
    paths["parquet"] = os.path.join(folder, "data.parquet")
    X = np.lib.format.open_memmap(paths["X"], "w+", np.float32, (q, FEATURES))
    Y = np.lib.format.open_memmap(paths["Y"], "w+", np.float32, (q, TARGETS))
    rng = np.random.default_rng(0)
    W = rng.standard_normal((FEATURES, TARGETS)).astype(np.float32)
    names = [f"x{j}" for j in range(FEATURES)] + [f"y{j}" for j in range(TARGETS)]
    schema = pa.schema([(name, pa.float32()) for name in names])
    import pyarrow.csv as pcsv

    if csv:
        paths["csv"] = os.path.join(folder, "data.csv")
    with (
        pq.ParquetWriter(paths["parquet"], schema) as writer,
        pcsv.CSVWriter(paths.get("csv", os.devnull), schema) as text,
    ):
        for start in range(0, q, BLOCK_ROWS):
            rows = min(BLOCK_ROWS, q - start)
            Xb = rng.standard_normal((rows, FEATURES), dtype=np.float32)
            Yb = Xb @ W + rng.standard_normal((rows, TARGETS), dtype=np.float32)
            X[start : start + rows], Y[start : start + rows] = Xb, Yb
            columns = list(Xb.T) + list(Yb.T)
            block = pa.table(dict(zip(names, columns, strict=True)), schema=schema)
            writer.write_table(block)
            if csv:
                text.write_table(block)
            X.flush(), Y.flush()
    del X, Y
    return {"rows": q, **paths}


def child(kind: str, fmt: str, paths: dict, out: str) -> dict:
    """In the subprocess: one measurement; returns seconds, bytes read and peak RSS."""
    files = [paths["X"], paths["Y"]] if fmt == "npy" else [paths[fmt]]
    size = sum(os.path.getsize(f) for f in files)
    data = ["--data", files[0]] + (["--target-file", files[1]] if fmt == "npy" else [])
    data += [] if fmt == "npy" else ["--target", "y0,y1"]
    if kind != "raw":  # what every run imports before it reads a row
        import pyarrow.parquet  # noqa: F401
        import torch  # noqa: F401

        import handgrad.cli.train  # noqa: F401
    if kind == "pandas":
        import pandas  # noqa: F401
    imported = kib("VmRSS") * 1024
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS: the peak below is the run's, over what it imported
    started = time.perf_counter()
    if kind == "raw":
        buffer = bytearray(8 << 20)
        for name in files:
            with open(name, "rb", buffering=0) as stream:
                while stream.readinto(buffer):
                    pass
    elif kind == "numpy":
        _normal_equations(fmt, files)
    elif kind == "arrow":  # the parse alone, by the reader and options the pass uses
        from handgrad.data.csvsource import CsvSource

        source = CsvSource(files[0], ["y0", "y1"])
        import pyarrow as pa

        started = time.perf_counter()
        for _ in source._batches(pa.float64()):
            pass
    elif kind == "pandas":
        pandas.read_csv(files[0])
    elif kind == "pass":
        from handgrad.config import TrainConfig, check
        from handgrad.data.stream import open_source
        from handgrad.training import prepare

        started = time.perf_counter()  # opening included: a CSV's rows are counted then
        source = open_source(
            files[0],
            None if fmt == "npy" else ["y0", "y1"],
            None,
            files[1] if fmt == "npy" else None,
            stream=True,
        )
        prepare(source, check(TrainConfig()))
    else:
        from handgrad.cli import main

        flags = ["--batch-size", "4096", "--epochs", "1"] if kind == "minibatch" else []
        code = main(["train", *data, "--quiet", "--out", os.path.join(out, kind + fmt), *flags])
        assert code == 0
    seconds = time.perf_counter() - started
    peak = kib("VmHWM") * 1024
    return {"seconds": seconds, "bytes": size, "peak_bytes": peak, "imported_bytes": imported}


def _normal_equations(fmt: str, files: list[str]) -> np.ndarray:
    """The plain streamed pass of issue 12's anchor: [X, Y, 1]ᵀ[X, Y, 1] in float64, one
    BLAS thread, block by block (row groups' batches for Parquet), nothing else: no
    splits, no checks. The arithmetic floor of any one-pass normal-equations solver."""
    from threadpoolctl import threadpool_limits

    m = FEATURES + TARGETS
    gram, A = np.zeros((m + 1, m + 1)), np.ones((1 << 16, m + 1))
    with threadpool_limits(1, user_api="blas"):
        if fmt == "npy":
            X, Y = (np.load(f, mmap_mode="r") for f in files)
            for start in range(0, len(X), len(A)):
                rows = len(X[start : start + len(A)])
                A[:rows, :FEATURES] = X[start : start + rows]
                A[:rows, FEATURES:m] = Y[start : start + rows]
                gram += A[:rows].T @ A[:rows]
        else:
            import pyarrow.parquet as pq

            from handgrad.data.arrow import column_values

            handle = pq.ParquetFile(files[0], pre_buffer=False, buffer_size=64 << 10)
            for batch in handle.iter_batches(batch_size=len(A), use_threads=False):
                rows = batch.num_rows
                for j, column in enumerate(batch.columns):
                    A[:rows, j] = column_values(column)
                gram += A[:rows].T @ A[:rows]
    return gram


def measure(kind: str, fmt: str, paths: dict, out: str) -> dict:
    command = [sys.executable, "-m", "benchmarks.scale", "--child", kind, fmt, json.dumps(paths)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = run_sampled(command + ["--dir", out], root)
    if done["returncode"] != 0:
        raise RuntimeError(f"{kind} {fmt} failed:\n{done['stderr'][-3000:]}")
    return json.loads(done["stdout"].strip().splitlines()[-1]) | {
        "tree_peak_bytes": done["tree_peak_bytes"]  # the child and its figure helper, summed
    }


def run_size(gigabytes: float, parent: str | None) -> list[dict]:
    folder = tempfile.mkdtemp(prefix=f"handgrad-scale-{gigabytes:g}GB-", dir=parent)
    try:
        started = time.perf_counter()
        paths = generate(folder, gigabytes)
        print(
            f"{gigabytes:g} GB: {paths['rows']:,} rows written in "
            f"{time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        rows = []
        kinds = ("raw", "numpy", "pass", "stats", "minibatch")
        plan = [(f, k) for f in ("npy", "parquet") for k in kinds]
        plan += [("csv", k) for k in ("raw", "pandas", "arrow", "pass")] if "csv" in paths else []
        for fmt, kind in plan:
            result = measure(kind, fmt, paths, folder)
            result |= {"size_gb": gigabytes, "format": fmt, "kind": kind}
            rows.append(result)
            print(_line(result), file=sys.stderr)
        return rows
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _line(r: dict) -> str:
    rate = r["bytes"] / r["seconds"] / 2**20
    return (
        f"{r['size_gb']:>4g} GB {r['format']:<8}{r['kind']:<10}{r['seconds']:8.2f} s "
        f"{rate:8.0f} MiB/s   peak RSS {r['peak_bytes'] / 2**20:6.0f} MiB "
        f"({(r['peak_bytes'] - r['imported_bytes']) / 2**20:.0f} above the imports; "
        # the tree is sampled every 50 ms, and may miss the process's own peak
        f"with any figure helper {max(r.get('tree_peak_bytes', 0), r['peak_bytes']) / 2**20:.0f})"
    )


def _goal(ratio: float, goal: float) -> str:
    return f" (goal ≥ {goal:g}): {'met' if ratio >= goal else 'NOT met'}"


def summary(rows: list[dict]) -> list[str]:
    """The goals, as ratios measured in the same run."""
    lines = []
    by = {(r["size_gb"], r["format"], r["kind"]): r for r in rows}
    for size in sorted({r["size_gb"] for r in rows}):
        rate = {
            k: by[(size, *k)]["bytes"] / by[(size, *k)]["seconds"]
            for k in [(f, kind) for f in ("npy", "parquet") for kind in ("raw", "pass")]
        }
        for fmt in ("npy", "parquet"):
            ratio = rate[(fmt, "pass")] / rate[(fmt, "raw")]
            lines.append(f"{size:g} GB {fmt}: pass / raw read rate {ratio:.2f}{_goal(ratio, 0.7)}")
            floor = by[(size, fmt, "numpy")]["bytes"] / by[(size, fmt, "numpy")]["seconds"]
            lines.append(
                f"{size:g} GB {fmt}: plain numpy normal-equations pass / raw read rate "
                f"{floor / rate[(fmt, 'raw')]:.2f}; handgrad's pass / numpy's "
                f"{rate[(fmt, 'pass')] / floor:.2f}"
            )
            peak = max(by[(size, fmt, k)]["peak_bytes"] for k in ("pass", "stats", "minibatch"))
            goal = GOAL_RSS[fmt]
            lines.append(
                f"{size:g} GB {fmt}: peak RSS {peak / 2**20:.0f} MiB (goal ≤ "
                f"{goal / 2**20:.0f} MiB): {'met' if peak <= goal else 'NOT met'}"
            )
        ratio = rate[("parquet", "pass")] / rate[("npy", "pass")]
        lines.append(f"{size:g} GB: Parquet pass / .npy pass rate {ratio:.2f}{_goal(ratio, 0.5)}")
        if (size, "csv", "pass") in by:
            ratio = by[(size, "csv", "pandas")]["seconds"] / by[(size, "csv", "pass")]["seconds"]
            lines.append(
                f"{size:g} GB CSV: pass / pandas.read_csv speed {ratio:.2f}{_goal(ratio, 1)}"
            )
            parse = by[(size, "csv", "pandas")]["seconds"] / by[(size, "csv", "arrow")]["seconds"]
            lines.append(
                f"{size:g} GB CSV: pyarrow's parse alone / pandas.read_csv speed {parse:.2f}"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    parser.add_argument("--sizes", default="0.5,2,8", help="GB per file, comma-separated")
    parser.add_argument("--dir", default=None, help="where the temporary folder goes")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "scale.json"))
    parser.add_argument("--child", nargs=3, metavar=("KIND", "FORMAT", "PATHS"))
    args = parser.parse_args()
    if args.child:
        kind, fmt, paths = args.child
        print(json.dumps(child(kind, fmt, json.loads(paths), args.dir)))
        return
    rows = []
    for size in (float(s) for s in args.sizes.split(",")):
        rows += run_size(size, args.dir)
    lines = summary(rows)
    print("\n".join(["Measured (as above):", *map(_line, rows), "", "Goals:", *lines]))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"rows": rows, "summary": lines, "cpus": os.cpu_count()}, f, indent=1)


if __name__ == "__main__":
    main()
