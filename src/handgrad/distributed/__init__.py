"""Data-parallel training under ``torchrun``: who this process is, and how partial sums meet.

- ``world``: the ranks, found from torchrun's environment; the process group (gloo on the
  CPU, NCCL on CUDA) with a bounded timeout; each rank's share of the cores.
- ``reduce``: the one place where ranks meet, adding partial sums in one all-reduce of
  one flat float64 buffer, chunk by chunk in chunk order under ``--deterministic``, and
  carrying each rank's failure to every other.
- ``sharded``: the statistics and the gradient sums of a split, chunk by chunk, each
  rank over its own chunks.

Without torchrun nothing here runs: the world is one rank and the trainer sums locally.
"""

from handgrad.distributed.reduce import PeerFailedError, Reducer
from handgrad.distributed.world import World, current, start

__all__ = ["PeerFailedError", "Reducer", "World", "current", "start"]
