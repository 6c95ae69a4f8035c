"""Issue 12's anchor: Spark ML's normal-equation fit against ``handgrad train``, same file.

Usage: ``python -m benchmarks.spark [--dir TMP] [--rows N]`` (``make bench-spark``, which installs
the ``spark`` extra: pyspark, run on the Java found on the PATH). In a temporary folder
removed afterwards it writes the issue's file, 2M rows × 50 float32 features → 2 float32
targets as Parquet (``benchmarks.scale.write``: row groups of 1M rows, pyarrow's
defaults otherwise), then runs, each in a fresh process:

- ``spark``: a session (``local[2]``, ``spark.driver.memory=4g``), then per target
  ``LinearRegression(solver="normal", regParam=0, standardization=False)`` on the
  Parquet file through a ``VectorAssembler``, not cached, so each fit reads the file
  (Spark's estimator has one label column). Timed: the session's start (the import and
  the JVM's launch included) and each fit, inside the process;
- ``handgrad``: ``handgrad train --data data.parquet --target y0,y1 --out DIR``, the
  issue's command, both targets in one run (20 % of the rows held out for testing);
- ``handgrad-all``: the same with ``--test-fraction 0 --dtype float64``, which fits the
  rows Spark fits, in Spark's precision: its coefficients are the ones compared.

Both sides' end-to-end times are wall clock from this process, the interpreter's start
included. Memory is the peak of the summed ``VmRSS`` of the process and all its
descendants (the JVM is a child of Spark's Python; handgrad's figures are drawn by a
helper process), sampled every 50 ms by a thread of this process; the sum of each
process's own ``VmHWM`` (their peaks need not coincide, so an upper bound) is recorded
beside it. Coefficients (W and b, in the data's units) are compared with
``numpy.linalg.lstsq`` of the same rows in float64: the largest difference over a
target's 51 coefficients relative to its largest coefficient.

Goals (issue 12): handgrad end to end ≥ 10× faster than Spark's fit of one target, at
under a seventh of Spark's peak memory. The file is read from the page cache by both
(written just before).
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

from benchmarks.procfs import run_sampled
from benchmarks.scale import FEATURES, TARGETS, write

ROWS = 2_000_000
GOAL_SPEED, GOAL_MEMORY = 10.0, 7.0  # handgrad ≥ 10× faster, at under 1/7 of the memory
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def spark_child(parquet: str, folder: str) -> dict:
    """In the subprocess: start a session, fit each target; seconds and coefficients."""
    started = time.perf_counter()
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import LinearRegression
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("handgrad-bench")
        .config("spark.driver.memory", "4g")
        .config("spark.local.dir", folder)  # its shuffle and block files go with the folder
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    start_seconds = time.perf_counter() - started
    frame = spark.read.parquet(parquet)
    features = [f"x{j}" for j in range(FEATURES)]
    assembled = VectorAssembler(inputCols=features, outputCol="features").transform(frame)
    fits = []
    for target in [f"y{k}" for k in range(TARGETS)]:
        started = time.perf_counter()
        model = LinearRegression(
            featuresCol="features",
            labelCol=target,
            solver="normal",
            regParam=0.0,
            standardization=False,  # no effect on the optimum when regParam = 0
        ).fit(assembled)
        fits.append(
            {
                "target": target,
                "seconds": time.perf_counter() - started,
                "coef": model.coefficients.toArray().tolist(),
                "intercept": model.intercept,
            }
        )
    jvm = spark.sparkContext._jvm
    versions = {"spark": spark.version, "java": jvm.java.lang.System.getProperty("java.version")}
    spark.stop()
    return {"start_seconds": start_seconds, "fits": fits, **versions}


def measure(command: list[str]) -> dict:
    """Run ``command``; its wall seconds, its tree's peak RSS and its output."""
    result = run_sampled(command, ROOT)
    if result["returncode"] != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed:\n{result['stderr'][-3000:]}")
    result["peak_bytes"] = result.pop("tree_peak_bytes")
    result["stdout"] = result["stdout"][-2000:]
    del result["stderr"], result["returncode"]
    return result


def handgrad_coefficients(run: str) -> np.ndarray:
    """(51, 2): W over b, in the data's units, features in the file's order."""
    from handgrad.model import LinearModel

    model = LinearModel.load(os.path.join(run, "model"))
    W, b = model.raw_coefficients()
    order = [model.feature_names.index(f"x{j}") for j in range(FEATURES)]
    assert model.target_names == tuple(f"y{k}" for k in range(TARGETS)), model.target_names
    return np.vstack([W[order], b[None, :]])


def lstsq(paths: dict) -> np.ndarray:
    """(51, 2): the float64 least-squares W over b of all the rows."""
    X = np.load(paths["X"], mmap_mode="r")
    A = np.empty((X.shape[0], FEATURES + 1))
    A[:, :FEATURES], A[:, FEATURES] = X, 1.0
    solution, *_ = np.linalg.lstsq(A, np.load(paths["Y"]).astype(np.float64), rcond=None)
    return solution


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """max over targets of max |a - b| / max |b| over that target's coefficients."""
    return float(np.max(np.abs(a - b).max(axis=0) / np.abs(b).max(axis=0)))


