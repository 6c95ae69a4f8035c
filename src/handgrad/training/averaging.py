"""Averaging of a stochastic run's iterates: its model is a weighted mean of them.

At a fixed rate, mini-batch descent ends in a noise ball around the optimum whose size
grows with the rate. A mean of the iterates sits much nearer the optimum than any one
of them (for least squares its error falls as 1/k whatever the conditioning; Bach and
Moulines, 2013), and a mean over every step, not only epoch ends, has q/B times more
samples to cancel the noise with: at batch size 1 that is what makes an epoch count.

The weights grow linearly with the step (the k-th iterate since the last restart gets
weight ∝ k: "polynomial-decay averaging", Shamir and Zhang, 2013). The early iterates,
still far from the optimum, fade as 1/k² instead of 1/k, so the mean need not wait for
the iterate to settle, nor restart to forget the journey; and it moves smoothly, so
the stall rule can read its loss. It restarts (``restart``) when the rate is halved, from
the weights the run restarts from. One update per step: W̄ ← W̄ + (2/(k+1))(W − W̄).
"""

from __future__ import annotations

import torch


class IterateAverage:
    """The running weighted mean of the iterates (W, b); a no-op when ``enabled`` is False."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor, enabled: bool) -> None:
        self.enabled = enabled
        self.W, self.b = W.clone(), b.clone()
        self.count = 0

    def update(self, W: torch.Tensor, b: torch.Tensor) -> None:
        """Add the iterate after one more step."""
        self.count += 1
        weight = 2.0 / (self.count + 1)
        self.W.lerp_(W, weight)
        self.b.lerp_(b, weight)

    def weights(self, W: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's weights: the mean when there is one, else the iterate (W, b)."""
        return (self.W, self.b) if self.enabled and self.count else (W, b)

    def restart(self) -> None:
        """Forget the steps so far: the next update starts a new mean."""
        self.count = 0

    def state_dict(self) -> dict:
        return {"W": self.W.clone(), "b": self.b.clone(), "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.W.copy_(state["W"])
        self.b.copy_(state["b"])
        self.count = state["count"]
