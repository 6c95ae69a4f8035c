"""Figure 5, mini-batch throughput: seconds per training epoch.

Data: q = 16,384 rows (8,192 with --quick, still above every batch size), n = 100 →
p = 10, float32, at batch sizes 32, 256 and 4096, plain descent at lr = 0.01.

- handgrad: one epoch of ``Trainer.fit`` (``path="auto"``): a seeded shuffle, per batch
  ``index_select`` of X and Y per chunk and the path's loss and gradients (``small``
  below ``FUSED_MIN_ELEMENTS`` entries per batch, ``fused`` above; never ``stats``, which
  would not read X), the update, and the epoch's bookkeeping (train MSE, R², rate,
  gradient norm). The figure checks the path it gets.
- Peer: a native epoch with the same work: a seeded ``randperm``, ``index_select`` of X
  and Y per batch, ``F.linear`` + squared-error sum / rows, ``loss.backward()``,
  ``torch.optim.SGD.step()``, ``zero_grad()``, and the epoch's loss read back.

Both sides' timings exclude the one-off set-up (standardising the data; handgrad's
statistics and reference, reported in the notes). Agreement: one unshuffled epoch from
W = 0, b = 0 on each side ends at the same W and b, to float32 rounding. Goal: at least
the peer's throughput (ratio ≤ 1.0).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F  # noqa: N812 (the idiom of PyTorch's docs)

from benchmarks.timing import (
    Check,
    Result,
    interleaved_timings,
    relative_difference,
    repeats,
    rounding_tolerance,
)
from handgrad.config import TrainConfig, check
from handgrad.data.dataset import Dataset
from handgrad.training import Trainer, prepare
from handgrad.training.paths import FUSED_MIN_ELEMENTS

N, P, LEARNING_RATE = 100, 10, 0.01
BATCH_SIZES = (32, 256, 4096)


def _config(size: int, shuffle: bool) -> TrainConfig:
    return check(
        TrainConfig(
            batch_size=size,
            learning_rate=LEARNING_RATE,
            test_fraction=0.0,
            tol=0.0,
            n_iter_no_change=1 << 30,
            max_epochs=1 << 30,
            device="cpu",
            dtype="float32",
            shuffle=shuffle,
        )
    )


class NativeEpoch:
    """The peer: W_t (p, n) and b with autograd, torch.optim.SGD, one epoch per call."""

    def __init__(self, X, Y, size: int, shuffle: bool) -> None:
        self.X, self.Y, self.size, self.shuffle = X, Y, size, shuffle
        self.W_t = torch.zeros(P, N, requires_grad=True)  # F.linear's layout
        self.b = torch.zeros(P, requires_grad=True)
        self.optimizer = torch.optim.SGD([self.W_t, self.b], lr=LEARNING_RATE)
        self.epoch = 0

    def __call__(self) -> float:
        X, Y, q = self.X, self.Y, self.X.shape[0]
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.epoch)
            order = torch.randperm(q, generator=generator)
        else:
            order = torch.arange(q)
        total = torch.zeros(())
        for start in range(0, q, self.size):
            rows = order[start : start + self.size]
            X_b, Y_b = X.index_select(0, rows), Y.index_select(0, rows)
            loss = ((F.linear(X_b, self.W_t, self.b) - Y_b) ** 2).sum() / X_b.shape[0]
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad()
            total += loss.detach() * X_b.shape[0]
        self.epoch += 1
        return float(total) / q


def run(quick: bool) -> list[Result]:
    q = 8192 if quick else 16_384
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
        assert size < q, "a batch as large as the data would be full batch (stats)"
        expected = "fused" if size * N >= FUSED_MIN_ELEMENTS else "small"

        # Agreement: one unshuffled epoch from zero on each side.
        config = _config(size, shuffle=False)
        data = prepare(dataset, config)
        X, Y = data.train.X, data.train.Y
        plain = Trainer(data, config).fit(max_epochs=1)
        peer = NativeEpoch(X, Y, size, shuffle=False)
        peer()
        theta = torch.cat([plain.W, plain.b[None]])
        theta_peer = torch.cat([peer.W_t.detach().T, peer.b.detach()[None]])
        checks = [
            Check(
                "[W; b] after one unshuffled epoch from 0, ‖Δ‖/‖θ‖",
                relative_difference(theta, theta_peer),
                rounding_tolerance(q),
                "float32 rounding of the sums over the epoch's rows",
            )
        ]

        config = _config(size, shuffle=True)
        started = time.perf_counter()
        trainer = Trainer(prepare(dataset, config), config)
        set_up = time.perf_counter() - started
        if trainer.path.name != expected:
            raise RuntimeError(
                f"fig 5 meant to time path {expected!r} at batch {size}; auto chose "
                f"{trainer.path.name!r}"
            )

        def hand(trainer=trainer):
            trainer.fit(max_epochs=trainer.epoch + 1)

        t = interleaved_timings(
            {"handgrad": hand, "native": NativeEpoch(X, Y, size, shuffle=True)},
            repeats=repeats(quick, 9),
            warmup=1,
            min_seconds=0.0,
        )
        hand_rate, peer_rate = q / t["handgrad"].median, q / t["native"].median
        results.append(
            Result.timed(
                "5 mini-batch",
                f"epoch at batch {size}, (q, n, p) = ({q:,}, {N}, {P})",
                t["handgrad"],
                t["native"],
                peer_name="randperm + index_select, autograd, SGD",
                goal=1.0,
                handgrad_side=f"float32, Trainer path {expected!r} (auto), plain descent",
                peer_side="float32, F.linear + ((Ŷ−Y)²).sum()/rows, autograd, torch.optim.SGD",
                includes=(
                    "one epoch: shuffle, per-batch index_select, loss and gradients, update, "
                    "the epoch's loss (handgrad: its per-epoch metrics); not the set-up"
                ),
                checks=checks,
                notes=[
                    f"batch {size}: handgrad {hand_rate:,.0f} samples/s, native "
                    f"{peer_rate:,.0f} samples/s; handgrad's one-off set-up (standardise, "
                    f"statistics, reference) {set_up * 1e3:.0f} ms"
                ],
            )
        )
    return results
