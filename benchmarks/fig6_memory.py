"""Figure 6, memory: peak memory of a full-batch epoch over the size of the data.

How it is measured: each epoch runs in a fresh Python subprocess (this module with
``--child``), so nothing else shares its heap. The child records its resident set
(VmRSS) before making the data, makes X (q, n) and Y (q, p), runs one epoch to warm
up, resets the kernel's high-water mark (``echo 5 > /proc/self/clear_refs``), runs the
measured epoch and reads the high-water mark (VmHWM). Peak = VmHWM − RSS before the
data, so it counts the data itself: 1.0 means no memory beyond X and Y, and a (q, n)
temporary would show as +1.0. torch's CPU allocator hands big blocks straight back to
the OS, so RSS follows it. Linux only; elsewhere the figure says it was not measured.
Goal: peak / (X and Y bytes) ≤ 1.2 for handgrad's epoch (``loss_and_grads``); the
native autograd epoch is measured the same way for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks.timing import Result

LEARNING_RATE = 0.01


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def child(path: str, q: int, n: int, p: int) -> dict:
    """Run in the subprocess: measure one epoch of ``path`` ("handgrad" or "native")."""
    import importlib

    import torch
    import torch.nn.functional as F  # noqa: N812 (the idiom of PyTorch's docs)

    fused = importlib.import_module("handgrad.functions.linear_mse")
    W, b = 0.01 * torch.ones(n, p), torch.zeros(p)
    W_t, b_native = W.T.contiguous().requires_grad_(), b.clone().requires_grad_()

    def epoch(X, Y):
        if path == "handgrad":
            _, grad_W, grad_b = fused.loss_and_grads(X, W, b, Y)
            W.sub_(LEARNING_RATE * grad_W)
            b.sub_(LEARNING_RATE * grad_b)
        else:
            loss = ((F.linear(X, W_t, b_native) - Y) ** 2).sum() / X.shape[0]
            loss.backward()
            with torch.no_grad():
                W_t.sub_(LEARNING_RATE * W_t.grad)
                b_native.sub_(LEARNING_RATE * b_native.grad)
            W_t.grad = b_native.grad = None

    epoch(torch.randn(64, n), torch.randn(64, p))  # load kernels and thread pools first
    before = _status_kib("VmRSS")
    X, Y = torch.randn(q, n), torch.randn(q, p)
    epoch(X, Y)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    epoch(X, Y)
    peak = _status_kib("VmHWM")
    data = X.numel() * X.element_size() + Y.numel() * Y.element_size()
    return {"peak_bytes": (peak - before) * 1024, "data_bytes": data}


def measure(path: str, q: int, n: int, p: int) -> dict:
    command = [sys.executable, "-m", "benchmarks.fig6_memory", "--child", path]
    command += ["--q", str(q), "--n", str(n), "--p", str(p)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick: bool) -> list[Result]:
    q, n, p = (100_000 if quick else 1_000_000), 100, 1
    case = f"peak of a full-batch epoch / X and Y bytes, (q, n, p) = ({q:,}, {n}, {p})"
    if not os.path.exists("/proc/self/clear_refs"):
        return [
            Result(
                "6 memory",
                case,
                float("nan"),
                1.0,
                "X+Y bytes",
                1.2,
                "bytes",
                ["not measured: needs Linux's /proc/self/clear_refs"],
            )
        ]
    hand, native = measure("handgrad", q, n, p), measure("native", q, n, p)
    return [
        Result(
            figure="6 memory",
            case=case,
            handgrad=hand["peak_bytes"],
            peer=hand["data_bytes"],
            peer_name="X+Y bytes",
            goal=1.2,
            unit="bytes",
            notes=[
                "peak = VmHWM after the epoch − VmRSS before the data, fresh subprocess",
                "native autograd epoch, measured the same way: "
                f"{native['peak_bytes'] / native['data_bytes']:.3f}x the data",
            ],
        )
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Measure one epoch's peak memory (child).")
    parser.add_argument("--child", choices=["handgrad", "native"], required=True)
    parser.add_argument("--q", type=int, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--p", type=int, required=True)
    args = parser.parse_args()
    print(json.dumps(child(args.child, args.q, args.n, args.p)))
