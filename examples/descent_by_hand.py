"""The classic lab: gradient descent on a random linear problem, chained by hand.

X (50, 13) and Y (50, 3) are random; W and b start random too. Each of 100 iterations
runs Linear forward, MSE forward, MSE backward with 1, Linear backward, then the step
w <- w - 0.05 * grad. No autograd graph is built: the gradients come from the
hand-written backward passes through ``handgrad.Context``. The loss is logged to
TensorBoard as ``Loss/train``; open it with ``tensorboard --logdir runs/``.

Run: ``python examples/descent_by_hand.py [--logdir DIR]``
"""

from __future__ import annotations

import argparse
from datetime import datetime

import torch
from torch.utils.tensorboard import SummaryWriter

import handgrad
from handgrad import MSE, Linear


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    parser.add_argument("--logdir", default=f"runs/descent-by-hand-{stamp}")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    args = parser.parse_args()

    torch.manual_seed(0)
    X = torch.randn(50, 13, dtype=torch.float64)
    Y = torch.randn(50, 3, dtype=torch.float64)
    W = torch.randn(13, 3, dtype=torch.float64)
    b = torch.randn(3, dtype=torch.float64)

    writer = SummaryWriter(args.logdir)
    for step in range(args.iterations):
        # 1. forward, keeping each Function's context
        Y_hat, linear_ctx = handgrad.forward(Linear, X, W, b, needs_input_grad=(False, True, True))
        loss, mse_ctx = handgrad.forward(MSE, Y_hat, Y, needs_input_grad=(True, False))
        # 2. backward, in reverse order, seeding dC/dC = 1
        grad_Y_hat, _ = mse_ctx.backward()
        _, grad_W, grad_b = linear_ctx.backward(grad_Y_hat)
        # 3. the gradient step
        W -= args.learning_rate * grad_W
        b -= args.learning_rate * grad_b

        writer.add_scalar("Loss/train", loss.item(), step)
        if step % 10 == 0 or step == args.iterations - 1:
            print(f"iteration {step:3d}  loss {loss.item():10.4f}")
    writer.close()
    print(f"TensorBoard log: tensorboard --logdir {args.logdir}")


if __name__ == "__main__":
    main()
