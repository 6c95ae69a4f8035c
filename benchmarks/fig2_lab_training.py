"""Figure 2, lab-size training: handgrad's training core against a plain PyTorch loop.

The lab's problem, synthetic (q, n, p) = (50, 13, 3), standardised once by
``prepare`` into float32 tensors that both sides then share; 2000 full-batch updates at
lr = 0.05 (200 with --quick), no stopping rule (tol 0).

- handgrad: ``Trainer(data, config).fit()``, the core that ``handgrad train`` and
  ``GDRegressor`` run. The timing includes the trainer's whole set-up (the statistics
  S = X̃ᵀX̃ and T = X̃ᵀY, the eigenvalues, the closed-form reference) and every epoch's
  bookkeeping (train MSE and R², rate, gradient norm). Two rows: ``path="auto"``, which
  picks ``stats`` (S and T in float64, parameters float32), and ``path="chained"``,
  ``grad="manual"``: the hand-written Linear and MSE backward passes in float32, the
  same arithmetic as the peer.
- Peer: W, b with requires_grad on the same float32 data, ``((XW + b − Y)²).sum() / q``,
  ``loss.backward()``, ``torch.optim.SGD(lr=0.05).step()``, ``zero_grad()``, and the
  epoch's loss read back with ``.item()`` (a loop logs its loss, as handgrad does).

Agreement: the final weights of each side, to float32 rounding accumulated over the
updates. Goal: ≥ 2x faster (ratio ≤ 0.5).
"""

from __future__ import annotations

import torch

from benchmarks.timing import Check, Result, interleaved_timings, relative_difference, repeats
from handgrad.config import TrainConfig, check
from handgrad.data.datasets import synthetic
from handgrad.training import Trainer, prepare

Q, N, P, LEARNING_RATE = 50, 13, 3, 0.05
FULL_EPOCHS, QUICK_EPOCHS = 2000, 200
# Float32 iterates of a contracting iteration: each update rounds at u = 2⁻²⁴ ≈ 6e-8
# relative, and the contraction keeps the accumulated error within a small multiple of
# u·κ (κ of this problem's S is below 10). 1e-4 is ~1700 u: rounding, never a wrong step.
WEIGHTS_TOLERANCE = 1e-4


def _config(path: str, epochs: int) -> TrainConfig:
    return check(
        TrainConfig(
            test_fraction=0.0,
            device="cpu",
            dtype="float32",
            learning_rate=LEARNING_RATE,
            max_epochs=epochs,
            tol=0.0,
            n_iter_no_change=epochs + 1,
            path=path,
            grad="manual",
        )
    )


def _native(X, Y, epochs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The peer: ``epochs`` autograd updates; returns the final W (n, p) and b (p,)."""
    W = torch.zeros(N, P, requires_grad=True)
    b = torch.zeros(P, requires_grad=True)
    optimizer = torch.optim.SGD([W, b], lr=LEARNING_RATE)
    losses = []
    for _ in range(epochs):
        loss = ((X @ W + b - Y) ** 2).sum() / Q
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return W.detach(), b.detach()


def run(quick: bool) -> list[Result]:
    epochs = QUICK_EPOCHS if quick else FULL_EPOCHS
    dataset = synthetic(samples=Q, features=N, targets=P)[0]
    data = prepare(dataset, _config("auto", epochs))
    X, Y = data.train.X, data.train.Y
    assert X.dtype == torch.float32, X.dtype
    results = []
    for path, expected in (("auto", "stats"), ("chained", "chained")):
        config = _config(path, epochs)
        trained = {}

        def hand(config=config, trained=trained):
            trained["trainer"] = Trainer(data, config).fit()

        def native(trained=trained):
            trained["native"] = _native(X, Y, epochs)

        t = interleaved_timings(
            {"handgrad": hand, "native": native}, repeats(quick), warmup=1, min_seconds=0.0
        )
        trainer = trained["trainer"]
        if trainer.path.name != expected or trainer.epoch != epochs:
            raise RuntimeError(
                f"fig 2 meant to time path {expected!r} for {epochs} epochs; the trainer "
                f"ran {trainer.path.name!r} for {trainer.epoch}"
            )
        speed_up = t["native"].median / t["handgrad"].median
        W_native, b_native = trained["native"]
        theta = torch.cat([trainer.W, trainer.b[None]])
        theta_native = torch.cat([W_native, b_native[None]])
        why = "float32 rounding accumulated over the contracting updates (WEIGHTS_TOLERANCE)"
        side = {
            "stats": "float32 parameters; stats path: S, T, gradients in float64 (NumPy)",
            "chained": "float32; chained path, Linear and MSE backward by hand, no graph",
        }[expected]
        results.append(
            Result.timed(
                "2 lab training",
                f"Trainer ({expected}) vs PyTorch loop, (q, n, p) = ({Q}, {N}, {P}), "
                f"{epochs} updates",
                t["handgrad"],
                t["native"],
                peer_name="autograd loop, SGD(lr=0.05)",
                goal=0.5,
                handgrad_side=f"Trainer(path={path!r}): {side}",
                peer_side="float32, (XW + b − Y)² sum / q, autograd, torch.optim.SGD",
                includes=(
                    "handgrad: Trainer set-up (S, T, eigenvalues, reference) and the "
                    "epochs with their bookkeeping; peer: the epochs with loss.item() each; "
                    "both start from the same standardised float32 tensors"
                ),
                checks=[
                    Check(
                        "final [W; b], ‖Δ‖/‖θ‖",
                        relative_difference(theta, theta_native),
                        WEIGHTS_TOLERANCE,
                        why,
                    ),
                ],
                notes=[f"speed-up over the PyTorch loop: {speed_up:.2f}x"],
            )
        )
    return results
