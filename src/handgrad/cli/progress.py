"""Progress of a training run: a live bar on a terminal, plain lines elsewhere, or nothing."""

from __future__ import annotations

import math
import sys

# Epochs between updates of the bar's loss and of its estimated total.
EVERY = 25


def expected_epochs(gaps: list[float], epoch: int, tol: float, max_epochs: int) -> int | None:
    """The epoch at which the run will most likely stop (at most ``max_epochs``), or None
    when the gaps do not tell.

    ``gaps`` are the train MSE's relative gaps to the closed-form optimum, epoch by
    epoch. Descent on a quadratic loss shrinks the gap by a roughly constant factor ρ per
    epoch; with momentum the gap may swing, but its envelope shrinks so. The largest gap
    of each of the last two windows gives ρ, and with it the epoch at which the gap falls
    below ``tol``: the trainer's rule for "converged". Without a clear decay (noisy
    mini-batches, a gap at its rounding floor) the gaps do not tell.
    """
    if len(gaps) < 2 * EVERY or tol <= 0:
        return None
    older, recent = max(gaps[-2 * EVERY : -EVERY]), max(gaps[-EVERY:])
    if not (math.isfinite(older) and math.isfinite(recent) and 0 < recent < older):
        return None
    rate = (recent / older) ** (1 / EVERY)  # ρ, the envelope's decay per epoch
    left = math.log(tol / gaps[-1]) / math.log(rate) if gaps[-1] > tol else 0
    return min(max_epochs, epoch + max(0, math.ceil(left)))


class Progress:
    """Called once per epoch with the trainer.

    On a terminal, a tqdm bar with the live loss, whose total is the epoch at which the
    run is expected to stop (not the epoch limit, which a converging run never reaches);
    when stderr is not a terminal (a log file, CI), a plain line at epochs 1, 10, 100,
    1000 and every 1000 after; nothing with ``quiet``.
    """

    def __init__(self, trainer, start: int, quiet: bool, file=None) -> None:
        self.quiet = quiet
        self.tol, self.max_epochs = trainer.plan.tol, trainer.max_epochs
        # On the validation loss, the stop is not where the train gap says.
        self.estimate = not trainer.config.early_stopping
        self.file = sys.stderr if file is None else file
        self.bar = None
        if not quiet and self.file.isatty():
            from tqdm import tqdm

            total = max(self.max_epochs, start)
            self.bar = tqdm(total=total, initial=start, unit="epoch", file=self.file)

    def __call__(self, trainer) -> None:
        if self.quiet:
            return
        epoch, losses = trainer.epoch, trainer.history["train_mse"]
        if self.bar is not None:
            self.bar.update(epoch - self.bar.n)
            if epoch % EVERY == 0 and self.estimate:
                gaps = [trainer.gap(loss) for loss in losses[-2 * EVERY :]]
                expected = expected_epochs(gaps, epoch, self.tol, self.max_epochs)
                if expected is not None:  # else the last estimate stands
                    self.bar.total = max(expected, epoch + 1)
            if epoch % EVERY == 0:
                self.bar.set_postfix_str(f"train MSE {losses[-1]:.6g}", refresh=False)
        elif epoch in (1, 10, 100) or epoch % 1000 == 0:
            print(f"epoch {epoch:>6d}  train MSE {losses[-1]:.6g}", file=self.file, flush=True)

    def close(self, trainer=None) -> None:
        """End the bar; a run that stopped by itself ends it at 100 %, at its last epoch."""
        if self.bar is None:
            return
        stopped = ("converged", "tol", "early_stopping", "max_epochs")
        if trainer is not None and trainer.stop_reason in stopped:
            self.bar.update(trainer.epoch - self.bar.n)
            self.bar.total = trainer.epoch
            self.bar.refresh()
        self.bar.close()
