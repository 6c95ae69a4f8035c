"""Polyak–Ruppert averaging of a stochastic run's iterates.

At a fixed rate, mini-batch descent ends in a noise ball around the optimum whose size
is proportional to the rate. The mean of the iterates sits much nearer the optimum
than any one of them (for least squares, its error falls as 1/k whatever the
conditioning; Bach and Moulines, 2013), so a stochastic run's model is the mean of its
epoch-end iterates since the rate last changed. Epoch ends, not every step: a whole
epoch apart, they are nearly independent draws from the ball, and averaging them costs
nothing per step.

Averaging starts only once the iterate has stalled (``start``): before that the iterate
is still travelling, and a mean that includes the journey lags behind it (its error
falls as 1/k instead of geometrically). It stops when the rate is halved (``stop``),
which restarts the descent from the best weights seen.
"""

from __future__ import annotations

import torch


class IterateAverage:
    """The running mean of the epoch-end (W, b); a no-op when ``enabled`` is False."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor, enabled: bool) -> None:
        self.enabled = enabled
        self.W, self.b = W.clone(), b.clone()
        self.count = 0
        self.active = False

    @torch.no_grad()
    def update(self, W: torch.Tensor, b: torch.Tensor) -> None:
        if not self.active:
            return
        self.count += 1
        self.W.add_(W - self.W, alpha=1.0 / self.count)
        self.b.add_(b - self.b, alpha=1.0 / self.count)

    def weights(self, W: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's weights: the mean when there is one, else the iterate (W, b)."""
        return (self.W, self.b) if self.active and self.count else (W, b)

    def start(self) -> bool:
        """Begin averaging (from the next epoch end); False if it is off or already on."""
        if not self.enabled or self.active:
            return False
        self.active, self.count = True, 0
        return True

    def stop(self) -> None:
        self.active, self.count = False, 0

    def state_dict(self) -> dict:
        return {"W": self.W.clone(), "b": self.b.clone(), "count": self.count, "on": self.active}

    def load_state_dict(self, state: dict) -> None:
        self.W.copy_(state["W"])
        self.b.copy_(state["b"])
        self.count, self.active = state["count"], state["on"]
