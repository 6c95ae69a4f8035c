"""Figure 5, mini-batch throughput: samples per second of a training epoch.

Data: q = 16,384 rows, n = 100 → p = 10, float32, at batch sizes 32, 256 and 4096.
handgrad: one epoch of ``Trainer.fit`` (``path="auto"``, plain descent at lr = 0.01),
per-epoch bookkeeping included. Peer: a native epoch with the same shuffling work, one
``randperm`` and an ``index_select`` of X and Y per batch, then ``F.linear`` +
squared-error sum / rows, ``loss.backward()``, ``torch.optim.SGD.step()``,
``zero_grad()``, and the epoch's loss summed as handgrad does. Timed in interleaved
rounds, medians of seconds per epoch; the ratio of times is the inverse ratio of
throughputs. Goal: at least the peer's throughput (ratio ≤ 1.0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the idiom of PyTorch's docs)

from benchmarks.timing import Result, interleaved_medians
from handgrad.config import TrainConfig, check
from handgrad.data.dataset import Dataset
from handgrad.training import Trainer, prepare

N, P, LEARNING_RATE = 100, 10, 0.01
BATCH_SIZES = (32, 256, 4096)


def run(quick: bool) -> list[Result]:
    q = 2048 if quick else 16_384
    g = torch.Generator().manual_seed(0)
    X_raw = torch.randn(q, N, generator=g, dtype=torch.float64)
    Y_raw = X_raw @ torch.randn(N, P, generator=g, dtype=torch.float64)
    dataset = Dataset(
        X=X_raw.numpy(),
        Y=Y_raw.numpy(),
        feature_names=tuple(f"x{i}" for i in range(N)),
        target_names=tuple(f"y{j}" for j in range(P)),
        name="fig5",
    )
    results = []
    for size in BATCH_SIZES:
        config = check(
            TrainConfig(
                batch_size=size,
                learning_rate=LEARNING_RATE,
                test_fraction=0.0,
                tol=0.0,
                n_iter_no_change=1 << 30,
                max_epochs=1 << 30,
                device="cpu",
            )
        )
        trainer = Trainer(prepare(dataset, config), config)
        X, Y = trainer.data.train.X, trainer.data.train.Y
        W_t = torch.zeros(P, N, requires_grad=True)  # F.linear's layout
        b = torch.zeros(P, requires_grad=True)
        optimizer = torch.optim.SGD([W_t, b], lr=LEARNING_RATE)

        def hand(trainer=trainer):
            trainer.fit(max_epochs=trainer.epoch + 1)

        def native(X=X, Y=Y, W_t=W_t, b=b, optimizer=optimizer, size=size):
            order = torch.randperm(q)
            total = torch.zeros(())
            for start in range(0, q, size):
                rows = order[start : start + size]
                X_b, Y_b = X.index_select(0, rows), Y.index_select(0, rows)
                loss = ((F.linear(X_b, W_t, b) - Y_b) ** 2).sum() / X_b.shape[0]
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                total += loss.detach() * X_b.shape[0]
            return float(total) / q

        t = interleaved_medians(
            {"handgrad": hand, "native": native},
            repeats=3 if quick else 9,
            warmup=1,
            min_seconds=0.0,
        )
        results.append(
            Result(
                figure="5 mini-batch",
                case=f"epoch at batch {size}, (q, n, p) = ({q:,}, {N}, {P})",
                handgrad=t["handgrad"],
                peer=t["native"],
                peer_name="randperm + index_select, autograd, SGD",
                goal=1.0,
                notes=[
                    f"batch {size}: handgrad {q / t['handgrad']:,.0f} samples/s on path "
                    f"{trainer.metrics()['path']!r}, native {q / t['native']:,.0f} samples/s"
                ],
            )
        )
    return results
