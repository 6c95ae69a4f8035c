"""What a run's defaults resolve to (optimizer, rate, momentum, schedule, tolerance), and
the learning-rate schedules, stepped once per epoch.

The defaults, and why (README, "Defaults per batch size"):

- **Full batch.** The gradient is exact and the loss a quadratic whose Hessian's extreme
  eigenvalues L and μ the trainer knows, so the default optimizer is Polyak's heavy ball
  with its optimal parameters: O(√κ) epochs, κ = L/μ, where plain descent at 1/L needs
  O(κ). ``gd`` named explicitly stays the lab's update at 1/L; ``sgd`` with momentum β
  gets the largest rate at which every direction still converges at the rate √β.
- **Mini-batch and SGD.** A batch of B rows has more curvature than the whole split: the
  rate is 1/L_B, L_B interpolating between L (B = q) and the largest per-row curvature
  2‖x̃ᵢ‖² (B = 1), the expected smoothness of b-nice sampling (Gower et al., 2019). A
  constant rate ends in a noise ball whose size grows with it; the model is the mean of
  every step's iterate (``averaging.py``), which sits far nearer the optimum than any
  one of them, and the rate is halved (``halve``) only when that mean's loss has set
  no record for a long window: the last resort for a bias the mean cannot remove.
- **Adaptive optimizers** (Adam, ...) take steps of about lr per coordinate whatever the
  gradient's size: they train on standardised targets (weights of order 1), start at
  lr = 0.01, are averaged like the stochastic runs (mini-batch) and halve on a stall,
  since at a fixed rate they circle the optimum at a distance of about lr.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from handgrad.config import TrainConfig
from handgrad.training.optim import ADAPTIVE
from handgrad.training.reference import Reference

ADAPTIVE_RATE = 0.01
HEAVY_BALL_MARGIN = 1.1
DEFAULT_EPOCHS = 20_000
# The window a mini-batch stall is judged over, beyond n_iter_no_change: 180 epochs of
# the 354 training rows of diabetes, where it was measured (below), in rows seen, up to
# 180 epochs: on 2.5M rows an epoch-counted window waited 180 passes of 10-40 s each.
MINI_BATCH_WINDOW = 180
MINI_BATCH_WINDOW_ROWS = 180 * 354
# A whitened run (precondition.py) has no slow direction to wait for, only the noise of
# its mean to outlast: on breast cancer (455 rows), windows of 63,720 / 9,100 / 2,000 rows
# took 1089-2355 / 466-915 / 355-601 epochs at batch 32 (gd, sgd 0.9, adam, seeds 0-1),
# and at batch 1 gd 601 / - / 205 and adam 2985 / - / 522, every run converged.
WHITENED_WINDOW_ROWS = 2000
# The halving schedule gives up (the run counts as stalled) after this many halvings.
MAX_HALVINGS = 20


@dataclass(frozen=True)
class Plan:
    """The resolved optimizer and schedule of a run, and how the rate was chosen."""

    optimizer: str  # "gd", "heavy-ball", or a torch.optim name
    learning_rate: float
    momentum: float
    scheduler: str  # one of config.SCHEDULERS without "auto", or "halve"
    tol: float  # stop once the relative gap to the optimum is below this
    rule: str  # how the rate was chosen, for the summary ("" when given)
    curvature: float  # L_B, the curvature of a batch of the size used
    max_epochs: int
    patience: int  # epochs without a record that make a stall


def batch_curvature(largest: float, max_row_curvature: float, q: int, batch: int) -> float:
    """L_B = q(B − 1)/(B(q − 1))·L + (q − B)/(B(q − 1))·L₁, L₁ = max 2‖x̃ᵢ‖²: the curvature
    a step on B rows drawn without replacement can see, from L (B = q) to L₁ (B = 1)."""
    if batch >= q or q == 1:
        return largest
    return (q * (batch - 1) * largest + (q - batch) * max_row_curvature) / (batch * (q - 1))


def plan(
    config: TrainConfig, reference: Reference, max_row_norm2: float, q: int, whitened=False
) -> Plan:
    """Resolve the "auto" settings of ``config`` for this data (see the module doc).

    ``max_row_norm2`` is max ‖x̃ᵢ‖², x̃ = [x, 1], in the coordinates the steps are taken
    in; ``whitened``: those of ``precondition.py``, where the Hessian is 2I (L = μ = 2).
    """
    full = config.batch_size is None or config.batch_size >= q
    batch = q if full else config.batch_size
    L, mu = reference.largest_eigenvalue, reference.smallest_eigenvalue
    if whitened:
        L = mu = 2.0
    L_B = batch_curvature(L, 2.0 * max_row_norm2, q, batch)
    name, momentum, auto = config.optimizer, config.momentum, config.learning_rate == "auto"
    if name == "auto":
        name = "heavy-ball" if full and auto else "gd"
    if name == "heavy-ball":
        # The optimal parameters put the top direction exactly at the edge of
        # stability: computed for an L a little above the true one, it stays inside
        # in floating point, at a cost of a few per cent in rate.
        L_safe = HEAVY_BALL_MARGIN * L
        root_kappa = math.sqrt(L_safe / mu)
        momentum = ((root_kappa - 1) / (root_kappa + 1)) ** 2
        lr, rule = 4.0 / (math.sqrt(L_safe) + math.sqrt(mu)) ** 2, "heavy ball, 4/(√L+√μ)²"
        rule += f", momentum {momentum:.4g}"
    elif name in ADAPTIVE:
        lr, rule = ADAPTIVE_RATE, f"{ADAPTIVE_RATE:g} on standardised targets"
    elif name == "sgd" and momentum > 0:
        # Heavy ball at a given β: every direction with lr·λ in [(1 − √β)², (1 + √β)²]
        # shrinks by √β per step; full batch takes the top of that range (a margin
        # below it), a mini-batch run the plain rate scaled by (1 − β), the same
        # effective step lr/(1 − β) as plain SGD.
        if full:
            lr, rule = 0.9 * (1 + math.sqrt(momentum)) ** 2 / L, "0.9·(1+√β)²/L"
        else:
            lr, rule = (1 - momentum) / L_B, "(1−β)/L_B"
    elif full:  # plain descent: the step that shrinks the worst direction most
        lr, rule = 2.0 / (L + mu), "2/(L+μ)"
    else:
        lr, rule = 1.0 / L_B, f"1/L_B, B = {batch}"
    if not auto:
        lr, rule = float(config.learning_rate), ""
    scheduler = config.scheduler
    if scheduler == "auto":
        scheduler = "halve" if not full or name in ADAPTIVE else "none"
    tol = config.tol
    if tol is None:
        tol = (1e-10 if config.dtype == "float64" else 1e-7) if full else 1e-4
    # Momentum β makes the loss oscillate with a period of up to about 1/(1 − √β)
    # epochs while it converges: a stall is judged over a window longer than that.
    swing = momentum if full else 0.0
    window = math.ceil(3 / (1 - math.sqrt(swing)))
    if not full:
        # The model of a mini-batch run is the mean of its iterates (averaging.py),
        # whose loss keeps falling, noisily, for as long as the slowest direction
        # drifts: a halving, which slows that drift, is the last resort for the bias
        # a mean cannot remove (a few rows, cycled at a fixed rate), judged over a
        # long window. In a simulation of these rules, the diabetes data at batch 32
        # halved 20 times over windows of 59 epochs and stopped at a gap of 8e-4; over
        # 180, it reached 1e-4 in 724 epochs (the trainer: 318).
        rows = WHITENED_WINDOW_ROWS if whitened else MINI_BATCH_WINDOW_ROWS
        window = min(MINI_BATCH_WINDOW, math.ceil(rows / q))
    # Capped: with β near 1 (κ beyond reach) a stall must still end the run.
    patience = config.n_iter_no_change + min(window, 19 * config.n_iter_no_change)
    return Plan(
        name,
        lr,
        momentum,
        scheduler,
        tol,
        rule,
        L_B,
        _max_epochs(config, lr, mu, momentum),
        patience,
    )


def _max_epochs(config: TrainConfig, lr: float, mu: float, momentum: float) -> int:
    """The epoch limit: as given, else 20,000, or for full-batch descent with a fixed
    step as many as its slowest direction needs to close a gap of 1e3 down to tol
    (the loss shrinks by about exp(−2·lr·μ/(1 − β)) per epoch), up to 200,000:
    full-batch epochs cost O(n²p) on the statistics, and the tol and stall rules stop
    a run long before when it gets there sooner."""
    if config.max_epochs is not None:
        return config.max_epochs
    full = config.batch_size is None
    if not full or config.optimizer in ADAPTIVE or config.scheduler not in ("auto", "none"):
        return DEFAULT_EPOCHS
    tol = config.tol if config.tol else 1e-10
    needed = math.log(1e3 / tol) * (1 - momentum) / (lr * mu)
    return int(min(max(DEFAULT_EPOCHS, math.ceil(needed)), 200_000))


class Schedule:
    """The learning rate by epoch: ``step(epoch, monitored)`` after each epoch sets the
    optimizer's rate. Closed forms (no ``torch.optim.lr_scheduler``, which would need a
    ``torch.optim.Optimizer``): step, exponential, cosine, plateau (on ``monitored``), and
    halve (on the trainer's own stall detector, through ``decay()``).
    """

    def __init__(self, plan: Plan, optimizer, config: TrainConfig) -> None:
        self.name, self.optimizer, self.config = plan.scheduler, optimizer, config
        self.tol, self.max_epochs = plan.tol, plan.max_epochs
        self.initial = optimizer.param_groups[0]["lr"]
        self.state = {"best": math.inf, "bad": 0, "halvings": 0}

    def _set(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self, epoch: int, monitored: float) -> None:
        """Set the rate for the epoch after ``epoch`` (1-based count of epochs done)."""
        name, c, lr0 = self.name, self.config, self.initial
        gamma = c.resolved_gamma
        if name == "step":
            self._set(lr0 * gamma ** (epoch // c.resolved_step_size))
        elif name == "exponential":
            self._set(lr0 * gamma**epoch)
        elif name == "cosine":
            t = min(epoch, self.max_epochs) / self.max_epochs
            self._set(lr0 * (1 + math.cos(math.pi * t)) / 2)
        elif name == "plateau":  # torch's ReduceLROnPlateau, mode "min", relative threshold
            state = self.state
            if monitored < state["best"] * (1 - self.tol):
                state["best"], state["bad"] = monitored, 0
            else:
                state["bad"] += 1
            if state["bad"] > max(1, c.n_iter_no_change // 2):
                self._set(self.optimizer.param_groups[0]["lr"] * gamma)
                state["bad"] = 0

    def decay(self) -> bool:
        """For "halve": halve the rate after a stall; False once it may not any more."""
        if self.name != "halve" or self.state["halvings"] >= MAX_HALVINGS:
            return False
        self.state["halvings"] += 1
        self._set(self.optimizer.param_groups[0]["lr"] / 2)
        return True

    def state_dict(self) -> dict:
        return dict(self.state)

    def load_state_dict(self, state: dict) -> None:
        self.state = dict(state)
