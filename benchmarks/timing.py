"""Timing and bookkeeping shared by the figure modules.

Every figure times handgrad and its peer in the same run, interleaved round by round
(candidate, peer, candidate, ...), so that drifts of a shared, noisy machine hit both
alike; it reports medians after a warm-up. Work is float32 on the CPU, with as many
torch threads as the machine gives (``torch.get_num_threads()`` is recorded).
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch


@dataclass
class Result:
    """One row of the table: a measured handgrad figure against its peer.

    ``ratio`` is always handgrad / peer, so smaller is better and every goal reads
    ``ratio <= goal``; a goal of "2.5x faster" is stored as 0.4.
    """

    figure: str
    case: str
    handgrad: float  # seconds, or bytes when unit == "bytes"
    peer: float
    peer_name: str
    goal: float | None  # met when ratio <= goal; None: reported, no goal
    unit: str = "s"
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.handgrad / self.peer

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.ratio <= self.goal

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


def _time_once(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def calls_per_sample(fn: Callable[[], object], min_seconds: float) -> int:
    """How many back-to-back calls make one sample last at least ``min_seconds``."""
    number = 1
    while _time_once(fn, number) * number < min_seconds and number < 1 << 20:
        number *= 2
    return number


def interleaved_medians(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 2,
    min_seconds: float = 0.005,
) -> dict[str, float]:
    """Median seconds per call of each function, timed in interleaved rounds.

    Parameters
    ----------
    fns : dict of name -> callable
        The candidate and its peers; each is called with no argument.
    repeats : int
        Rounds; each round times every function once, the order rotating by round.
    warmup : int, default=2
        Untimed calls of each function first (allocator, thread pools, caches).
    min_seconds : float, default=0.005
        Fast functions are called back to back until one sample lasts this long, so
        that the timer's resolution and call jitter stay small against it.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    number = max(calls_per_sample(fn, min_seconds) for fn in fns.values())
    names = list(fns)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(_time_once(fns[name], number))
    return {name: statistics.median(s) for name, s in samples.items()}


def cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What the numbers were measured on."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        # Other processes on a shared machine slow both sides, not always alike.
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
