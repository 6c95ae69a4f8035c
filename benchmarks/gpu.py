"""The GPU figures: handgrad on an accelerator against native PyTorch in the same run.

Usage: ``python -m benchmarks.gpu [--device cuda] [--quick]`` (``make gpu-check`` runs the
suite on CUDA first, then this). Each figure prints handgrad's median, the peer's, the
ratio and the goal. When the two sides disagree beyond the stated tolerance, that
section prints one line saying so instead, the others still run, and the run fails
(exit 1); a missed speed goal is a figure ("NO"), not a failure. Then the auto path
rule is timed on the device (its pick against the fastest exact mini-batch path), and
the same float64 runs on the device and on the CPU are compared (gaps within 1e-6,
weights within 1e-8 relative). ``--device cpu --quick``
runs the same code on the CPU at toy sizes, so that the script is exercised where there
is no GPU (tests/test_devices.py).

Every timed call ends with a device synchronisation, so a median is the wall time of
the work, not of its launch. All data are float32 unless stated.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the idiom of PyTorch's docs)

import handgrad
from benchmarks.timing import interleaved_medians

SIZES = ((50, 13, 3), (1024, 100, 10), (65536, 256, 16), (1 << 20, 512, 16))
QUICK_SIZES = ((50, 13, 3), (1024, 100, 10))


def synced(device: torch.device, fn):
    """``fn`` followed by a wait for the device, so the timer sees the finished work."""
    if device.type != "cuda":
        return fn

    def call():
        fn()
        torch.cuda.synchronize(device)

    return call


def data(q, n, p, device, dtype=torch.float32, seed=0):
    # Drawn where they are used on CUDA (millions of rows); a device without a generator
    # of its own (the tests' fakegpu) gets the CPU's draws.
    where = device if device.type in ("cpu", "cuda") else torch.device("cpu")
    g = torch.Generator(device=where).manual_seed(seed)
    X = torch.randn(q, n, generator=g, device=where, dtype=dtype)
    W = torch.randn(n, p, generator=g, device=where, dtype=dtype) / n**0.5
    Y = X @ W + 0.1 * torch.randn(q, p, generator=g, device=where, dtype=dtype)
    return X.to(device), Y.to(device)


class DisagreementError(Exception):
    """The two sides of a figure computed different results: its timing means nothing."""


def agree(name: str, got: torch.Tensor, want: torch.Tensor, rtol: float) -> None:
    error = float((got.double() - want.double()).norm() / want.double().norm().clamp_min(1e-300))
    if not error <= rtol:
        raise DisagreementError(
            f"{name}: the two sides disagree (relative error {error:.2e} > {rtol:g})"
        )


def row(name: str, hand: float, peer: float, goal: float | None) -> str:
    ratio = hand / peer
    verdict = "-" if goal is None else ("yes" if ratio <= goal else "NO")
    goal_text = "-" if goal is None else f"<= {goal:g}"
    times = f"{hand * 1e3:>10.3f} ms {peer * 1e3:>10.3f} ms"
    return f"{name:<50} {times} {ratio:>7.2f}  {goal_text:>6} {verdict}"


def manual_step(device, sizes, repeats):
    """Graph-free Linear → MSE step (handgrad.forward, ctx.backward) against F.linear +
    the same loss through autograd. Goal ≤ 1.0 at every size."""
    return [manual_step_case(device, q, n, p, repeats) for q, n, p in sizes]


def manual_step_case(device, q, n, p, repeats):
    X, Y = data(q, n, p, device)
    W = torch.zeros(n, p, device=device)
    b = torch.zeros(p, device=device)
    W_t = torch.zeros(p, n, device=device, requires_grad=True)  # F.linear's layout
    b_n = torch.zeros(p, device=device, requires_grad=True)

    def hand():
        Y_hat, lin = handgrad.forward(handgrad.Linear, X, W, b, needs_input_grad=(0, 1, 1))
        loss, err = handgrad.forward(handgrad.MSE, Y_hat, Y, needs_input_grad=(1, 0))
        return loss, lin.backward(err.backward()[0])

    def native():
        loss = ((F.linear(X, W_t, b_n) - Y) ** 2).sum() / q
        return loss, torch.autograd.grad(loss, (W_t, b_n))

    (_, (_, grad_W, _)), (_, (grad_Wt, _)) = hand(), native()
    agree(f"manual step {q}x{n}x{p}", grad_W, grad_Wt.T, 1e-4)
    timed = {"hand": synced(device, hand), "native": synced(device, native)}
    t = interleaved_medians(timed, repeats)
    return row(f"manual step ({q}, {n}, {p})", t["hand"], t["native"], 1.0)


def full_batch_pass(device, shape, repeats):
    """A full-batch epoch against one read of X (a column sum): the bare fused pass
    (loss, ∂W, ∂b), then whole ``Trainer`` epochs on the fused path and under ``auto``
    (the statistics path: no pass over X). Goal: an epoch ≤ 2× a read."""
    from handgrad.functions.linear_mse import loss_and_grads

    q, n, p = shape
    X, Y = data(q, n, p, device)
    W, b = torch.zeros(n, p, device=device), torch.zeros(p, device=device)
    _, grad_W, _ = loss_and_grads(X, W, b, Y)
    agree("full-batch pass", grad_W, (2.0 / q) * X.double().T @ (-Y.double()), 1e-4)
    timed = {"pass": synced(device, lambda: loss_and_grads(X, W, b, Y))}
    timed["read"] = synced(device, lambda: X.sum(dim=0))
    dataset = as_dataset(X.cpu(), Y.cpu(), "gpu-full-batch")
    trainers = {path: epoch_trainer(dataset, device, path) for path in ("fused", "auto")}
    timed |= {path: synced(device, one_epoch(trainer)) for path, trainer in trainers.items()}
    t = interleaved_medians(timed, repeats, warmup=1)
    return [
        row(f"fused full-batch pass {shape}", t["pass"], t["read"], 2.0),
        row(f"full-batch epoch, fused {shape}", t["fused"], t["read"], 2.0),
        row(f"full-batch epoch, auto ({trainers['auto'].path.name})", t["auto"], t["read"], 2.0),
    ]


def as_dataset(X: torch.Tensor, Y: torch.Tensor, name: str):
    from handgrad.data.dataset import Dataset

    n, p = X.shape[1], Y.shape[1]
    features, targets = (f"x{i}" for i in range(n)), (f"y{j}" for j in range(p))
    return Dataset(X.numpy(), Y.numpy(), tuple(features), tuple(targets), name=name)


def epoch_trainer(dataset, device, path, **settings):
    """A trainer that never stops by itself, for timing one epoch after another."""
    from handgrad.config import TrainConfig, check
    from handgrad.training import Trainer, prepare

    settings = dict(test_fraction=0.0, tol=0.0, max_epochs=1 << 30, **settings)
    config = check(TrainConfig(path=path, device=device.type, **settings))
    return Trainer(prepare(dataset, config), config)


def one_epoch(trainer):
    return lambda: trainer.fit(max_epochs=trainer.epoch + 1)


def minibatch_epoch(device, q, repeats):
    """One epoch at batch 256 on q × 100 → 10: ``Trainer`` against nn.Linear + SGD."""
    n, p, size, lr = 100, 10, 256, 0.01
    X_cpu, Y_cpu = data(q, n, p, torch.device("cpu"))
    dataset = as_dataset(X_cpu, Y_cpu, "gpu-minibatch")
    trainer = epoch_trainer(dataset, device, "auto", batch_size=size, learning_rate=lr)
    X, Y = trainer.data.train.X, trainer.data.train.Y
    layer = torch.nn.Linear(n, p, device=device)
    optimizer = torch.optim.SGD(layer.parameters(), lr=lr)

    def native():
        order = torch.randperm(q, device=device)
        for start in range(0, q, size):
            rows = order[start : start + size]
            loss = ((layer(X[rows]) - Y[rows]) ** 2).sum() / len(rows)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    timed = {"hand": synced(device, one_epoch(trainer)), "native": synced(device, native)}
    t = interleaved_medians(timed, repeats, warmup=1)
    name = f"mini-batch epoch, batch {size}, {q}x{n}x{p} ({trainer.path.name})"
    return [row(name, t["hand"], t["native"], 0.5)]


def estimator_fit(device, q, repeats):
    """GDRegressor(device).fit against LinearRegression().fit on the CPU, medians of
    ``repeats`` interleaved fits each; goal ≤ 0.2. Predictions must agree elementwise
    to 1e-4 of the targets' spread."""
    from sklearn.linear_model import LinearRegression

    X_t, Y_t = data(q, 100, 10, torch.device("cpu"))
    X, Y = X_t.numpy(), Y_t.numpy()
    fitted = {}

    def hand():
        fitted["hand"] = handgrad.GDRegressor(device=device.type, dtype="float32").fit(X, Y)

    def peer():
        fitted["peer"] = LinearRegression().fit(X, Y)

    t = interleaved_medians({"hand": synced(device, hand), "peer": peer}, repeats, warmup=0)
    got, want = fitted["hand"].predict(X), fitted["peer"].predict(X)
    error = float(np.abs(got - want).max() / want.std())
    if not error <= 1e-4:
        raise DisagreementError(
            f"GDRegressor vs LinearRegression: predictions differ by up to {error:.1e} of "
            "the targets' spread (> 1e-4)"
        )
    name = f"GDRegressor.fit {q}x100x10 (predictions {error:.0e})"
    return [row(name, t["hand"], t["peer"], 0.2)]


