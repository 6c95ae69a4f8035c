"""Memory of processes, from Linux's ``/proc``: one field, and the peak of a process tree.

``kib`` reads a field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``). ``run_sampled``
runs a command while a thread sums the ``VmRSS`` of its whole tree (a run's figure
helper, Spark's JVM) every ``SAMPLE_SECONDS``: the tree's peak, which no one process's
``VmHWM`` gives.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time

SAMPLE_SECONDS = 0.05


def kib(field: str, pid: int | str = "self") -> int:
    """A ``/proc/PID/status`` field in KiB (``VmRSS``, ``VmHWM``); RuntimeError if absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def tree(root: int) -> list[int]:
    """``root`` and every live descendant, from the parent pids of ``/proc/*/stat``."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    # pid (comm) state ppid ...: comm may hold spaces, so split after ')'
                    parents[int(name)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


class TreePeak(threading.Thread):
    """Samples a process tree every ``SAMPLE_SECONDS``: the peak of its summed ``VmRSS``,
    and each process's last ``VmHWM``."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.hwm, self.done = pid, 0, {}, threading.Event()

    def sample(self) -> None:
        total = 0
        for pid in tree(self.pid):
            try:  # a process may end between the listing and the read
                total += kib("VmRSS", pid) * 1024
                self.hwm[pid] = kib("VmHWM", pid) * 1024
            except (OSError, RuntimeError):
                pass
        self.peak = max(self.peak, total)

    def run(self) -> None:
        while not self.done.wait(SAMPLE_SECONDS):
            self.sample()


def run_sampled(command: list[str], cwd: str) -> dict:
    """Run ``command``: its exit code, output, wall seconds and its tree's peak RSS."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = TreePeak(process.pid)
    sampler.start()
    out, err = process.communicate()
    seconds = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    return {
        "returncode": process.returncode,
        "stdout": out.decode(),
        "stderr": err.decode(),
        "seconds": seconds,
        "tree_peak_bytes": sampler.peak,
        "hwm_sum_bytes": sum(sampler.hwm.values()),
        "processes": len(sampler.hwm),
    }
