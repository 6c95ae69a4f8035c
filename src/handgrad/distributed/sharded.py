"""Each rank's passes over its own groups of chunks, and where their partial sums meet.

A chunk source (``data/sources.py``) comes in groups of chunks (a Parquet row group, a
row range of an ``.npy`` file) whose boundaries come from the data alone. Group g is
read by rank g mod world size, and by no other. Rows held in memory (an embedded set, a
CSV or ``.npz`` file read whole) are cut into groups of ``chunk_rows_for(m)`` rows
first (``spread``), so that the ranks share them too.

- ``GroupMoments``, the moments pass of ``prepare``: each rank gathers the moments of its
  groups, one group at a time; one exchange brings every rank's to every rank, which
  merge them in order (Chan's formula, ``data/moments.py``): the statistics of the
  ``stats`` path, the standardisers and the reference, in one all-reduce per fit.
- ``Passes``: what ``training/passes.py`` does over all chunks, over this rank's groups:
  a full-batch pass (sum-form loss, gradients and rows, one all-reduce), mini-batch
  steps (one all-reduce each) and the largest row norm. The final metrics need no pass
  and no exchange: they come from the statistics (``training/results.py``).

With ``deterministic``, each group's partial has its own slot and the slots are added in
group order after the exchange: the same additions at any world size, so the same bits.
Without it, each rank adds its own groups first, and the ranks' totals meet in one sum.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from handgrad.data.moments import Moments, moments_pass
from handgrad.data.sources import ArraySource, Source, chunk_rows_for
from handgrad.distributed.reduce import Reducer
from handgrad.training import passes
from handgrad.training.metrics import gradient_norm


class Shard(Source):
    """The groups ``groups`` of ``source``, as a source of their own (rows keep their
    numbers, so the split of each row and the messages stay those of the whole)."""

    def __init__(self, source: Source, groups) -> None:
        self.source, self.groups = source, list(groups)
        self.name, self.n_rows, self.in_memory = source.name, source.n_rows, source.in_memory
        self.feature_names, self.target_names = source.feature_names, source.target_names

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    def group(self, g: int):
        return self.source.group(self.groups[g])

    def file_of(self, role: str) -> str:
        return self.source.file_of(role)


def spread(source: Source) -> Source:
    """``source``, with rows held in memory as one chunk cut into groups of
    ``chunk_rows_for(m)`` rows, as an ``.npy`` file's are: groups the ranks can share."""
    if not isinstance(source, ArraySource) or source.n_groups != 1:
        return source
    m = len(source.feature_names) + len(source.target_names)
    names = (source.feature_names, source.target_names, source.name)
    return ArraySource(source.X, source.Y, *names, chunk_rows=chunk_rows_for(m))


def mine(reducer: Reducer, n_groups: int) -> list[int]:
    return [g for g in range(n_groups) if reducer.world.owns(g)]


def prepare(source: Source, config, reducer: Reducer):
    """``training.prepare`` of ``source`` under torchrun: each rank reads its own groups."""
    from handgrad.training.prepare import prepare as prepare_one

    gather = GroupMoments(reducer)
    data = prepare_one(spread(source), config, gather)
    data.digest = gather.digest
    return data


class GroupMoments:
    """The moments pass over this rank's groups, exchanged in one all-reduce.

    Called as ``moments_pass`` is, by ``prepare``. Each group's moments come from
    ``moments_pass`` over that group alone (about its own first row), so they are the
    same bits whichever rank computes them; each also yields a 48-bit digest, and
    ``digest`` (the run's fingerprint, for ``--resume``) hashes them all: the same at
    any world size, deterministic or not.
    """

    def __init__(self, reducer: Reducer) -> None:
        self.reducer = reducer
        self.digest: str | None = None

    def __call__(self, source: Source, split, dtype: str) -> list[Moments]:
        reducer, G = self.reducer, source.n_groups
        n, p = len(source.feature_names), len(source.target_names)
        m = n + p
        size = 3 * (1 + 3 * m + m * m)  # q, μ (anchor, offset), G and C of each split
        deterministic = reducer.deterministic
        slots = G if deterministic else reducer.world.size

        def compute() -> dict[int, np.ndarray]:
            out, own = {}, [Moments(m, n) for _ in range(3)]
            for g in mine(reducer, G):
                part = moments_pass(Shard(source, [g]), split, dtype)
                packed = _pack(part)
                digest = hashlib.sha256(packed.tobytes()).digest()[:6]
                out[slots + g] = np.array([float(int.from_bytes(digest, "big"))])
                if deterministic:
                    out[g] = packed
                else:
                    _merge(own, part)
            if not deterministic:
                out[reducer.world.rank] = _pack(own)
            return out

        parts = reducer.gather([size] * slots + [1] * G, compute)
        merged = [Moments(m, n) for _ in range(3)]
        for packed in parts[:slots]:  # group order, or rank order
            _merge(merged, _unpack(packed, m, n))
        digests = np.concatenate(parts[slots:]) if G else np.zeros(0)
        self.digest = "groups:" + hashlib.sha256(digests.tobytes()).hexdigest()
        return merged


def _pack(moments: list[Moments]) -> np.ndarray:
    return np.concatenate(
        [np.concatenate([[m.q], m.anchor, m.offset, m.G, m.C.ravel()]) for m in moments]
    )


