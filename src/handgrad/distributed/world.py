"""The ranks of a torchrun job, their process group, and each rank's share of the cores.

``torchrun`` starts one process per rank and tells each who it is through environment
variables: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE`` and the
rendezvous point ``MASTER_ADDR``/``MASTER_PORT``. Ray Train's ``TorchTrainer`` and
Spark's ``TorchDistributor`` set the same ones, so one detection serves all three.
"""

from __future__ import annotations

import atexit
import datetime
import math
import os
import sys
from dataclasses import dataclass

from handgrad.errors import UserError

# Seconds a rank waits for the others (at the rendezvous, in a collective) before it
# gives up: a peer that died or hangs stops the job within this bound instead of never.
# A statistics pass over a rank's chunks happens before its first collective, so the
# bound must cover the slowest rank's pass; HANDGRAD_DIST_TIMEOUT sets it.
DEFAULT_TIMEOUT_S = 600.0
TIMEOUT_VARIABLE = "HANDGRAD_DIST_TIMEOUT"


@dataclass(frozen=True)
class World:
    """This process's place among the ranks; one rank of one when not under torchrun."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    backend: str | None = None  # "gloo" or "nccl" once the process group is up

    @property
    def is_writer(self) -> bool:
        """Rank 0 alone writes the run directory, TensorBoard, the figures, the model."""
        return self.rank == 0

    def owns(self, chunk: int) -> bool:
        """Chunk ``chunk`` is read and summed by rank chunk mod world size."""
        return chunk % self.size == self.rank

    @property
    def device(self):
        """Where the buffers of collectives live (a torch.device): NCCL only reduces CUDA
        tensors."""
        import torch

        if self.backend == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


_current = World()
_thread_limits = None  # threadpoolctl's limits, held for the life of the process


def current() -> World:
    """The world started by ``start`` (one rank of one before, or without torchrun)."""
    return _current


def from_environment(env=None) -> World | None:
    """The world torchrun describes in ``env`` (default ``os.environ``), or None."""
    env = os.environ if env is None else env
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return None
    size = int(env["WORLD_SIZE"])
    return World(
        rank=int(env["RANK"]),
        size=size,
        local_rank=int(env.get("LOCAL_RANK", 0)),
        local_size=int(env.get("LOCAL_WORLD_SIZE", size)),
    )


def timeout_seconds(env=None) -> float:
    env = os.environ if env is None else env
    value = env.get(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT_S)
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not seconds > 0:
        raise UserError(f"{TIMEOUT_VARIABLE} must be a number of seconds above 0; got {value!r}.")
    return seconds


def start(world: World | None = None, init_method: str = "env://", timeout: float | None = None):
    """Join the process group of ``world`` (default: torchrun's) and take this rank's
    share of the cores. Returns the world; one rank of one when there is nothing to join.

    The backend is NCCL when each local rank has a GPU, gloo otherwise. A world of one
    rank joins no group: it has no one to wait for.
    """
    global _current
    if world is None and "torch.distributed" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return _adopt()  # Ray Train's TorchTrainer made the group before calling us
    world = world or from_environment()
    if world is None:
        return _current  # not under torchrun: torch is not even imported here
    import torch
    import torch.distributed as dist

    set_thread_share(world.local_size)
    if world.size > 1:
        # NCCL wants a GPU of its own per rank; with fewer GPUs than local ranks, gloo.
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        backend = "nccl" if gpus >= world.local_size else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(world.local_rank)
        seconds = timeout_seconds() if timeout is None else timeout
        dist.init_process_group(
            backend,
            init_method=init_method,
            rank=world.rank,
            world_size=world.size,
            timeout=datetime.timedelta(seconds=seconds),
        )
        atexit.register(stop)
        world = World(world.rank, world.size, world.local_rank, world.local_size, backend)
    _current = world
    return world


def _adopt() -> World:
    """The world of a process group someone else started (and will destroy)."""
    global _current
    import torch.distributed as dist

    size = dist.get_world_size()
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", size))
    set_thread_share(local_size)
    rank, local_rank = dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0))
    _current = World(rank, size, local_rank, local_size, dist.get_backend())
    return _current


def stop() -> None:
    """Leave the process group (at exit): no collective runs after this."""
    global _current
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _current = World()


def cores() -> int:
    """The cores this process may run on (its affinity), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def set_thread_share(local_size: int) -> int:
    """torch's and the BLAS's threads = cores ÷ processes on this machine (at least 1).

    Left at their defaults, each of two ranks on two cores ran two BLAS threads, and the
    four fought over the cores: about 10× slower than one thread each.
    """
    return set_threads(max(1, cores() // max(1, local_size)))


def set_threads(count: int) -> int:
    """``count`` threads for torch and the BLAS, for the rest of the process."""
    global _thread_limits
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(count)
    _thread_limits = threadpool_limits(limits=count)
    return count