# Batches (rows, features, targets) at which the auto rule's choice among the mini-batch
# paths is timed against the others, on the device: either side of FUSED_MIN_ELEMENTS.
AUTO_SHAPES = ((32, 10, 1), (256, 100, 10), (1024, 100, 10), (4096, 256, 16))
QUICK_AUTO_SHAPES = ((32, 10, 1), (1024, 100, 10))


def auto_rule(device, shapes, repeats):
    """The auto rule on this device: the step of the path it picks for a batch, against
    the fastest of the exact mini-batch paths (small, fused, chained; manual). Goal:
    within 1.25 of the fastest."""
    return [auto_case(device, rows, n, p, repeats) for rows, n, p in shapes]


def auto_case(device, rows, n, p, repeats):
    from handgrad.config import TrainConfig, check
    from handgrad.training.paths import ChainedPath, FusedPath, SmallBatchPath, choose_path

    X, Y = data(rows, n, p, device)
    W, b = torch.zeros(n, p, device=device), torch.zeros(p, device=device)
    paths = {"small": SmallBatchPath(), "fused": FusedPath("manual")}
    paths["chained"] = ChainedPath("manual")
    config = check(TrainConfig(batch_size=rows, device=device.type))
    chosen = choose_path(config, 2 * rows, n, None, device).name  # batches of half the rows
    want = paths["chained"](X, Y, W, b)[1]
    for name, path in paths.items():
        agree(f"auto rule, {name} path", path(X, Y, W, b)[1], want, 1e-4)
    fns = {name: synced(device, lambda path=path: path(X, Y, W, b)) for name, path in paths.items()}
    t = interleaved_medians(fns, repeats)
    fastest = min(t, key=t.get)
    name = f"auto path {rows}x{n}x{p}: {chosen}, fastest {fastest}"
    return row(name, t[chosen], t[fastest], 1.25)


