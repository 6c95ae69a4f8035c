"""``Reducer``: the one place where ranks meet, to add up partial sums.

Every rank computes, for each group of chunks it owns (group c belongs to rank c mod
world size, ``sharded.py``), a partial in sum form: gradients times rows, not means, so
that partials add up across groups and ranks. ``Reducer.sum`` then adds them up:

- by default, each rank adds its own groups' partials in group order, in float64, and
  one ``all_reduce`` of one flat float64 buffer adds the ranks' totals. The ranks' order
  of addition is gloo's or NCCL's, so the result equals one process's to about 1e-15
  relative, not bit for bit;
- with ``deterministic=True``, group c's partial goes into its own slot of the buffer,
  every other rank leaves that slot at zero (x + 0 is exact), and after the all-reduce
  every rank adds the slots in group order: the same additions at any world size, so
  the result is bit-identical for any world size. The buffer is as many partials long
  as there are groups.

``Reducer.gather`` is the same exchange without the sum: each rank fills its slots,
and every rank gets all of them (the moments, which merge by Chan's formula, not by +).

The buffer also carries two numbers per rank: the exit code of a failure while computing
the partials (0 when none), and the signal it received (SIGINT, SIGTERM), so that every
rank stops after the same step. So an error on one rank (a bad cell in its group) stops
every rank at this collective, with one message and the failing rank's exit code. A rank
that dies outright or hangs stops the others through the process group's timeout.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from handgrad.distributed.world import World, current, timeout_seconds
from handgrad.errors import UserError

# The exit code posted for a failure that is not a UserError (a bug, memory).
INTERNAL_FAILURE = 1
INTERRUPTED = 130
# The most a deterministic exchange sends at once (a partial per chunk).
MAX_BUFFER_BYTES = 1 << 30


class PeerFailedError(UserError):
    """Another rank failed: this one stops too, with its exit code, printing nothing (the
    failing rank prints the message)."""

    def __init__(self, rank: int, exit_code: int) -> None:
        super().__init__(
            f"rank {rank} of this torchrun job failed (its message is above); this rank stops too.",
            exit_code=exit_code,
        )
        self.report = False


class PeerLostError(UserError):
    """A collective failed: a peer died, or hung past the timeout."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"lost contact with the other ranks of this torchrun job ({detail}): one "
            f"stopped, or hung past the {timeout_seconds():g} s timeout "
            "(HANDGRAD_DIST_TIMEOUT); see the messages of the other ranks.",
            exit_code=1,
        )


class Reducer:
    """Adds partial sums over chunks and ranks (see the module's docstring).

    Parameters
    ----------
    world : World, optional
        Default: the current one (one rank of one without torchrun).
    deterministic : bool, default=False
        Add chunk by chunk in chunk order: bit-identical results for any world size.

    Attributes
    ----------
    calls : int
        Collectives run so far: one per ``sum`` (tests count them).
    """

    def __init__(self, world: World | None = None, deterministic: bool = False) -> None:
        self.world = world or current()
        self.deterministic = deterministic
        self.calls = 0
        # A signal this rank received (its number), posted with the next sum; and the
        # one every rank agreed on at the last sum (0: none), so that all stop together.
        self.stop_requested = 0
        self.stop_agreed = 0

    def sum(
        self,
        shapes: Mapping[str, tuple[int, ...]],
        owners: Sequence[str],
        compute: Callable[[], Mapping[int, np.ndarray]],
    ) -> dict[str, np.ndarray]:
        """Totals, one per name of ``shapes``, over every chunk of every rank.

        ``owners[c]`` names the total that chunk c adds into; ``compute()`` returns
        ``{c: partial}`` (float64, of the shape of its name) for this rank's chunks. A
        failure inside ``compute`` is posted to every rank (see the module's docstring).
        """
        names = list(shapes)
        sizes = {name: math.prod(shapes[name]) for name in names}
        if self.deterministic:  # a slot per chunk, added in chunk order after the exchange
            slots = self.gather([sizes[name] for name in owners], compute)
            totals = {name: np.zeros(sizes[name]) for name in names}
            for part, name in zip(slots, owners, strict=True):
                totals[name] += part
            return {name: totals[name].reshape(shapes[name]) for name in names}
        offsets = {name: sum(sizes[k] for k in names[:i]) for i, name in enumerate(names)}

        def fill(buffer: np.ndarray) -> None:
            partials = compute()
            for c in sorted(partials):
                part = np.asarray(partials[c], dtype=np.float64).ravel()
                at = offsets[owners[c]]
                buffer[at : at + part.size] += part

        buffer = self._exchange(sum(sizes.values()), fill)
        return {
            name: buffer[offsets[name] : offsets[name] + sizes[name]].reshape(shapes[name])
            for name in names
        }

    def gather(
        self, sizes: Sequence[int], compute: Callable[[], Mapping[int, np.ndarray]]
    ) -> list[np.ndarray]:
        """Every rank's parts, on every rank: ``compute()`` returns ``{slot: part}`` (float64,
        ``sizes[slot]`` values) for this rank's slots; the others stay zero, so one
        all-reduce copies each part exactly (x + 0 = x). Returns the parts in slot order."""
        starts = np.cumsum([0, *sizes])
        payload = int(starts[-1])
        if payload * 8 > MAX_BUFFER_BYTES:
            raise UserError(
                f"--deterministic would all-reduce {payload * 8 / 2**20:.0f} MiB at once (a "
                f"partial for each of {len(sizes)} chunks), more than the "
                f"{MAX_BUFFER_BYTES >> 20} MiB allowed; drop --deterministic (results then "
                "equal one process's to about 1e-12), or use fewer, larger chunks."
            )

        def fill(buffer: np.ndarray) -> None:
            for slot, part in compute().items():
                buffer[starts[slot] : starts[slot + 1]] = np.asarray(part, np.float64).ravel()

        buffer = self._exchange(payload, fill)
        return [buffer[starts[k] : starts[k + 1]] for k in range(len(sizes))]

    def _exchange(self, payload: int, fill: Callable[[np.ndarray], None]) -> np.ndarray:
        """One all-reduce of ``payload`` values that ``fill`` writes (this rank's part),
        followed by each rank's failure and signal; raises the first failure on every rank."""
        world = self.world
        # [payload..., exit code of each rank's failure, signal each rank received]
        buffer = np.zeros(payload + 2 * world.size)
        buffer[payload + world.size + world.rank] = self.stop_requested
        failure = None
        try:
            fill(buffer[:payload])
        except (Exception, KeyboardInterrupt) as error:
            if world.size == 1:
                raise
            failure = error
            interrupted = isinstance(error, KeyboardInterrupt)
            fallback = INTERRUPTED if interrupted else INTERNAL_FAILURE
            buffer[payload + world.rank] = getattr(error, "exit_code", None) or fallback
        buffer = self._all_reduce(buffer)
        status, signals = buffer[payload : payload + world.size], buffer[payload + world.size :]
        self.stop_agreed = int(signals.max())
        if status.any():
            first = int(np.flatnonzero(status)[0])
            if failure is not None:
                failure.report = first == world.rank
                raise failure
            raise PeerFailedError(first, int(status[first]))
        return buffer[:payload]

    def _all_reduce(self, buffer: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.world.size == 1:
            return buffer
        import torch.distributed as dist

        tensor = torch.from_numpy(buffer).to(self.world.device)
        try:
            dist.all_reduce(tensor)
        except RuntimeError as error:  # gloo: connection closed or timed out
            raise PeerLostError(str(error).splitlines()[0][:200]) from None
        return tensor.cpu().numpy()
