"""What ``handgrad train`` needs under torchrun: the world joined, a reducer, failures
made common, and the writer's state shared.

Rank 0 alone writes (the run directory, TensorBoard, the figures, the model). What it
reads or creates before training, a new run directory or the checkpoint of a run to
resume, it broadcasts once, with its failure if it failed: that is the initial state,
and nothing is broadcast after it. Without torchrun each of these is a plain call.
"""

from __future__ import annotations

from collections.abc import Callable

from handgrad.distributed import world
from handgrad.errors import UserError


def join() -> bool:
    """Join the ranks when under torchrun (or Ray Train, or Spark), taking this rank's
    share of the cores; whether this process is the writer (always, without torchrun)."""
    return world.start().is_writer


def distributed() -> bool:
    return world.current().size > 1 or world.from_environment() is not None


def reducer_for(deterministic: bool):
    """A ``Reducer`` under torchrun (any world size) or with --deterministic; else None,
    and the trainer runs as it always has.

    With --deterministic, torch and the BLAS run one thread per rank: a product on two
    threads may add in another order than on one, and the same bits at any world size
    need the same arithmetic for each chunk, whatever a rank's share of the cores.
    """
    if not distributed() and not deterministic:
        return None
    from handgrad.distributed.reduce import Reducer

    if deterministic:
        world.set_threads(1)
    return Reducer(world.current(), deterministic)


def prepare(source, config, reducer):
    """``training.prepare``; under a reducer, each rank over its own groups of chunks."""
    if reducer is None:
        from handgrad.training import prepare as prepare_one

        return prepare_one(source, config)
    from handgrad.distributed import sharded

    return sharded.prepare(source, config, reducer)


def together(compute: Callable[[], object]):
    """``compute()`` on every rank (opening the data); a failure on any rank stops them
    all, and the lowest failing rank alone prints its message."""
    if world.current().size == 1:
        return compute()
    from handgrad.distributed.reduce import Reducer

    box = {}

    def run() -> dict:
        box["value"] = compute()
        return {}

    Reducer(world.current()).sum({}, [], run)  # nothing to add up: only the failures travel
    return box["value"]


def from_writer(compute: Callable[[], object], share: bool = True):
    """``compute()`` on rank 0; its value on every rank (None on the others when not
    ``share``). A ``UserError`` or ``OSError`` there stops every rank with its code."""
    here = world.current()
    if here.size == 1:
        return compute()
    import torch.distributed as dist

    from handgrad.distributed.reduce import PeerFailedError

    value, failure, code = None, None, 0
    if here.is_writer:
        try:
            value = compute()
        except UserError as error:
            failure, code = error, error.exit_code
        except OSError as error:
            failure, code = error, 1
    box = [code, value if share else None]
    dist.broadcast_object_list(box, src=0, device=here.device)
    if failure is not None:
        raise failure
    if box[0]:
        raise PeerFailedError(0, box[0])
    return value if here.is_writer else box[1]
