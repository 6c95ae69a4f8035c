"""Progress of a training run: a live bar on a terminal, plain lines elsewhere, or nothing."""

from __future__ import annotations

import sys


class Progress:
    """Called once per epoch with the trainer.

    On a terminal, a tqdm bar with the live loss; when stderr is not a terminal (a log
    file, CI), a plain line at epochs 1, 10, 100, 1000 and every 1000 after; nothing
    with ``quiet``.
    """

    def __init__(self, total: int, start: int, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, unit="epoch", file=sys.stderr)

    def __call__(self, trainer) -> None:
        if self.quiet:
            return
        epoch, loss = trainer.epoch, trainer.history["train_mse"][-1]
        if self.bar is not None:
            self.bar.update(epoch - self.bar.n)
            if epoch % 25 == 0:
                self.bar.set_postfix_str(f"train MSE {loss:.6g}", refresh=False)
        elif epoch in (1, 10, 100) or epoch % 1000 == 0:
            print(f"epoch {epoch:>6d}  train MSE {loss:.6g}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
