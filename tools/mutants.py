"""Break each promise of the README and docs on purpose, and check that a test notices.

``make mutants`` (or ``python tools/mutants.py [--only NAME] [--list] [--no-baseline]``)
copies the working tree (tracked and untracked, not ignored files) to a temporary
folder once, then for each mutant below: edits the copy (deletes the feature, or
perturbs it by 10 %), runs the mutant's small test selection on the copy with
``PYTHONPATH=<copy>/src``, and restores the file. A mutant is

- **caught** when the selection fails on it (and passed on the unmutated copy: the
  baseline, run once per distinct selection unless ``--no-baseline``);
- **SURVIVED** when the selection still passes: the promise is unguarded;
- **stale** when its text is no longer in the source (the code moved: re-point it).

A mutant marked ``pending`` guards a feature that is being built elsewhere (issue 10:
restores, the convergence flag, per-target results). It is reported in its own
section, and it is skipped ("not in source yet") while its ``requires`` text is absent.
The exit code is 1 when a mutant that is not pending survived or went stale.
The working tree is never touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Mutant:
    """One broken promise: ``edits`` (old → new, every occurrence) or ``append`` (code
    added at the end of ``file``), and the tests that should notice."""

    name: str
    promise: str  # what the README or docs promise, in a few words
    file: str  # relative to the repository root
    tests: list[str]  # pytest arguments: files, node ids, -k expressions
    edits: list[tuple[str, str]] = field(default_factory=list)
    append: str = ""
    pending: str | None = None  # the issue building the feature, while it is open
    requires: str | None = None  # text that must be in ``file`` for the mutant to apply
    env: dict[str, str] = field(default_factory=dict)  # set for its test run (and baseline)


# Wrappers appended to runs/atomic.py: every JSON written by a run passes through its
# write_json, whichever module computes the fields (outputs.py imports it after).
_JSON_WRAPPER = """

_mutant_write_json = write_json


def write_json(path, data):
    if isinstance(data, dict):
        {body}
    _mutant_write_json(path, data)
