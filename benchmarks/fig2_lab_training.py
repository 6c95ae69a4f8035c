"""Figure 2, lab-size training: ``handgrad train`` against a plain PyTorch loop.

The lab's problem, synthetic (q, n, p) = (50, 13, 3), 2000 full-batch updates at
lr = 0.05 (200 with --quick). handgrad: the real command line in this process, ``handgrad.cli.main``
(``train --dataset synthetic ... --tol 0 --patience 2000``, so no stopping rule fires
and all 2000 updates run), its ``train_seconds`` read back from metrics.json: the
training loop only, per-epoch bookkeeping (train MSE, R², rate, gradient norm) and the
CLI's per-epoch callback included, set-up and file writing excluded. Peer: W, b with
requires_grad on the same standardised float32 data, ``((XW + b − Y)²).sum() / q``,
``loss.backward()``, ``torch.optim.SGD(lr=0.05).step()``, ``zero_grad()``, 2000 times.
Timed in alternating rounds; medians. Goal: ≥ 2x faster (ratio ≤ 0.5).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import tempfile
import time

import torch

from benchmarks.timing import Result
from handgrad.cli import main as cli_main
from handgrad.config import TrainConfig, check
from handgrad.data.datasets import synthetic
from handgrad.training import prepare

Q, N, P, LEARNING_RATE = 50, 13, 3, 0.05
FULL_EPOCHS, QUICK_EPOCHS = 2000, 200


def _cli_run(folder: str, index: int, epochs: int) -> dict:
    out = os.path.join(folder, f"run{index}")
    argv = (
        f"train --dataset synthetic --samples {Q} --features {N} --targets {P} "
        f"--test-fraction 0 --lr {LEARNING_RATE} --epochs {epochs} --tol 0 "
        f"--patience {epochs} --device cpu --quiet --out {out}"
    ).split()
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli_main(argv)
    if code != 0:
        raise RuntimeError(f"handgrad train exited with {code}")
    with open(os.path.join(out, "metrics.json")) as f:
        return json.load(f)


def _native_data():
    config = check(TrainConfig(test_fraction=0.0, device="cpu", learning_rate=LEARNING_RATE))
    data = prepare(synthetic(samples=Q, features=N, targets=P)[0], config)
    return data.train.X, data.train.Y


def _native_run(X, Y, epochs: int) -> tuple[float, float]:
    """Seconds for ``epochs`` updates, and the final loss."""
    W = torch.zeros(N, P, requires_grad=True)
    b = torch.zeros(P, requires_grad=True)
    optimizer = torch.optim.SGD([W, b], lr=LEARNING_RATE)
    started = time.perf_counter()
    for _ in range(epochs):
        loss = ((X @ W + b - Y) ** 2).sum() / Q
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    seconds = time.perf_counter() - started
    with torch.no_grad():
        final = float(((X @ W + b - Y) ** 2).sum() / Q)
    return seconds, final


def run(quick: bool) -> list[Result]:
    X, Y = _native_data()
    hand, native = [], []
    epochs, repeats = (QUICK_EPOCHS, 2) if quick else (FULL_EPOCHS, 9)
    with tempfile.TemporaryDirectory() as folder:
        (
            _cli_run(folder, -1, epochs),
            _native_run(X, Y, epochs),
        )  # warm-up: imports, allocator, caches
        for round_ in range(repeats):
            first_native = round_ % 2 == 1
            if first_native:
                native.append(_native_run(X, Y, epochs))
            metrics = _cli_run(folder, round_, epochs)
            hand.append(metrics["train_seconds"])
            if not first_native:
                native.append(_native_run(X, Y, epochs))
    native_final = native[-1][1]
    history = metrics["history"]["train_mse"]
    hand_time, native_time = statistics.median(hand), statistics.median(s for s, _ in native)
    # Both at the final weights: handgrad's metrics are exact (float64) evaluations.
    same = abs(metrics["train_mse"] - native_final) <= 1e-4 * native_final
    notes = [
        f"handgrad chose path {metrics['path']!r}; {metrics['epochs']} updates on both "
        f"sides ({len(history)} recorded epochs), stop reason {metrics['stop_reason']!r}",
        f"final train MSE handgrad {metrics['train_mse']:.6g}, peer {native_final:.6g} "
        f"(equal to 1e-4: {same})",
        f"speed-up over the PyTorch loop: {native_time / hand_time:.2f}x",
    ]
    if metrics["epochs"] != epochs:
        raise RuntimeError(f"handgrad ran {metrics['epochs']} epochs, not {epochs}")
    return [
        Result(
            figure="2 lab training",
            case=f"handgrad train vs PyTorch loop, (q, n, p) = ({Q}, {N}, {P}), {epochs} updates",
            handgrad=hand_time,
            peer=native_time,
            peer_name="autograd loop, SGD(lr=0.05)",
            goal=0.5,
            notes=notes,
        )
    ]