def run(parent: str | None, rows: int) -> dict:
    folder = tempfile.mkdtemp(prefix="handgrad-spark-", dir=parent)
    try:
        started = time.perf_counter()
        paths = write(folder, rows, csv=False)
        size = os.path.getsize(paths["parquet"])
        print(
            f"{rows:,} rows × {FEATURES} → {TARGETS}: {size / 1e6:.0f} MB of Parquet written "
            f"in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        result = {"rows": rows, "parquet_bytes": size, "load_before": os.getloadavg()[0]}
        spark_out = os.path.join(folder, "spark.json")
        command = [sys.executable, "-m", "benchmarks.spark", "--child", paths["parquet"]]
        result["spark"] = measure(command + ["--dir", folder, "--out", spark_out])
        with open(spark_out) as f:
            result["spark"] |= json.load(f)
        print(f"spark: {result['spark']['seconds']:.1f} s", file=sys.stderr)
        train = [sys.executable, "-m", "handgrad", "train", "--data", paths["parquet"]]
        train += ["--target", ",".join(f"y{k}" for k in range(TARGETS))]
        everything = ["--test-fraction", "0", "--dtype", "float64"]  # Spark's rows, precision
        for kind, flags in (("handgrad", []), ("handgrad-all", everything)):
            out = os.path.join(folder, kind)
            result[kind] = measure(train + ["--out", out, *flags])
            result[kind]["coefficients"] = handgrad_coefficients(out).tolist()
            with open(os.path.join(out, "metrics.json")) as f:
                metrics = json.load(f)
            result[kind] |= {k: metrics.get(k) for k in ("path", "gap_to_optimum", "converged")}
            print(f"{kind}: {result[kind]['seconds']:.1f} s", file=sys.stderr)
        result["load_after"] = os.getloadavg()[0]
        reference = lstsq(paths)
        spark = np.array([f["coef"] + [f["intercept"]] for f in result["spark"]["fits"]]).T
        ours = np.array(result["handgrad-all"]["coefficients"])
        result["difference"] = {
            "spark_vs_lstsq": difference(spark, reference),
            "handgrad_vs_lstsq": difference(ours, reference),
            "handgrad_vs_spark": difference(ours, spark),
        }
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def summary(r: dict) -> list[str]:
    """The figures and the goals, as ratios measured in the same run."""
    spark, ours, everything = r["spark"], r["handgrad"], r["handgrad-all"]
    fits = [f["seconds"] for f in spark["fits"]]
    per_target = sum(fits) / len(fits)
    speed, whole = per_target / ours["seconds"], spark["seconds"] / ours["seconds"]
    memory = spark["peak_bytes"] / ours["peak_bytes"]
    mib = 2**20
    d = r["difference"]
    return [
        f"load average (1 min) {r['load_before']:.2f} before, {r['load_after']:.2f} after; "
        f"{os.cpu_count()} cores; Spark {spark['spark']} on Java {spark['java']}",
        f"Parquet file: {r['parquet_bytes'] / 1e6:.0f} MB, {r['rows']:,} rows",
        f"Spark: session start {spark['start_seconds']:.1f} s, fit per target "
        + ", ".join(f"{s:.1f}" for s in fits)
        + f" s, end to end {spark['seconds']:.1f} s; peak RSS of the tree "
        f"{spark['peak_bytes'] / mib:.0f} MiB (sum of VmHWM {spark['hwm_sum_bytes'] / mib:.0f})",
        f"handgrad train (both targets, 20 % held out): end to end {ours['seconds']:.1f} s; "
        f"peak RSS of the tree {ours['peak_bytes'] / mib:.0f} MiB "
        f"(sum of VmHWM {ours['hwm_sum_bytes'] / mib:.0f}); path {ours['path']}",
        f"handgrad train --test-fraction 0 --dtype float64: end to end "
        f"{everything['seconds']:.1f} s; peak {everything['peak_bytes'] / mib:.0f} MiB",
        f"speed: Spark fit per target / handgrad end to end {speed:.2f} (goal ≥ {GOAL_SPEED:g}): "
        + ("met" if speed >= GOAL_SPEED else "NOT met"),
        f"speed: Spark end to end / handgrad end to end {whole:.2f}",
        f"memory: Spark peak / handgrad peak {memory:.2f} (goal > {GOAL_MEMORY:g}): "
        + ("met" if memory > GOAL_MEMORY else "NOT met"),
        f"coefficients, max |difference| / max |coefficient| per target: Spark vs lstsq "
        f"{d['spark_vs_lstsq']:.1e}, handgrad vs lstsq {d['handgrad_vs_lstsq']:.1e}, "
        f"handgrad vs Spark {d['handgrad_vs_spark']:.1e} (handgrad: gap to the optimum "
        f"{everything['gap_to_optimum']:.1e})",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.spark", description=__doc__)
    parser.add_argument("--dir", default=None, help="where the temporary folder goes")
    parser.add_argument("--rows", type=int, default=ROWS, help=f"(default: {ROWS:,})")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "spark.json"))
    parser.add_argument("--child", metavar="PARQUET", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with open(args.out, "w") as f:
            json.dump(spark_child(args.child, args.dir), f)
        return
    from benchmarks.timing import machine

    if shutil.which("java") is None:  # before the ~900 MB of files
        sys.exit(
            "benchmarks.spark: no java on the PATH, and Spark needs Java 17 or later; "
            "install one (e.g. apt install openjdk-17-jre-headless) and run it again"
        )
    result = run(args.dir, args.rows)
    lines = summary(result)
    print("\n".join(lines))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": machine(), **result, "summary": lines}, f, indent=1)


if __name__ == "__main__":
    main()