"""

MUTANTS = [
    # --- gradients: Linear, MSE, LinearMSE, the stats path -----------------------------
    Mutant(
        "linear-grad-W+10%",
        "Linear's hand-written ∂W (README: The Functions; docs/derivations.md)",
        "src/handgrad/functions/linear.py",
        ["tests/test_functions.py", "-k", "linear_forward_and_each_gradient"],
        edits=[("grad_W = X.T @ G", "grad_W = 1.1 * X.T @ G")],
    ),
    Mutant(
        "linear-grad-X+10%",
        "Linear's ∂X",
        "src/handgrad/functions/linear.py",
        ["tests/test_functions.py", "-k", "linear_forward_and_each_gradient"],
        edits=[("grad_X = G @ W.T", "grad_X = 1.1 * G @ W.T")],
    ),
    Mutant(
        "linear-grad-b+10%",
        "Linear's ∂b, the column sums of G",
        "src/handgrad/functions/linear.py",
        ["tests/test_functions.py", "-k", "linear_forward_and_each_gradient"],
        edits=[("grad_b = G.sum(dim=0)", "grad_b = 1.1 * G.sum(dim=0)")],
    ),
    Mutant(
        "mse-grad+10%",
        "MSE's ∂Ŷ = (2/q)(Ŷ − Y)",
        "src/handgrad/functions/mse.py",
        ["tests/test_functions.py", "-k", "mse_forward_and_each_gradient"],
        edits=[("grad_D = (2.0 / Y_hat.shape[0])", "grad_D = (2.2 / Y_hat.shape[0])")],
    ),
    Mutant(
        "mse-divides-by-q-times-p",
        "mse divides by q only, not q·p (README: The Functions)",
        "src/handgrad/functions/mse.py",
        ["tests/test_functions.py", "-k", "mse_is_p_times or mse_forward"],
        edits=[("return (D * D).sum() / Y_hat.shape[0]", "return (D * D).mean()")],
    ),
    Mutant(
        "linear_mse-grad-W+10%",
        "LinearMSE's fused ∂W",
        "src/handgrad/functions/linear_mse.py",
        ["tests/test_linear_mse.py", "-k", "value_and_each_gradient"],
        edits=[("(XtR * (2.0 / q))", "(XtR * (2.2 / q))")],
    ),
    Mutant(
        "linear_mse-grad-b+10%",
        "LinearMSE's fused ∂b",
        "src/handgrad/functions/linear_mse.py",
        ["tests/test_linear_mse.py", "-k", "value_and_each_gradient"],
        edits=[("(R_sum * (2.0 / q))", "(R_sum * (2.2 / q))")],
    ),
    Mutant(
        "linear_mse-loss+10%",
        "LinearMSE's loss",
        "src/handgrad/functions/linear_mse.py",
        ["tests/test_linear_mse.py", "-k", "value_and_each_gradient"],
        edits=[("loss = (sse / q).to(X.dtype)", "loss = (1.1 * sse / q).to(X.dtype)")],
    ),
    Mutant(
        "stats-path-grad+10%",
        "the stats path gives the chained path's gradients (training/paths.py)",
        "src/handgrad/training/paths.py",
        ["tests/test_paths.py", "-k", "each_path_gives"],
        edits=[("np.multiply(S_theta, 2.0 / q,", "np.multiply(S_theta, 2.2 / q,")],
    ),
    # --- R² ---------------------------------------------------------------------------
    Mutant(
        "r2+10%",
        "R² in metrics.json is scikit-learn's r2_score",
        "src/handgrad/training/metrics.py",
        ["tests/test_cli_train.py", "-k", "r2_is_scikit"],
        edits=[("return 1.0 - q * mse / sst_total", "return 1.0 - 1.1 * q * mse / sst_total")],
    ),
    Mutant(
        "r2-uniform-average",
        "multi-output R² is variance-weighted",
        "src/handgrad/training/metrics.py",
        ["tests/test_cli_train.py", "-k", "r2_is_scikit"],
        edits=[
            (
                "return mse, r2_from_mse(mse, float(sst.sum()), q)",
                "return mse, float((1 - sse / sst).mean())",
            )
        ],
    ),
    # --- the reference optimum and 1/L ---------------------------------------------------
    Mutant(
        "reference-optimum+10%",
        "every run reports the least-squares optimum of its training rows (README: demo)",
        "src/handgrad/training/reference.py",
        ["tests/test_cli_train.py", "-k", "lab-problem"],
        edits=[("    W = (vectors[:, keep] @ ", "    W = 1.1 * (vectors[:, keep] @ ")],
    ),
    Mutant(
        "auto-rate-1/L+10%",
        "--lr auto is 1/L computed from the data",
        "src/handgrad/training/reference.py",
        ["tests/test_cli_train.py", "-k", "chained-autograd"],
        edits=[("largest = float(eigenvalues[-1])", "largest = 1.1 * float(eigenvalues[-1])")],
    ),
    # --- standardisation -----------------------------------------------------------------
    Mutant(
        "overflowing-block-dropped",
        "a cell whose squares overflow float64 is named, not lost (docs/errors.md)",
        "src/handgrad/data/moments.py",
        ["tests/test_streaming.py", "-k", "overflow"],
        edits=[("                    _too_large(source, chunk.start + start, X, Y, shift)\n", "")],
    ),
    Mutant(
        "standardise-on-other-rows",
        "features standardised on the training rows (README: demo)",
        "src/handgrad/training/prepare.py",
        ["tests/test_cli_train.py", "tests/test_scaling.py", "tests/test_streaming.py"],
        # The test split's moments in place of the training split's: rows it must not see.
        edits=[
            ("    train = moments[0]\n", "    train = moments[2] if moments[2].q else moments[0]\n")
        ],
    ),
    Mutant(
        "standardise-scale+10%",
        "standardisation divides by the training rows' standard deviation",
        "src/handgrad/data/scaling.py",
        ["tests/test_cli_train.py", "-k", "chained-autograd"],
        edits=[("return cls(mean, scale)", "return cls(mean, 1.1 * scale)")],
    ),
    Mutant(
        "raw-intercept+10%",
        "GDRegressor's coef_ and intercept_ are in the data's units (matches LinearRegression)",
        "src/handgrad/model.py",
        ["tests/test_estimator.py", "-k", "default_fit_matches"],
        edits=[("- mx / sx @ self.W.double())", "- 1.1 * mx / sx @ self.W.double())")],
    ),
    # --- the final metrics: from the statistics, or from the rows when they cannot vouch --
    Mutant(
        "final-metrics-never-from-rows",
        "near an exact fit the final metrics come from a pass over the rows (README)",
        "src/handgrad/training/results.py",
        ["tests/test_final_metrics.py", "-k", "cannot_be_trusted"],
        edits=[
            (
                "    if rounding <= FINAL_RTOL:\n        return sses",
                "    if True:\n        return sses",
            )
        ],
    ),
    Mutant(
        "moments-mean-as-one-number",
        "the final metrics' rounding bound holds for columns far from zero read in groups",
        "src/handgrad/data/moments.py",
        ["tests/test_final_metrics.py", "-k", "1e8"],
        edits=[
            (
                "delta = (part.anchor - self.anchor) + (part.offset - self.offset)",
                "delta = part.mean - self.mean",
            )
        ],
    ),
    # --- resume, atomic writes, run directories, errors ----------------------------------
    Mutant(
        "resume-drops-optimizer-state",
        "--resume ends with bit-identical weights (README: Faults)",
        "src/handgrad/training/trainer.py",
        ["tests/test_cli_train.py", "-k", "resume_extends"],
        edits=[("self.optimizer.load_state_dict(state.optimizer)", "pass")],
    ),
    Mutant(
        "resume-weights+10%",
        "--resume continues from the checkpoint's weights",
        "src/handgrad/training/trainer.py",
        ["tests/test_cli_train.py", "-k", "resume_extends"],
        edits=[("self.W.copy_(state.W)", "self.W.copy_(1.1 * state.W)")],
    ),
    Mutant(
        "writes-not-atomic",
        "outputs are written atomically (README: run directory; STYLE)",
        "src/handgrad/runs/atomic.py",
        ["tests/test_faults.py", "-k", "failed_write"],
        edits=[("write(Path(tmp))", "write(path)"), ("os.replace(tmp, path)", "pass")],
    ),
    Mutant(
        "run-directory-overwritten",
        "a run directory is never overwritten",
        "src/handgrad/runs/rundir.py",
        ["tests/test_cli_train.py", "-k", "never_overwritten"],
        edits=[("        if path.exists():\n", "        if False:\n"), ("path.mkdir()", "pass")],
    ),
    Mutant(
        "user-error-exit-1",
        "user errors exit with code 2 (README: Errors)",
        "src/handgrad/errors.py",
        ["tests/test_cli_train.py", "-k", "never_overwritten"],
        edits=[("exit_code: int = 2", "exit_code: int = 1")],
    ),
    # --- benchmarks: agreement, load, the README table -----------------------------------
    Mutant(
        "bench-ignores-disagreement",
        "make bench fails when the two sides disagree (README: Speed)",
        "benchmarks/run.py",
        ["tests/test_bench_harness.py", "-k", "disagreeing"],
        edits=[("return 1 if failures else 0", "return 0")],
    ),
    Mutant(
        "bench-never-marks-load",
        "a row measured under load is marked",
        "benchmarks/run.py",
        ["tests/test_bench_harness.py", "-k", "under_load"],
        edits=[("else r.load > cores", "else False")],
    ),
    Mutant(
        "readme-table-drops-a-row",
        "the README's speed table is the committed result",
        "benchmarks/readme.py",
        ["tests/test_bench_harness.py", "-k", "readme"],
        edits=[('rows(payload["results"])', 'rows(payload["results"][:-1])')],
    ),
    # --- pending: features that issue 10 is building -------------------------------------
    Mutant(
        "divergence-keeps-last-weights",
        "a diverging run stops and keeps its best weights (README: Errors)",
        "src/handgrad/training/trainer.py",
        # test_cli_errors' divergence test shares a fixture that runs every CLI error case:
        # minutes on a loaded machine, so the trainer's and the estimator's tests guard it.
        ["tests/test_trainer.py", "tests/test_estimator.py", "-k", "diverg"],
        edits=[
            (
                'self._restore_best()\n        self.stop_reason = "diverged"',
                'self.stop_reason = "diverged"',
            )
        ],
    ),
    Mutant(
        "early-stopping-keeps-last-weights",
        "--early-stopping restores the best weights (README: Descent)",
        "src/handgrad/training/trainer.py",
        ["tests/test_trainer.py", "tests/test_estimator.py", "-k", "early_stopping"],
        edits=[
            (
                'if self.stop_reason in ("converged", "tol", "early_stopping"):\n'
                "            self._restore_best()",
                'if self.stop_reason in ("converged", "tol", "early_stopping"):\n            pass',
            )
        ],
    ),
    Mutant(
        "converged-flag-flipped",
        'metrics.json says "converged": true only when the gap is below 1e-3 (issue 10)',
        "src/handgrad/runs/atomic.py",
        ["tests/test_cli_train.py", "tests/test_trainer.py", "-k", "converge or options"],
        append=_JSON_WRAPPER.format(
            body='if "converged" in data:\n            data["converged"] = not data["converged"]'
        ),
    ),
    Mutant(
        "whitened-gradient+10%",
        "whitened steps use ∂C/∂V = Mᵀ∂C/∂θ (docs/derivations.md, Whitening)",
        "src/handgrad/training/precondition.py",
        ["tests/test_precondition.py", "-k", "autograds_of_the_reparametrised"],
        edits=[("return torch.addmm(self.M_T", "return 1.1 * torch.addmm(self.M_T")],
    ),
    Mutant(
        "iterate-mean-in-run-dtype",
        "the iterate mean is kept in float64, so it does not freeze in float32",
        "src/handgrad/training/averaging.py",
        ["tests/test_precondition.py", "-k", "iterate_mean"],
        edits=[
            (
                "W.to(wide, copy=True), b.to(wide, copy=True)",
                "W.clone(), b.clone()",
            )
        ],
    ),
    Mutant(
        "parameters-stay-on-the-device",
        "the parameters meet the CPU statistics at one boundary (issue 11; fakegpu)",
        "src/handgrad/training/trainer.py",
        ["tests/test_devices.py", "-k", "equals_training_on_the_cpu and default"],
        edits=[("(weight.detach().to(cpu) for weight", "(weight.detach() for weight")],
        env={"HANDGRAD_TEST_DEVICE": "fakegpu"},
    ),
    Mutant(
        "whitening-map-on-the-cpu",
        "the whitening maps live on the run's device (issue 11; fakegpu)",
        "src/handgrad/training/precondition.py",
        ["tests/test_devices.py", "-k", "whiten"],
        edits=[("M.to(dtype=dtype, device=device)", "M.to(dtype=dtype)")],
        env={"HANDGRAD_TEST_DEVICE": "fakegpu"},
    ),
    Mutant(
        "small-path-reads-its-loss",
        "the small path's GPU code reads nothing back per batch (issue 11)",
        "src/handgrad/training/paths.py",
        ["tests/test_devices.py", "-k", "reads_nothing_back"],
        edits=[
            (
                "            loss = torch.vdot(R.flatten(), R.flatten()) / q\n",
                "            loss = float(torch.vdot(R.flatten(), R.flatten())) / q\n",
            )
        ],
    ),
    Mutant(
        "host-read-per-minibatch",
        "a mini-batch epoch reads nothing back to the host per batch (issue 11)",
        "src/handgrad/training/trainer.py",
        ["tests/test_devices.py", "-k", "reads_nothing_back"],
        edits=[
            (
                "        self.average.update(self.W, self.b)\n",
                "        self.average.update(self.W, self.b)\n"
                "        bool(torch.isfinite(self.W).all())\n",
            )
        ],
    ),
    Mutant(
        "pickle-keeps-the-training-rows",
        "a pickled GDRegressor holds the trainer's state, not its rows (docs/estimator.md)",
        "src/handgrad/estimator.py",
        ["tests/test_estimator.py", "-k", "pickle"],
        edits=[('if isinstance(state.get("_trainer"), Trainer):', "if False:")],
    ),
    Mutant(
        "per-target-r2+10%",
        "per-target MSE and R² in metrics.json (issue 10)",
        "src/handgrad/runs/atomic.py",
        ["tests/", "-k", "per_target or per-target"],
        append=_JSON_WRAPPER.format(
            body='for row in data.get("per_target") or []:\n'
            '            for key in [k for k in row if k.startswith("r2")]:\n'
            "                row[key] = 1.1 * row[key] if row[key] is not None else None"
        ),
    ),
]


def copy_tree(destination: str) -> None:
    """Tracked and untracked files that git does not ignore, into ``destination``."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for relative in filter(None, listing.split("\0")):
        source = os.path.join(ROOT, relative)
        if not os.path.isfile(source):  # deleted but still in the index
            continue
        target = os.path.join(destination, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)


