"""Progress of a training run: a live bar on a terminal, plain lines elsewhere, or nothing."""

from __future__ import annotations

import math
import sys

# Epochs between updates of the bar's loss and of its estimated total.
EVERY = 25


def expected_epochs(losses: list[float], epoch: int, config) -> int | None:
    """The epoch at which the run will most likely stop (at most ``config.max_epochs``),
    or None when the losses do not tell.

    Full-batch descent on a quadratic loss improves it by a roughly constant factor ρ per
    epoch, so the improvement over the last window, compared with the one before, gives
    ρ, and with it the epoch from which ``n_iter_no_change`` epochs in a row improve the
    loss by less than ``tol`` times the loss: the stopping rule. Without a clear decay
    (noisy mini-batches, a loss at its rounding floor, early stopping on the validation
    loss) the losses do not tell.
    """
    if config.early_stopping or len(losses) < 2 * EVERY + 1 or config.tol <= 0:
        return None
    older = losses[-2 * EVERY - 1] - losses[-EVERY - 1]
    recent = losses[-EVERY - 1] - losses[-1]
    if not (math.isfinite(older) and math.isfinite(recent) and 0 < recent < older):
        return None
    rate = (recent / older) ** (1 / EVERY)  # ρ, the improvement's decay per epoch
    per_epoch = recent * (1 - rate) / (1 - rate**EVERY)  # the latest epoch's improvement
    # k epochs from now, the next n_iter_no_change epochs improve the loss by
    # per_epoch ρ^k (ρ + ρ² + ... + ρ^N); the run stops once that is below tol * loss.
    patience = config.n_iter_no_change
    window = per_epoch * rate * (1 - rate**patience) / (1 - rate)
    threshold = config.tol * abs(losses[-1])
    left = math.log(threshold / window) / math.log(rate) if window > threshold else 0
    return min(config.max_epochs, epoch + math.ceil(left) + patience)


class Progress:
    """Called once per epoch with the trainer.

    On a terminal, a tqdm bar with the live loss, whose total is the epoch at which the
    run is expected to stop (not the epoch limit, which a converging run never reaches);
    when stderr is not a terminal (a log file, CI), a plain line at epochs 1, 10, 100,
    1000 and every 1000 after; nothing with ``quiet``.
    """

    def __init__(self, config, start: int, quiet: bool, file=None) -> None:
        self.config, self.quiet = config, quiet
        self.file = sys.stderr if file is None else file
        self.bar = None
        if not quiet and self.file.isatty():
            from tqdm import tqdm

            total = max(config.max_epochs, start)
            self.bar = tqdm(total=total, initial=start, unit="epoch", file=self.file)

    def __call__(self, trainer) -> None:
        if self.quiet:
            return
        epoch, losses = trainer.epoch, trainer.history["train_mse"]
        if self.bar is not None:
            self.bar.update(epoch - self.bar.n)
            if epoch % EVERY == 0:
                expected = expected_epochs(losses, epoch, self.config)
                if expected is not None:  # else the last estimate stands
                    self.bar.total = max(expected, epoch + 1)
                self.bar.set_postfix_str(f"train MSE {losses[-1]:.6g}", refresh=False)
        elif epoch in (1, 10, 100) or epoch % 1000 == 0:
            print(f"epoch {epoch:>6d}  train MSE {losses[-1]:.6g}", file=self.file, flush=True)

    def close(self, trainer=None) -> None:
        """End the bar; a run that stopped by itself ends it at 100 %, at its last epoch."""
        if self.bar is None:
            return
        if trainer is not None and trainer.stop_reason in ("tol", "early_stopping", "max_epochs"):
            self.bar.update(trainer.epoch - self.bar.n)
            self.bar.total = trainer.epoch
            self.bar.refresh()
        self.bar.close()
