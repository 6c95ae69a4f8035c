"""The moments pass: per split, the count, mean and co-moment matrix of [X, Y], streamed.

For the columns A = [X, Y] (m = n + p) of one split's rows, the pass keeps the row
count q, the mean μ (m,) and the co-moment matrix C = Σᵢ (aᵢ − μ)(aᵢ − μ)ᵀ (m, m), all
float64. Each chunk's part is summed about a fixed shift s (the first row of the data,
so within a few spreads of the mean: Σ(a − s)(a − s)ᵀ loses nothing to cancellation),
turned into its own (q, μ, C), then merged by Chan et al.'s parallel formula:

    q = q_a + q_b,   δ = μ_b − μ_a,   μ = μ_a + δ q_b / q,
    C = C_a + C_b + δ δᵀ q_a q_b / q.

C's diagonal is each column's M2 (the variance times q); its blocks give the
standardised sufficient statistics of ``training/statistics.py`` exactly, so this one
pass over the data is all the ``stats`` path needs. G (m,) adds up, per column, the
squares the pass actually summed, Σ(a − s)² about each part's shift: C's rounding
scales with G, not with C, and exceeds ε·C by (1 + ((μ − s)/σ)²) when a shift lies far
from the mean (``statistics.sse_rounding`` bounds the SSE's rounding with it).

Per block of rows the work is one float64 copy (shifted on the way, into a reused
buffer), one symmetric rank-k update AᵀA over all its rows, and the same over its
held-out rows only: the training part is the whole minus the held-out parts, in sums,
so the larger split is never gathered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from handgrad.data.cells import FLOAT32_MAX, SQUARES_OVERFLOW
from handgrad.data.splitting import TEST, VAL, RowSplit
from handgrad.data.stream import checked_chunk, pass_threads
from handgrad.errors import UserError

# Bytes of A = [X − s, Y − s, 1] per block: one reused float64 buffer this size, however
# large a chunk is. Data in memory is one chunk; a buffer of all its rows cost a fresh
# allocation per fit, whose first-touch page faults took 0.6 s of a 0.8 s fit at
# 200,000 x 100 -> 10 (GDRegressor; a warm process paid 0.05 s).
BLOCK_BYTES = 4 << 20


@dataclass
class Moments:
    """q, μ (m,), C (m, m) and G (m,) of one split's rows of A = [X, Y].

    μ is kept as ``anchor`` + ``offset``: the anchor a row of the data (the first part's
    shift, an exact float64 value), the offset the mean about it, of the size of the
    spread. Chan's δ = μ_b − μ_a is then (s_b − s_a) + (offset_b − offset_a), a
    difference of values of the data plus a small one: rounded to ε times the spread,
    not to ε|μ|, which for a column of 1e8 ± 1 was ε·1e8 and ruled C's rounding.
    """

    m: int
    n: int
    q: int = 0
    anchor: np.ndarray = field(default=None)
    offset: np.ndarray = field(default=None)
    C: np.ndarray = field(default=None)
    G: np.ndarray = field(default=None)  # Σ(a − s)² summed, per column (the module's docstring)

    def __post_init__(self) -> None:
        self.anchor, self.offset = np.zeros(self.m), np.zeros(self.m)
        self.C = np.zeros((self.m, self.m))
        self.G = np.zeros(self.m)

    @property
    def mean(self) -> np.ndarray:
        return self.anchor + self.offset

    def merge(
        self, rows: int, total: np.ndarray, gram: np.ndarray, shift: np.ndarray, summed=None
    ) -> None:
        """Merge a part of ``rows`` rows given by Σ(a − s) (m,) and Σ(a − s)(a − s)ᵀ (m, m).

        ``summed`` (m,): the squares the part's sums were rounded against, when larger
        than ``gram``'s diagonal (the training part, a difference of sums).
        """
        if rows == 0:
            return
        part = Moments(self.m, self.n, rows)
        part.anchor, part.offset = shift, total / rows
        part.C = gram - np.outer(total, part.offset)  # Σ(a − μ_b)(a − μ_b)ᵀ
        part.G = np.diagonal(gram) if summed is None else summed
        self.add(part)

    def add(self, part: Moments) -> None:
        """Chan's merge of another part's moments into these (see the module's docstring)."""
        if part.q == 0:
            return
        if self.q == 0:
            self.q, self.anchor, self.offset = part.q, part.anchor.copy(), part.offset.copy()
            self.C, self.G = self.C + part.C, self.G + part.G
            return
        q = self.q + part.q
        delta = (part.anchor - self.anchor) + (part.offset - self.offset)  # μ_b − μ_a
        self.C += part.C
        self.C += np.outer(delta, delta) * (self.q * part.q / q)
        self.G += part.G
        self.offset += delta * (part.q / q)
        self.q = q

    @property
    def std(self) -> np.ndarray:
        """Each column's population standard deviation (m,)."""
        return np.sqrt(np.maximum(np.diagonal(self.C), 0.0) / max(self.q, 1))


def _sums(A: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Rows, Σa and Σaaᵀ of the rows [a, 1] of A (rows, m + 1): one syrk gives both sums."""
    gram = A.T @ A  # (m+1, rows) @ (rows, m+1), by syrk: a product with its own transpose
    return A.shape[0], gram[:-1, -1].copy(), gram[:-1, :-1]


def moments_pass(source, split: RowSplit, dtype: str = "float64") -> list[Moments]:
    """One pass over ``source``: the moments of the train, validation and test rows.

    Every cell is checked on the way (``checked_chunk``), so a bad cell ends the run
    here, before anything is trained or written.
    """
    n, p = len(source.feature_names), len(source.target_names)
    result = [Moments(n + p, n) for _ in range(3)]
    step = max(1, BLOCK_BYTES // (8 * (n + p + 1)))  # rows of A per block
    buffer, shift = np.empty((step, n + p + 1)), None
    buffer[:, -1] = 1.0
    # Sums that overflow are caught below (``_too_large``): numpy need not warn of them.
    with pass_threads(), np.errstate(over="ignore", invalid="ignore"):
        for chunk in source.chunks():
            if shift is None:
                shift = np.concatenate([chunk.X[0], chunk.Y[0]]).astype(np.float64)
                shift[~np.isfinite(shift)] = 0.0  # a bad first cell is reported below
            # A missing or infinite cell makes its column's sum NaN or infinite: the
            # cell-by-cell check (which names it) runs only then, or beyond float32's range.
            if dtype == "float32" and _beyond_float32(chunk):
                checked_chunk(source, chunk, dtype)
            for start in range(0, chunk.rows, step):
                X, Y = chunk.X[start : start + step], chunk.Y[start : start + step]
                if not _block(
                    result, buffer, X, Y, shift, split.labels(chunk.start + start, len(X))
                ):
                    checked_chunk(source, chunk, dtype)
                    _too_large(source, chunk.start + start, X, Y, shift)
    return result


def _too_large(source, start: int, X: np.ndarray, Y: np.ndarray, shift: np.ndarray) -> None:
    """Raise ``UserError`` for finite cells whose sums of squares about the shift overflow
    float64 (rows ``start`` .. of X and Y): their block would otherwise be lost."""
    n = X.shape[1]
    for M, s, names, role in (
        (X, shift[:n], source.feature_names, "feature"),
        (Y, shift[n:], source.target_names, "target"),
    ):
        far = np.abs(M - s)  # |a − s| per cell, in float64 (as s is)
        j = int(np.argmax(far.max(axis=0)))
        i = int(np.argmax(far[:, j]))
        if far[i, j] >= SQUARES_OVERFLOW:
            value, row = (M[i, j], start + i + 1) if abs(M[i, j]) >= abs(s[j]) else (s[j], 1)
            raise UserError(
                f"column '{names[j]}' of {source.file_of(role)} holds {value:g} at row {row}: "
                f"float64 sums of its squares overflow (beyond about {SQUARES_OVERFLOW:.0e} a "
                "value); rescale the column, e.g. divide it by a power of ten"
            )
    raise UserError(
        f"rows {start + 1} to {start + len(X)} of {source.name} have sums of squares beyond "
        "float64's range; rescale the columns, e.g. divide them by a power of ten"
    )


def _beyond_float32(chunk) -> bool:
    """Whether a float64 chunk holds a value beyond float32's range: two reductions per
    array, no temporary (NaN compares false: the sums catch it)."""
    return any(
        M.dtype == np.float64 and M.size and max(M.max(), -M.min()) > FLOAT32_MAX
        for M in (chunk.X, chunk.Y)
    )


def _block(result, buffer, X, Y, shift, labels) -> bool:
    """Merge the rows (X, Y) into the moments of their splits; False if a sum is not
    finite (a bad cell, which the caller names)."""
    n = X.shape[1]
    A = buffer[: X.shape[0]]  # [X − s, Y − s, 1], float64
    np.subtract(X, shift[:n], out=A[:, :n])
    np.subtract(Y, shift[n:], out=A[:, n:-1])
    count, total, gram = _sums(A)
    whole = np.diagonal(gram).copy()  # the training part is a difference of these sums
    if not (np.isfinite(total).all() and np.isfinite(whole).all()):
        return False
    if labels is not None:
        held = labels != 0
        H, held_labels = A[held], labels[held]
        for k in (VAL, TEST):
            part = _sums(H[held_labels == k])
            result[k].merge(*part, shift)
            count, total, gram = count - part[0], total - part[1], gram - part[2]
    result[0].merge(count, total, gram, shift, whole)
    return True
