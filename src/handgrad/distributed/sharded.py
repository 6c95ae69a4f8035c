"""A split's statistics and gradient sums, chunk by chunk, each rank over its own chunks.

A split of q rows is cut into chunks of ``CHUNK_ROWS`` consecutive rows: boundaries that
come from the data alone, never from the world size, so that chunk c holds the same rows
(and its partial the same bits) whichever rank computes it. Chunks are numbered across
the splits, train first, so that small held-out splits do not all land on rank 0.

- ``split_statistics``: S, T and yᵀy of every split, from the Gram matrix of
  [X − x₀, 1, Y − y₀] (x₀, y₀ the split's first row, so a column far from zero keeps its
  precision), in one ``Reducer.sum``: one all-reduce per fit.
- ``reduced_step``: the loss and the gradients of one full-batch pass or one global
  mini-batch, from each chunk's sum-form partial (Σ loss, Xᵀ R, Σ R, the row count): one
  all-reduce per pass or per step. ``row_pieces`` cuts tensors in memory into this
  rank's chunks; a chunk source's groups serve the same way.

With ``--deterministic`` each chunk's partial is computed on one thread: a BLAS call on
two threads may add in another order than on one, and bit-identical results need the same
arithmetic per chunk on every rank, whatever its share of the cores.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from handgrad.distributed.reduce import Reducer
from handgrad.training.statistics import AUGMENTED_BLOCK_BYTES, Statistics

# Rows per chunk of a split held in memory. Small enough that a few hundred thousand
# rows spread over the ranks of one machine, large enough that a chunk's syrk or
# blocked pass dwarfs its Python overhead (and, with --deterministic, that a slot per
# chunk keeps the buffer small).
CHUNK_ROWS = 16_384


def chunk_ranges(q: int, chunk_rows: int) -> list[slice]:
    return [slice(start, min(start + chunk_rows, q)) for start in range(0, q, chunk_rows)]


@contextlib.contextmanager
def _threads(deterministic: bool):
    """One thread for torch and the BLAS while computing partials, when deterministic."""
    if not deterministic:
        yield
        return
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)


def shifted_gram(X: np.ndarray, Y: np.ndarray, x0: np.ndarray, y0: np.ndarray) -> np.ndarray:
    """AᵀA (m, m), A = [X − x₀, 1, Y − y₀] (rows, m = n + 1 + p), in float64 blocks."""
    q, n = X.shape
    m = n + 1 + Y.shape[1]
    step = max(1, AUGMENTED_BLOCK_BYTES // (8 * m))
    A_buf = np.empty((min(step, q), m))
    A_buf[:, n] = 1.0
    gram = np.zeros((m, m))
    for start in range(0, q, step):
        A = A_buf[: min(step, q - start)]
        np.subtract(X[start : start + A.shape[0]], x0, out=A[:, :n])
        np.subtract(Y[start : start + A.shape[0]], y0, out=A[:, n + 1 :])
        gram += A.T @ A  # (m, rows) @ (rows, m) -> (m, m), by syrk
    return gram


def statistics_from_gram(gram: np.ndarray, n: int, x0: np.ndarray, y0: np.ndarray) -> Statistics:
    """S, T and yᵀy from the shifted Gram matrix, through the centred moments.

    With d = x̄ − x₀ and e = ȳ − y₀ (the Gram's column of ones over q), the centred moments
    C = Gₓₓ − q ddᵀ, Cxy and cyy carry no cancellation of large terms; S = C + q x̄x̄ᵀ.
    """
    q = gram[n, n]
    d, e = gram[:n, n] / q, gram[n + 1 :, n] / q
    mx, my = x0 + d, y0 + e
    S = np.empty((n + 1, n + 1))
    S[:n, :n] = gram[:n, :n] - q * np.outer(d, d) + q * np.outer(mx, mx)
    S[:n, n] = S[n, :n] = q * mx
    S[n, n] = q
    T = np.vstack([gram[:n, n + 1 :] - q * np.outer(d, e) + q * np.outer(mx, my), q * my])
    yty = np.diagonal(gram[n + 1 :, n + 1 :]) - q * e * e + q * my * my
    return Statistics(torch.from_numpy(S), torch.from_numpy(T), torch.from_numpy(yty), int(q))


def split_statistics(splits: dict, reducer: Reducer, chunk_rows: int | None = None) -> dict:
    """``{name: Statistics}`` of each split (``{name: Split}``), in one all-reduce."""
    chunk_rows = chunk_rows or CHUNK_ROWS
    names = [name for name, split in splits.items() if split is not None]
    owners, rows, firsts = [], [], {}
    for name in names:
        split = splits[name]
        X, Y = split.X.detach().cpu().numpy(), split.Y.detach().cpu().numpy()
        firsts[name] = (X[0].astype(np.float64), Y[0].astype(np.float64))
        for piece in chunk_ranges(X.shape[0], chunk_rows):
            owners.append(name)
            rows.append((X, Y, piece))
    n, p = splits[names[0]].X.shape[1], splits[names[0]].Y.shape[1]
    m = n + 1 + p

    def compute():
        with _threads(reducer.deterministic):
            return {
                c: shifted_gram(X[piece], Y[piece], *firsts[owners[c]])
                for c, (X, Y, piece) in enumerate(rows)
                if reducer.world.owns(c)
            }

    grams = reducer.sum({name: (m, m) for name in names}, owners, compute)
    return {name: statistics_from_gram(grams[name], n, *firsts[name]) for name in names}


def reduced_step(reducer: Reducer, path, n_chunks: int, pieces, W, b):
    """(loss, grad_W, grad_b) of ``path`` over every rank's pieces, as one process
    computes them over all the rows: one all-reduce.

    ``pieces()`` yields ``(c, X, Y)`` for this rank's chunks c < ``n_chunks``; several
    pieces may share one c (a source's group of chunks). Each piece's partial is in sum
    form, (rows · loss, rows · grad_W, rows · grad_b, rows) in float64, added up per
    chunk in order; the totals are divided by the total row count.
    """
    n, p = W.shape

    def compute():
        out = {}
        with _threads(reducer.deterministic):
            for c, Xc, Yc in pieces():
                loss, grad_W, grad_b = path(Xc, Yc, W, b)
                grads = [g.detach().cpu().double().numpy().ravel() for g in (grad_W, grad_b)]
                part = np.concatenate([[float(loss)], *grads, [1.0]]) * Xc.shape[0]
                out[c] = out[c] + part if c in out else part
        return out

    size = 1 + n * p + p + 1
    total = reducer.sum({"pass": (size,)}, ["pass"] * n_chunks, compute)["pass"]
    count = total[-1]
    grad = torch.from_numpy(total[1 : 1 + n * p + p] / count).to(W.dtype).to(W.device)
    return total[0] / count, grad[: n * p].reshape(n, p), grad[n * p :]


def row_pieces(world, X, Y, rows=None, chunk_rows: int | None = None):
    """``(n_chunks, pieces)`` for ``reduced_step`` over X, Y held in memory: chunk c is
    rows c · chunk_rows onwards; with ``rows`` (one mini-batch's indices), the batch's
    rows of each of this rank's chunks, in the batch's order."""
    chunk_rows = chunk_rows or CHUNK_ROWS
    q = X.shape[0]
    n_chunks = -(-q // chunk_rows)
    mine = [c for c in range(n_chunks) if world.owns(c)]

    def pieces():
        if rows is None:
            for c in mine:
                piece = slice(c * chunk_rows, min((c + 1) * chunk_rows, q))
                yield c, X[piece], Y[piece]
            return
        chunk_of = rows.cpu().numpy() // chunk_rows
        for c in mine:
            at = np.flatnonzero(chunk_of == c)
            if at.size:
                index = rows[torch.from_numpy(at).to(rows.device)]
                yield c, X.index_select(0, index), Y.index_select(0, index)

    return n_chunks, pieces
