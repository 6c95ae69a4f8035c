"""Figure 6, memory: peak memory of a full-batch epoch, handgrad against native autograd.

Both sides float32, (q, n, p) = (10⁶, 100, 16) (10⁵ rows with --quick); p = 16, so a
(q, p) temporary (Ŷ, R, its gradient) is a visible share of the data. handgrad: the
fused ``loss_and_grads`` (``FusedPath("manual")``), which works in row blocks. Peer:
native autograd, ``F.linear`` + squared-error sum / q, ``loss.backward()``, update.

How it is measured: each epoch runs in a fresh Python subprocess (this module with
``--child``), so nothing else shares its heap. The child records its resident set
(VmRSS) before making the data, makes X (q, n) and Y (q, p) from a fixed seed, runs one
epoch to warm up, resets the kernel's high-water mark (``echo 5 > /proc/self/clear_refs``),
runs the measured epoch and reads the high-water mark (VmHWM). Peak = VmHWM − RSS before
the data, so it counts the data itself. torch's CPU allocator hands big blocks straight
back to the OS, so RSS follows it. Linux only; elsewhere the figure says it was not
measured. Each side is measured ``repeats`` times, alternating; medians.

Agreement: both children start from the same W and b and data; after their two epochs
their W and b agree to float32 rounding. Goals: handgrad's peak ≤ 0.85x native's (native
holds at least two (q, p) float32 temporaries more: (n + p)/(n + 3p) ≈ 0.78 of its peak
at this size, so 0.85 leaves a margin), and ≤ 1.2x the bytes of X and Y.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import torch

from benchmarks.procfs import kib
from benchmarks.timing import (
    Check,
    Result,
    Timing,
    relative_difference,
    repeats,
    rounding_tolerance,
)

LEARNING_RATE = 0.01


def child(path: str, q: int, n: int, p: int) -> dict:
    """Run in the subprocess: measure one epoch of ``path`` ("handgrad" or "native")."""
    import torch
    import torch.nn.functional as F  # noqa: N812 (the idiom of PyTorch's docs)

    from handgrad.training.paths import FusedPath

    fused = FusedPath("manual")
    W, b = 0.01 * torch.ones(n, p), torch.zeros(p)
    W_t, b_native = W.T.contiguous().requires_grad_(), b.clone().requires_grad_()

    def epoch(X, Y):
        if path == "handgrad":
            _, grad_W, grad_b = fused(X, Y, W, b)
            W.sub_(LEARNING_RATE * grad_W)
            b.sub_(LEARNING_RATE * grad_b)
        else:
            loss = ((F.linear(X, W_t, b_native) - Y) ** 2).sum() / X.shape[0]
            loss.backward()
            with torch.no_grad():
                W_t.sub_(LEARNING_RATE * W_t.grad)
                b_native.sub_(LEARNING_RATE * b_native.grad)
            W_t.grad = b_native.grad = None

    epoch(torch.zeros(64, n), torch.zeros(64, p))  # kernels and thread pools; W unchanged
    before = kib("VmRSS")
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(q, n, generator=g), torch.randn(q, p, generator=g)
    epoch(X, Y)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    epoch(X, Y)
    peak = kib("VmHWM")
    data = X.numel() * X.element_size() + Y.numel() * Y.element_size()
    theta = torch.cat([W, b[None]]) if path == "handgrad" else torch.cat([W_t.T, b_native[None]])
    return {
        "peak_bytes": (peak - before) * 1024,
        "data_bytes": data,
        "theta": theta.detach().double().tolist(),
    }


def measure(path: str, q: int, n: int, p: int) -> dict:
    command = [sys.executable, "-m", "benchmarks.fig6_memory", "--child", path]
    command += ["--q", str(q), "--n", str(n), "--p", str(p)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick: bool) -> list[Result]:
    q, n, p = (20_000 if quick else 1_000_000), 100, 16
    size = f"(q, n, p) = ({q:,}, {n}, {p})"
    if not os.path.exists("/proc/self/clear_refs"):
        return [
            Result(
                "6 memory",
                f"peak of a full-batch epoch, fused vs native autograd, {size}",
                float("nan"),
                float("nan"),
                "native autograd epoch's peak",
                0.85,
                "bytes",
                ["not measured: needs Linux's /proc/self/clear_refs"],
            )
        ]
    peaks: dict[str, list[float]] = {"handgrad": [], "native": []}
    last = {}
    # A subprocess per sample costs a Python start-up; a smoke run takes one each.
    for round_ in range(1 if quick else repeats(quick, 7)):
        order = ("handgrad", "native") if round_ % 2 == 0 else ("native", "handgrad")
        for side in order:
            last[side] = measure(side, q, n, p)
            peaks[side].append(last[side]["peak_bytes"])
    hand, native = Timing.of(peaks["handgrad"]), Timing.of(peaks["native"])
    data_bytes = last["handgrad"]["data_bytes"]
    data = Timing(data_bytes, data_bytes, data_bytes, hand.repeats)
    theta = torch.tensor(last["handgrad"]["theta"])
    theta_native = torch.tensor(last["native"]["theta"])
    checks = [
        Check(
            "[W; b] after the two epochs, ‖Δ‖/‖θ‖",
            relative_difference(theta, theta_native),
            rounding_tolerance(q),
            "float32 rounding of the sums over q rows",
        )
    ]
    common = dict(
        unit="bytes",
        handgrad_side="float32, fused loss_and_grads (FusedPath manual), row blocks",
        includes="peak resident memory of one epoch (loss, ∂W, ∂b, update), data included",
        checks=checks,
        notes=[
            "peak = VmHWM after the epoch − VmRSS before the data, fresh subprocess",
            f"native autograd epoch: {native.median / data_bytes:.3f}x the data; "
            f"handgrad: {hand.median / data_bytes:.3f}x",
        ],
    )
    return [
        Result.timed(
            "6 memory",
            f"peak of a full-batch epoch, fused vs native autograd, {size}",
            hand,
            native,
            peer_name="native autograd epoch's peak",
            peer_side="float32, F.linear + ((Ŷ−Y)²).sum()/q, autograd, update",
            goal=0.85,
            **common,
        ),
        Result.timed(
            "6 memory",
            f"peak of a full-batch epoch over the bytes of X and Y, {size}",
            hand,
            data,
            peer_name="X+Y bytes",
            peer_side="a bound: the bytes of X and Y, no computation",
            goal=1.2,
            **common,
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Measure one epoch's peak memory (child).")
    parser.add_argument("--child", choices=["handgrad", "native"], required=True)
    parser.add_argument("--q", type=int, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--p", type=int, required=True)
    args = parser.parse_args()
    print(json.dumps(child(args.child, args.q, args.n, args.p)))