def _unpack(packed: np.ndarray, m: int, n: int) -> list[Moments]:
    out = []
    for part in packed.reshape(3, -1):
        moments = Moments(m, n, int(part[0]))
        moments.anchor, moments.offset, moments.G = part[1 : 1 + 3 * m].reshape(3, m).copy()
        moments.C = part[1 + 3 * m :].reshape(m, m).copy()
        out.append(moments)
    return out


def _merge(into: list[Moments], parts: list[Moments]) -> None:
    """Chan's merge of ``parts`` into ``into``, split by split."""
    for target, part in zip(into, parts, strict=True):
        target.add(part)


def _flagged(batches):
    """(X, Y, last) for each mini-batch of a group; (None, None, True) when it has none."""
    batches = iter(batches)
    current = next(batches, None)
    if current is None:
        yield None, None, True
        return
    for following in batches:
        yield *current, False
        current = following
    yield *current, True


def _numpy(*tensors: torch.Tensor) -> list[np.ndarray]:
    return [t.detach().cpu().double().numpy().ravel() for t in tensors]


class Passes:
    """``training/passes.py``'s passes over a split, each rank over its own groups, with
    one all-reduce per pass or step. The trainer uses it when given a reducer."""

    def __init__(self, reducer: Reducer) -> None:
        self.reducer = reducer

    def train_epoch(self, trainer) -> float:
        """One epoch of ``trainer`` (``Trainer._train_epoch``); the last gradient's norm."""
        train, path, W, b = trainer.data.train, trainer.path, trainer.W, trainer.b
        if trainer.full_batch:
            _, grad_W, grad_b = self.full_batch(path, train, W, b)
            trainer._step(grad_W, grad_b)
            return gradient_norm(grad_W, grad_b)
        # A checkpoint saved part way through an epoch resumes where it stopped, as
        # Trainer._train_epoch does; the chunk hook runs after each group, where every
        # rank knows the same (the signal agreed at the last all-reduce).
        start, norm = trainer.resume_position()
        grads = None

        def done(at) -> bool:
            return trainer.chunk_done(at, grads, norm)

        for grads in self.steps(trainer, start, done):
            trainer._minibatch_step(*grads)
        return gradient_norm(*grads) if grads else norm

    def full_batch(self, path, split, W, b):
        """(loss, ∂W, ∂b) over every rank's chunks: each group's sum-form partial (Σ
        rows · loss, rows · ∂W, rows · ∂b, rows), float64, in one all-reduce."""
        if path.name == "stats":  # the statistics hold every row already
            return passes.full_batch(path, split, W, b)
        n, p = W.shape
        G = split.rows.source.n_groups

        def compute():
            out = {}
            for g in mine(self.reducer, G):
                for X, Y in split.group(g):
                    loss, grad_W, grad_b = path(X, Y, W, b)
                    part = np.concatenate([[float(loss)], *_numpy(grad_W, grad_b), [1.0]])
                    part *= X.shape[0]
                    out[g] = out[g] + part if g in out else part
            return out

        size = 1 + n * p + p + 1
        total = self.reducer.sum({"pass": (size,)}, ["pass"] * G, compute)["pass"]
        count = total[-1]
        grad = torch.from_numpy(total[1:-1] / count).to(W.dtype).to(W.device)
        return total[0] / count, grad[: n * p].reshape(n, p), grad[n * p :]

    def steps(self, trainer, start=(0, 0), done=None):
        """The epoch's mini-batch gradients, as ``passes.batches`` cuts the batches: the
        rank that owns a batch's group computes its gradient, one all-reduce hands it to
        every rank (with whether it was the group's last), and every rank steps alike.
        ``start`` = (i, k) skips the first k chunks of the i-th group and all before;
        ``done((i + 1, 0))``, if given, runs after group i, and True stops the epoch."""
        config, split, path = trainer.config, trainer.data.train, trainer.path
        W, b = trainer.W, trainer.b
        n, p = W.shape
        world, G = self.reducer.world, split.rows.source.n_groups
        base = passes.epoch_seed(config.seed, trainer.epoch)
        for i, g in enumerate(passes.group_order(G, config.shuffle, config.seed, trainer.epoch)):
            if i < start[0]:
                continue
            batches = None
            if world.owns(g):
                skip = start[1] if i == start[0] else 0
                batches = _flagged(
                    passes.group_batches(split, g, config.batch_size, config.shuffle, base, skip)
                )

            def compute(batches=batches):
                if batches is None:
                    return {}
                X, Y, last = next(batches)
                if X is None:  # no training rows in this group
                    return {0: np.concatenate([np.zeros(n * p + p), [0.0, 1.0]])}
                _, grad_W, grad_b = path(X, Y, W, b)
                return {0: np.concatenate([*_numpy(grad_W, grad_b), [X.shape[0], last]])}

            while True:
                total = self.reducer.sum({"step": (n * p + p + 2,)}, ["step"], compute)["step"]
                if total[-2] > 0:
                    grad = torch.from_numpy(total[: n * p + p]).to(W.dtype).to(W.device)
                    yield grad[: n * p].reshape(n, p), grad[n * p :]
                if total[-1]:
                    break
            if done is not None and done((i + 1, 0)):
                return

    def max_row_norm2(self, split, whitening=None) -> float:
        """``passes.max_row_norm2`` over every rank's groups: each its own maximum."""
        G, world = split.rows.source.n_groups, self.reducer.world

        def compute():
            largest = 0.0
            for g in mine(self.reducer, G):
                for X, _ in split.group(g):
                    largest = max(largest, passes.row_norm2(X, whitening))
            return {world.rank: np.array([largest])}

        return float(np.max(self.reducer.gather([1] * world.size, compute)))
