"""Timing and bookkeeping shared by the figure modules.

Every figure times handgrad and its peer in the same run, interleaved round by round
(candidate, peer, candidate, ...), so that drifts of a shared, noisy machine hit both
alike; it reports the median of at least ``MIN_REPEATS`` rounds with their min and max.
Thread counts are pinned once by ``pin_threads`` (torch's, and the BLAS/OpenMP pools
NumPy and scikit-learn use) and recorded in ``machine()``.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

# A full run takes the median of at least this many interleaved rounds; --quick fewer.
MIN_REPEATS = 7
QUICK_REPEATS = 3


def repeats(quick: bool, full: int = 9) -> int:
    """Rounds for a figure: ``full`` (at least ``MIN_REPEATS``), or a few for --quick."""
    return QUICK_REPEATS if quick else max(full, MIN_REPEATS)


@dataclass
class Timing:
    """Seconds per call (or bytes): the median of ``repeats`` samples, with their range."""

    median: float
    low: float
    high: float
    repeats: int

    @classmethod
    def of(cls, samples: list[float]) -> Timing:
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))


@dataclass
class Check:
    """One agreement check between the two sides: ``value`` must be ≤ ``tolerance``.

    ``what`` says what was compared and how ("relative difference of ∂W, ‖Δ‖/‖∂W‖");
    ``why`` where the tolerance comes from (float32 rounding, the stated gap, ...).
    """

    what: str
    value: float
    tolerance: float
    why: str = ""

    @property
    def ok(self) -> bool:
        return math.isfinite(self.value) and self.value <= self.tolerance


@dataclass
class Result:
    """One row of the table: a measured handgrad figure against its peer.

    ``ratio`` is always handgrad / peer, so smaller is better and every goal reads
    ``ratio <= goal``; a goal of "2.5x faster" is stored as 0.4. The first eight fields
    are the original contract; the rest say what was measured, and ``checks`` are the
    agreement checks that ``benchmarks.run`` enforces (any failed check fails the run).
    """

    figure: str
    case: str
    handgrad: float  # seconds, or bytes when unit == "bytes"
    peer: float
    peer_name: str
    goal: float | None  # met when ratio <= goal; None: reported, no goal
    unit: str = "s"
    notes: list[str] = field(default_factory=list)
    # What each side is: dtype and path ("float32, fused loss_and_grads, no graph").
    handgrad_side: str = ""
    peer_side: str = ""
    includes: str = ""  # what the timing includes (and excludes), for both sides
    checks: list[Check] = field(default_factory=list)
    handgrad_range: tuple[float, float] | None = None  # (min, max) over the rounds
    peer_range: tuple[float, float] | None = None
    repeats: int | None = None
    load: float | None = None  # highest 1-minute load average seen, set by the harness
    loaded: bool | None = None  # load above the core count, set by the harness

    @classmethod
    def timed(cls, figure: str, case: str, hand: Timing, peer: Timing, **fields) -> Result:
        """A result from two ``Timing``s: medians, ranges and the number of rounds."""
        return cls(
            figure=figure,
            case=case,
            handgrad=hand.median,
            peer=peer.median,
            handgrad_range=(hand.low, hand.high),
            peer_range=(peer.low, peer.high),
            repeats=min(hand.repeats, peer.repeats),
            **fields,
        )

    @property
    def ratio(self) -> float:
        return self.handgrad / self.peer

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.ratio <= self.goal

    @property
    def failed_checks(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def to_dict(self) -> dict:
        out = asdict(self)
        for c, check in zip(out["checks"], self.checks, strict=True):
            c["ok"] = check.ok
        return {**out, "ratio": self.ratio, "met": self.met}


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


def interleaved_timings(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 2,
    min_seconds: float = 0.005,
) -> dict[str, Timing]:
    """Seconds per call of each function, timed in interleaved rounds.

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
        that the timer's resolution and call jitter stay small against it. Every
        function gets the same number of calls per sample.
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
    return {name: Timing.of(s) for name, s in samples.items()}


def interleaved_medians(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 2,
    min_seconds: float = 0.005,
) -> dict[str, float]:
    """The medians of ``interleaved_timings`` alone (the original interface)."""
    timings = interleaved_timings(fns, repeats, warmup, min_seconds)
    return {name: t.median for name, t in timings.items()}


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖ in float64 (‖a − b‖ when b is 0): one number per comparison."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    scale = float(b.norm())
    return float((a - b).norm()) / (scale if scale > 0 else 1.0)


def rounding_tolerance(terms: int, dtype: torch.dtype = torch.float32) -> float:
    """Tolerance on ‖a − b‖/‖b‖ of two sums of ``terms`` rounded products in ``dtype``.

    Blocked and pairwise sums err by about √terms · u per side (u the unit roundoff,
    2⁻²⁴ in float32), with no systematic sign; 32 · √terms · u covers both sides with
    a margin of 16 and stays far below any real bug (a dropped block, a factor 2).
    """
    u = torch.finfo(dtype).eps / 2
    return 32 * math.sqrt(max(terms, 1)) * u


def pin_threads(threads: int | None = None) -> int:
    """Pin torch's intra-op threads and the BLAS/OpenMP pools to ``threads`` (default:
    every core), for the whole process; returns the count. Subprocesses get it through
    the usual environment variables."""
    from threadpoolctl import threadpool_limits

    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    return threads


def thread_report() -> dict:
    """Thread counts as they are: torch's pools, and each BLAS/OpenMP library's."""
    from threadpoolctl import threadpool_info

    return {
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "libraries": sorted(
            {
                f"{i['internal_api']} ({i['user_api']}): {i['num_threads']}"
                for i in threadpool_info()
            }
        ),
    }


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


def load_average() -> float | None:
    """The 1-minute load average (runnable threads, ours included), where there is one."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def machine() -> dict:
    """What the numbers were measured on."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        **thread_report(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        # Other processes on a shared machine slow both sides, not always alike.
        "load_average_1min": load_average(),
    }
