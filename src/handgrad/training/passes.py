"""Passes of the trainer over a split's chunks: an epoch's batches, a full-batch step, SSE.

Mini-batch order
----------------
An epoch permutes the source's groups (seeded by seed and epoch), reads each group's
chunks in row order, permutes the rows of each chunk (seeded by seed, epoch and the
chunk's first row), and cuts them into batches. Batches never span two chunks: the last
batch of a chunk may be short. Rows in memory are one chunk, so for them this is the
global shuffle it always was; for a streamed file it differs from a global shuffle in
that rows of one chunk stay together within the epoch (a batch never mixes rows of two
chunks), which is what keeps each read sequential. The order depends only on (seed,
epoch) and the data's chunk boundaries, never on what is cached, so a streamed run and
an in-memory run with the same chunks take the same steps, and ``--resume`` repeats them.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from handgrad.data.stream import pass_threads
from handgrad.training.metrics import sse_per_target
from handgrad.training.prepare import Prepared, Split

_CHUNK_SEED = 0x9E3779B97F4A7C15 % 2**62  # spreads the chunks' generators apart


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


def batches(split: Split, size: int, shuffle: bool, seed: int, epoch: int, start=(0, 0), done=None):
    """The epoch's mini-batches (X, Y) of ``split`` (see the module's docstring).

    ``start`` = (i, k) begins after the first k chunks of the i-th group of the epoch's
    order, where a run stopped part way left it. ``done((i, k))``, if given, is called
    after each chunk with the position reached; True stops the epoch there.
    """
    base = epoch_seed(seed, epoch)
    for i, g in enumerate(group_order(split.rows.source.n_groups, shuffle, seed, epoch)):
        if i < start[0]:
            continue  # a group is read only from its start: the ones done are not read
        after = None if done is None else (lambda k, i=i: done((i, k)))
        skip = start[1] if i == start[0] else 0
        if (yield from group_batches(split, g, size, shuffle, base, skip, after)):
            return


def group_order(n_groups: int, shuffle: bool, seed: int, epoch: int) -> list[int]:
    """The order in which an epoch reads the groups: seeded by seed and epoch alone."""
    if shuffle and n_groups > 1:
        generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
        return torch.randperm(n_groups, generator=generator).tolist()
    return list(range(n_groups))


def group_batches(split: Split, g: int, size: int, shuffle: bool, base: int, skip=0, done=None):
    """The mini-batches (X, Y) of group ``g``, ``base`` the epoch's seed, from its chunk
    ``skip`` on. ``done(k)``, if given, is called after chunk k − 1; when it returns True
    the generator stops there and returns True."""
    for k, (X, Y) in enumerate(split.group(g)):
        if k < skip:
            continue
        q = X.shape[0]
        if shuffle:
            # Chunk (g, k) has its own generator; the first one is the epoch's, so
            # that rows in memory (one chunk) are shuffled exactly as they always were.
            key = g * 1_000_033 + k
            chunk_seed = base if key == 0 else (base + key * _CHUNK_SEED) % 2**63
            generator = torch.Generator().manual_seed(chunk_seed)
            order = torch.randperm(q, generator=generator).to(X.device)
            # One gather per chunk, then views: no selection per batch.
            X, Y = X.index_select(0, order), Y.index_select(0, order)
        for s in range(0, q, size):
            yield X[s : s + size], Y[s : s + size]
        if done is not None and done(k + 1):
            return True
    return False


def full_batch(path, split: Split, W: torch.Tensor, b: torch.Tensor):
    """One full-batch (loss, ∂W, ∂b) of ``path`` over all chunks of ``split``.

    The statistics path needs no rows. One chunk is the path's own result; several are
    added up in sum form (loss and gradients times the chunk's rows), then divided by q.
    """
    if path.name == "stats":
        return path(None, None, W, b)
    total = grad_W_sum = grad_b_sum = None
    count = 0
    for X, Y in split.chunks():
        loss, grad_W, grad_b = path(X, Y, W, b)
        q = X.shape[0]
        if count == 0 and q == split.n_samples:
            return loss, grad_W, grad_b
        if total is None:
            total, grad_W_sum, grad_b_sum = loss * q, grad_W * q, grad_b * q
        else:
            total = total + loss * q
            grad_W_sum.add_(grad_W, alpha=q)
            grad_b_sum.add_(grad_b, alpha=q)
        count += q
    return total / count, grad_W_sum.div_(count), grad_b_sum.div_(count)


@pass_threads()
def max_row_norm2(split: Split, whitening=None) -> float:
    """max ‖x̃ᵢ‖² over the rows of ``split`` (float64), in the coordinates the steps are
    taken in: the per-row curvature a mini-batch plan needs (``schedule.batch_curvature``);
    one pass."""
    return max(row_norm2(X, whitening) for X, _ in split.chunks())


def row_norm2(X: torch.Tensor, whitening=None) -> float:
    """max ‖x̃ᵢ‖² = ‖xᵢ‖² + 1 over the rows of a chunk X in training units, or with
    ``whitening`` (``precondition.Whitening``) max ‖Mᵀx̃ᵢ‖²."""
    if whitening is not None:
        return whitening.max_row_norm2(X)
    return float((X.double() ** 2).sum(dim=1).max()) + 1.0


@pass_threads()
def split_sse(split: Split, W, b, y_scale, exact: bool = False) -> torch.Tensor:
    """Each target's SSE (p,) over all chunks of ``split``, float64, original units."""
    total = None
    for X, Y in split.chunks():
        sse = sse_per_target(X, Y, W, b, y_scale, exact=exact)
        total = sse if total is None else total + sse
    return total


@pass_threads()
def final_sse(data: Prepared, params, y_scale) -> dict[str, list[torch.Tensor]]:
    """Exact SSE (p,) of each split at each (W, b) of ``params``: {split: [sse, ...]}.

    All splits together, in one pass over the source (each chunk standardised once per
    split), not one pass per split and weights. The rows are standardised in float64,
    not taken from the training dtype's cache: the metrics are those of the saved model
    on the data (and equal, to rounding, the per-epoch losses from the statistics, which
    are exact for the same float64 rows).
    """
    out = {split.name: [None] * len(params) for split in data.splits}
    rows = replace(data.train.rows, dtype=torch.float64)
    for chunk in rows.source.chunks():
        labels = rows.split.labels(chunk.start, chunk.rows)  # once for all splits
        for split in data.splits:
            pair = rows.of(chunk, split.label, labels)
            if pair is None:
                continue
            for k, (W, b) in enumerate(params):
                sse = sse_per_target(*pair, W, b, y_scale, exact=True)
                out[split.name][k] = sse if out[split.name][k] is None else out[split.name][k] + sse
    return out
