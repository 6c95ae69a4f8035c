"""From a source of chunks to splits ready to train on: moments, standardisers, statistics.

``prepare`` makes one pass over the source (``data/moments.py``): it checks every cell,
and gathers each split's count, mean and co-moments. From those come the standardisers
(fitted on the training rows) and every split's sufficient statistics, in training
units, exactly: the ``stats`` path and the reference need no other pass.

A ``Split`` then hands out its rows chunk by chunk, standardised as they are used and
moved to the run's device (``data.stream.to_device``): never a standardised copy of a
file. Rows already in memory (``ArraySource``), and splits whose tensors take less than
``CACHE_BYTES``, keep their standardised chunks after the first use, as small data
always did, so their epochs read memory, not the file. Cached or not, the chunks and
their order are the same, and so are the iterates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from handgrad.config import TrainConfig
from handgrad.data.dataset import Dataset
from handgrad.data.moments import moments_pass
from handgrad.data.scaling import MOMENT_ROWS, Standardizer
from handgrad.data.sources import ArraySource, Chunk, Source
from handgrad.data.splitting import RowSplit
from handgrad.data.stream import to_device
from handgrad.devices import resolve_device
from handgrad.errors import UserError
from handgrad.training.statistics import Statistics, statistics_from_moments

# A split whose tensors (training dtype) fit in this many bytes keeps them after first use.
CACHE_BYTES = 64 << 20
SPLIT_NAMES = ("train", "val", "test")


@dataclass
class Split:
    """One split's rows, in training units (features standardised; targets too when asked).

    ``sst`` is each target's total sum of squares about this split's mean, in the
    targets' original units, float64 (p,): the denominator of R². ``stats`` are the
    split's S, T and yᵀy in training units, float64.
    """

    name: str
    label: int
    n_samples: int
    sst: torch.Tensor  # (p,)
    stats: Statistics
    rows: _Rows = field(repr=False)
    cache: dict[int, list] | None = field(default=None, repr=False)

    def chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(X, Y) of each chunk of this split, in row order: one pass."""
        for g in range(self.rows.source.n_groups):
            yield from self.group(g)

    def group(self, g: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(X, Y) of each chunk of group ``g`` that holds rows of this split."""
        if self.cache is not None and g in self.cache:
            yield from self.cache[g]
            return
        kept = []
        for chunk in self.rows.source.group(g):
            pair = self.rows.of(chunk, self.label)
            if pair is None:
                continue
            if self.cache is not None:
                kept.append(pair)
            yield pair
        if self.cache is not None:
            self.cache[g] = kept

    def head(self, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(X, Y) of the split's first ``rows`` rows at most, read from its first chunks."""
        parts, count = [], 0
        for X, Y in self.chunks():
            parts.append((X[: rows - count], Y[: rows - count]))
            count += len(parts[-1][0])
            if count >= rows:
                break
        if len(parts) == 1:
            return parts[0]
        return torch.cat([X for X, _ in parts]), torch.cat([Y for _, Y in parts])

    @property
    def X(self) -> torch.Tensor:
        return self._whole(0)

    @property
    def Y(self) -> torch.Tensor:
        return self._whole(1)

    def _whole(self, k: int) -> torch.Tensor:
        """All rows at once (small data: tests, benchmarks); refused for a streamed split."""
        if self.cache is None:
            raise UserError(f"the {self.name} split is streamed; it has no tensor of all rows")
        parts = [pair[k] for pair in self.chunks()]
        return parts[0] if len(parts) == 1 else torch.cat(parts)


@dataclass
class _Rows:
    """How a chunk of the source becomes a split's tensors: labels, scaling, dtype, device."""

    source: Source
    split: RowSplit
    x_scaler: Standardizer
    y_scaler: Standardizer
    dtype: torch.dtype
    device: torch.device

    def of(self, chunk: Chunk, label: int, labels=False):
        """The chunk's rows of split ``label``, standardised, on the device; None if none.
        ``labels``: the chunk's split labels, when the caller has them already."""
        labels = self.split.labels(chunk.start, chunk.rows) if labels is False else labels
        mine = None
        if labels is not None:
            mine = labels == label
            if not mine.any():
                return None
            mine = None if mine.all() else mine
        elif label != 0:
            return None
        return (
            to_device(_standardized(chunk.X, self.x_scaler, self.dtype, mine), self.device),
            to_device(_standardized(chunk.Y, self.y_scaler, self.dtype, mine), self.device),
        )


@dataclass
class Prepared:
    train: Split
    val: Split | None
    test: Split | None
    x_scaler: Standardizer
    y_scaler: Standardizer
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    constant_features: tuple[str, ...]
    source: Source | None = None
    dtype: torch.dtype = torch.float32
    device: torch.device = torch.device("cpu")
    digest: str | None = None  # the fingerprint, when a torchrun job computed it

    @property
    def splits(self) -> list[Split]:
        return [s for s in (self.train, self.val, self.test) if s is not None]

    def fingerprint(self) -> str:
        """A digest of the data as trained on, for ``--resume`` to tell changed data.

        It hashes what the moments pass gathered (each split's size, statistics and SST,
        the standardisers): any change of a value moves them, and it costs no pass.
        Under torchrun it is ``digest``, the same at any number of ranks
        (``distributed/sharded.py``).
        """
        if self.digest is not None:
            return self.digest
        digest = hashlib.sha256()
        for split in self.splits:
            digest.update(f"{split.name}:{split.n_samples}".encode())
            for tensor in (split.stats.S, split.stats.T, split.stats.yty, split.sst):
                digest.update(tensor.numpy().tobytes())
        for scaler in (self.x_scaler, self.y_scaler):
            digest.update(scaler.mean.numpy().tobytes() + scaler.scale.numpy().tobytes())
        return digest.hexdigest()


def split_indices(q: int, val_fraction: float, test_fraction: float, seed: int):
    """Row indices of (train, val, test), in row order, as ``prepare`` splits ``q`` rows
    (``data/splitting.py``): for tests and tools that need the rows of a split."""
    split = RowSplit.make(q, val_fraction, test_fraction, seed)
    labels = split.labels(0, q)
    if labels is None:
        return np.arange(q), np.arange(0), np.arange(0)
    return tuple(np.flatnonzero(labels == k) for k in range(3))


def _standardized(A: np.ndarray, scaler: Standardizer, dtype: torch.dtype, mine=None):
    """(A[mine] − mean) / scale in ``dtype`` (all rows when ``mine`` is None), in
    cache-sized blocks through one reused float64 buffer: no full-size temporary, not
    even of the rows picked, and no fresh memory (page faults) per block."""
    mean, scale = scaler.mean.numpy(), scaler.scale.numpy()
    q = A.shape[0] if mine is None else int(np.count_nonzero(mine))
    out = np.empty((q, A.shape[1]), dtype=torch.empty((), dtype=dtype).numpy().dtype)
    buffer = np.empty((min(MOMENT_ROWS, A.shape[0]), A.shape[1]))
    done = 0
    for start in range(0, A.shape[0], MOMENT_ROWS):
        block = A[start : start + MOMENT_ROWS]
        if mine is not None:
            block = block[mine[start : start + MOMENT_ROWS]]
        rows = slice(done, done + len(block))
        centred = np.subtract(block, mean, out=buffer[: len(block)])
        np.divide(centred, scale, out=out[rows], casting="same_kind")
        done += len(block)
    return out


def prepare(data: Dataset | Source, config: TrainConfig, gather=None) -> Prepared:
    """Split the rows of ``data``, fit the standardisers on the training rows, gather the
    statistics: one pass over the data (see the module's docstring).

    ``data`` is a ``Dataset`` (arrays in memory) or any chunk source (``data/sources.py``).
    ``gather`` replaces the moments pass: under torchrun, each rank's own groups and one
    all-reduce (``distributed/sharded.py``).
    """
    source = ArraySource.of(data) if isinstance(data, Dataset) else data
    device = resolve_device(config.device)
    dtype = getattr(torch, config.dtype)
    n, p = len(source.feature_names), len(source.target_names)
    split = RowSplit.make(
        source.n_rows, config.resolved_val_fraction, config.test_fraction, config.seed
    )
    moments = (gather or moments_pass)(source, split, config.dtype)
    train = moments[0]
    std = train.std
    mean_t, std_t = torch.from_numpy(train.mean.copy()), torch.from_numpy(std)
    x_scaler = Standardizer.identity(n)
    if config.standardize:
        x_scaler = Standardizer.from_moments(mean_t[:n], std_t[:n])
    y_scaler = Standardizer.identity(p)
    if config.resolved_standardize_targets:
        y_scaler = Standardizer.from_moments(mean_t[n:], std_t[n:])
    centre = np.concatenate([x_scaler.mean.numpy(), y_scaler.mean.numpy()])
    scale = np.concatenate([x_scaler.scale.numpy(), y_scaler.scale.numpy()])
    rows = _Rows(source, split, x_scaler, y_scaler, dtype, device)
    itemsize = torch.empty((), dtype=dtype).element_size()
    # The smallest splits first, while they fit in CACHE_BYTES together.
    cached, budget = set(), CACHE_BYTES
    for label in sorted(range(3), key=lambda k: moments[k].q):
        size = moments[label].q * (n + p) * itemsize
        if source.in_memory or size <= budget:
            cached.add(label)
            budget -= size

    def make(label: int) -> Split | None:
        m = moments[label]
        if m.q == 0:
            return None
        return Split(
            name=SPLIT_NAMES[label],
            label=label,
            n_samples=m.q,
            sst=torch.from_numpy(np.diagonal(m.C)[n:].copy()),
            stats=statistics_from_moments(m, centre, scale),
            rows=rows,
            cache={} if label in cached else None,
        )

    # Constant: a spread that is rounding noise, the rule by which the scaler keeps scale 1.
    same = std[:n] <= 1e-12 * np.maximum(np.abs(train.mean[:n]), 1.0)
    constant = tuple(name for name, s in zip(source.feature_names, same, strict=True) if s)
    return Prepared(
        train=make(0),
        val=make(1),
        test=make(2),
        x_scaler=x_scaler,
        y_scaler=y_scaler,
        feature_names=source.feature_names,
        target_names=source.target_names,
        constant_features=constant,
        source=source,
        dtype=dtype,
        device=device,
    )
