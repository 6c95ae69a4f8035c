"""Draw a run's figures in a helper process started when the run starts.

Importing matplotlib and drawing two figures cost about half as long as importing torch:
done after training, in line, that was a third of `handgrad train --dataset diabetes`.
The helper imports matplotlib on another core while this process imports torch and
trains, then waits on its standard input for the figures' data (JSON) and draws them.
If the helper cannot start or fails, the figures are drawn here instead, so an error
shows as it would without the helper, and no figure is ever missing.

The helper runs in a session of its own, so that Ctrl-C at the terminal reaches only
this process (which finishes the epoch and then sends the figures); if this process
dies, the helper reads the end of its input and exits without drawing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


class Painter:
    """``with Painter() as painter: ... painter.draw(job) ... painter.finish()``."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.job: dict | None = None

    def __enter__(self) -> Painter:
        # The helper imports this very handgrad, wherever it was imported from.
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "handgrad.runs.painter"],
                env=os.environ | {"PYTHONPATH": path},
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError:
            self.process = None
        return self

    def draw(self, job: dict) -> None:
        """Hand the figures to the helper (see ``figures.draw`` for ``job``)."""
        self.job = job
        if self.process is not None:
            try:
                self.process.stdin.write(json.dumps(job).encode())
                self.process.stdin.close()
                return
            except OSError:  # the helper is gone: draw here
                self._stop()
        self._draw_here()

    def finish(self) -> None:
        """Wait until the figures are on disk; draw here what the helper did not."""
        if self.process is None:
            return
        code = self._stop()
        if code != 0 and self.job is not None:
            self._draw_here()

    def __exit__(self, *exc_info) -> None:
        self._stop()  # after an error, or a run that never got to its figures

    def _stop(self) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        if not process.stdin.closed:
            # No job was sent (a bad file, say): stop the helper rather than wait for
            # its import, so that the error shows at once.
            process.kill()
            process.stdin.close()
        return process.wait()

    def _draw_here(self) -> None:
        from handgrad.runs import figures

        figures.draw(self.job)


def _helper() -> None:
    from handgrad.runs import figures  # the slow import, while the parent trains

    text = sys.stdin.read()
    if text:
        figures.draw(json.loads(text))


if __name__ == "__main__":
    _helper()
