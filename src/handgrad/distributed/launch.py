"""What ``handgrad train`` needs under torchrun: a reducer, failures made common, and the
writer's state shared.

Rank 0 alone writes (the run directory, TensorBoard, the figures, the model). What it
reads or creates before training, a new run directory or the checkpoint of a run to
resume, it broadcasts once, with its failure if it failed: that is the initial state,
and nothing is broadcast after it.
"""

from __future__ import annotations

from collections.abc import Callable

from handgrad.distributed.reduce import PeerFailedError, Reducer
from handgrad.distributed.world import current, from_environment
from handgrad.errors import UserError


def reducer_for(deterministic: bool) -> Reducer | None:
    """A reducer under torchrun (any world size) or with --deterministic; else None,
    and the trainer runs as it always has."""
    if current().size == 1 and from_environment() is None and not deterministic:
        return None
    return Reducer(current(), deterministic)


def together(compute: Callable[[], object]):
    """``compute()`` on every rank (loading and preparing the data); a failure on any
    rank stops them all, and the lowest failing rank alone prints its message."""
    box = {}

    def run() -> dict:
        box["value"] = compute()
        return {}

    Reducer(current()).sum({}, [], run)  # nothing to add up: only the failures travel
    return box["value"]


def from_writer(compute: Callable[[], object], share: bool = True):
    """``compute()`` on rank 0; its value on every rank (None on the others when not
    ``share``). A ``UserError`` or ``OSError`` there stops every rank with its code."""
    world = current()
    if world.size == 1:
        return compute()
    import torch.distributed as dist

    value, failure, code = None, None, 0
    if world.is_writer:
        try:
            value = compute()
        except UserError as error:
            failure, code = error, error.exit_code
        except OSError as error:
            failure, code = error, 1
    box = [code, value if share else None]
    dist.broadcast_object_list(box, src=0, device=world.device)
    if failure is not None:
        raise failure
    if box[0]:
        raise PeerFailedError(0, box[0])
    return value if world.is_writer else box[1]