def run_tests(tree: str, m: Mutant, timeout: float) -> tuple[int, str]:
    tests = m.tests
    env = {
        **os.environ,
        "PYTHONPATH": os.path.join(tree, "src"),
        "PYTHONDONTWRITEBYTECODE": "1",
        **m.env,
    }
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(
            command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return -1, "timed out"
    lines = done.stdout.strip().splitlines()
    return done.returncode, lines[-1] if lines else done.stderr.strip()[-200:]


def mutate(text: str, mutant: Mutant) -> str | None:
    """The mutated text, or None when an edit's old text is not there (stale)."""
    for old, new in mutant.edits:
        if old not in text:
            return None
        text = text.replace(old, new)
    return text + mutant.append


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/mutants.py", description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", help="mutants whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated runs")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per test run")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or any(o in m.name for o in args.only)]
    if args.list:
        for m in mutants:
            tag = f"  [pending: {m.pending}]" if m.pending else ""
            print(f"{m.name:36} {m.file}  {' '.join(m.tests)}{tag}\n    {m.promise}")
        return 0
    rows: list[tuple[Mutant, str, str, float]] = []
    with tempfile.TemporaryDirectory(prefix="handgrad-mutants-") as tree:
        copy_tree(tree)
        baseline: dict[tuple[str, ...], tuple[int, str]] = {}
        for m in mutants:
            path = os.path.join(tree, m.file)
            with open(path, encoding="utf-8") as f:
                original = f.read()
            if m.requires and m.requires not in original:
                rows.append((m, "not in source yet", "", 0.0))
                continue
            mutated = mutate(original, m)
            if mutated is None:
                rows.append((m, "stale", "the text to mutate is not in the source", 0.0))
                continue
            key = (*m.tests, *sorted(m.env.items()))
            if not args.no_baseline and key not in baseline:
                baseline[key] = run_tests(tree, m, args.timeout)
            if key in baseline and baseline[key][0] != 0:
                rows.append((m, "baseline fails", baseline[key][1], 0.0))
                continue
            started = time.perf_counter()
            try:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(mutated)
                code, summary = run_tests(tree, m, args.timeout)
            finally:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(original)
            status = "caught" if code not in (0, 5) else "SURVIVED" if code == 0 else "no tests"
            rows.append((m, status, summary, time.perf_counter() - started))
            print(f"{status:9} {m.name}  ({summary})", file=sys.stderr, flush=True)
    failed = False
    for title, group in (
        ("Mutants", [r for r in rows if not r[0].pending]),
        ("Pending features (reported apart)", [r for r in rows if r[0].pending]),
    ):
        if not group:
            continue
        print(f"\n{title}:")
        for m, status, summary, seconds in group:
            print(f"  {status:17} {m.name:36} {seconds:5.1f} s  {m.promise}")
            if status not in ("caught", "not in source yet"):
                print(f"  {'':17} {summary}")
            failed |= not m.pending and status != "caught"
    caught = sum(1 for _, status, _, _ in rows if status == "caught")
    print(f"\n{caught} of {len(rows)} mutants caught")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