# The same configurations in float64 on the device and on the CPU (tests/test_devices.py
# holds them to these on the embedded data; here on a larger synthetic problem).
AGREEMENT = {
    "full batch (stats)": dict(),
    "full batch (fused)": dict(path="fused", max_epochs=200),
    "mini-batch 256, momentum": dict(batch_size=256, optimizer="sgd", momentum=0.9, max_epochs=5),
    "mini-batch 256, adam": dict(
        batch_size=256, optimizer="adam", learning_rate=0.01, max_epochs=5
    ),
}
GAP_GOAL, WEIGHTS_GOAL = 1e-6, 1e-8


def agreement(device, q):
    """CUDA against CPU: the same configuration in float64 on both; the difference of
    the gaps to the optimum and the weights' relative difference, against the goals."""
    from benchmarks.timing import relative_difference
    from handgrad.config import TrainConfig, check
    from handgrad.data.datasets import synthetic
    from handgrad.training import Trainer, prepare

    dataset = synthetic(samples=q, features=50, targets=4, seed=1)[0]
    lines = []
    for name, settings in AGREEMENT.items():
        runs = []
        for where in (device.type, "cpu"):
            config = check(
                TrainConfig(device=where, dtype="float64", test_fraction=0.0, **settings)
            )
            runs.append(Trainer(prepare(dataset, config), config).fit())
        (here, cpu), gaps = runs, [run.metrics()["gap_to_optimum"] for run in runs]
        gap = abs(gaps[0] - gaps[1])
        weights = max(
            relative_difference(a, b) for a, b in zip(here.weights, cpu.weights, strict=True)
        )
        met = "yes" if gap <= GAP_GOAL and weights <= WEIGHTS_GOAL else "NO"
        lines.append(
            f"{device.type} vs cpu, {name:<30} gap diff {gap:.1e} (<= {GAP_GOAL:g}), "
            f"weights {weights:.1e} (<= {WEIGHTS_GOAL:g}) {met}"
        )
    return lines


def main(argv=None) -> int:
    from benchmarks.versions import torch_range_note

    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__)
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu to smoke-test")
    parser.add_argument("--quick", action="store_true", help="toy sizes and few repeats")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("benchmarks.gpu: torch sees no CUDA device here; use --device cpu.", file=sys.stderr)
        return 2
    quick, repeats = args.quick, 3 if args.quick else 9
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}, torch {torch.__version__}, numpy {np.__version__}")
    if torch_range_note():
        print(f"note: {torch_range_note()}")
    print(f"{'figure':<50} {'handgrad':>13} {'peer':>13} {'ratio':>7}  {'goal':>6}")
    sections = [
        (manual_step, QUICK_SIZES if quick else SIZES, repeats),
        (full_batch_pass, (4096, 64, 4) if quick else (1 << 22, 256, 16), repeats),
        (minibatch_epoch, 4096 if quick else 1 << 20, repeats),
        (estimator_fit, 20_000 if quick else 2_000_000, 1 if quick else 2),
        (auto_rule, QUICK_AUTO_SHAPES if quick else AUTO_SHAPES, repeats),
        (agreement, 2_000 if quick else 200_000),
    ]
    failed = False
    for section, *section_args in sections:
        try:  # one section's failure must not cost the others' figures
            lines = section(device, *section_args)
        except DisagreementError as error:
            lines = [f"{error} NO"]
        print("\n".join(lines), flush=True)
        # A missed speed goal is a figure; wrong results (disagreement, vs cpu) fail the run.
        wrong = [line for line in lines if "disagree" in line or " vs cpu, " in line]
        failed |= any(line.endswith(" NO") for line in wrong)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
