"""Train, validation and test rows, decided row by row from the row's index and the seed.

Row i goes to the test split when π(i) < n_test, to validation when π(i) < n_test +
n_val, else to training, where π is a seeded pseudo-random permutation of 0 .. q−1. π
is computed for any i alone (a 3-round Feistel network on the smallest even number of
bits that covers q, cycle-walking back into range), so a chunk knows its rows' splits
with no index over all rows, in any order, on any process. The splits have exactly the
sizes asked (each held-out split at least one row when asked), as before streaming.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handgrad.errors import UserError

TRAIN, VAL, TEST = 0, 1, 2
_ROUNDS = 3
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a fast, well-spread hash of uint64 values (wraps mod 2⁶⁴)."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


@dataclass(frozen=True)
class RowSplit:
    """Which split each row belongs to, for ``q`` rows and a seed."""

    q: int
    n_val: int
    n_test: int
    seed: int

    @classmethod
    def make(cls, q: int, val_fraction: float, test_fraction: float, seed: int) -> RowSplit:
        """Sizes as ``round(q * fraction)``, at least 1 for a fraction above 0."""
        n_test = max(1, round(q * test_fraction)) if test_fraction > 0 else 0
        n_val = max(1, round(q * val_fraction)) if val_fraction > 0 else 0
        if q - n_test - n_val < 1:
            raise UserError(
                f"{q} rows leave none to train on after the test ({n_test}) and validation "
                f"({n_val}) splits; lower --test-fraction/--val-fraction or give more data."
            )
        return cls(q, n_val, n_test, seed)

    @property
    def sizes(self) -> tuple[int, int, int]:
        return self.q - self.n_val - self.n_test, self.n_val, self.n_test

    def labels(self, start: int, rows: int) -> np.ndarray | None:
        """TRAIN, VAL or TEST (int8) for rows ``start`` .. ``start + rows - 1``; None when
        every row trains (nothing held out)."""
        if self.n_val + self.n_test == 0:
            return None
        rank = self._permute(np.arange(start, start + rows, dtype=np.uint64))
        labels = np.full(rows, TRAIN, dtype=np.int8)
        labels[rank < self.n_test + self.n_val] = VAL
        labels[rank < self.n_test] = TEST
        return labels

    def _permute(self, i: np.ndarray) -> np.ndarray:
        bits = max(2, (self.q - 1).bit_length())
        half = (bits + 1) // 2
        mask = np.uint64((1 << half) - 1)
        shift = np.uint64(half)
        keys = _mix(np.arange(_ROUNDS, dtype=np.uint64) + np.uint64(self.seed % 2**61 * 8 + 1))

        top = np.uint64(32)

        def feistel(x: np.ndarray) -> np.ndarray:
            left, right = x >> shift, x & mask
            for key in keys:
                # Round function: the high half of a 64-bit product, a cheap good mix of
                # the (at most 32-bit) half; cheaper than a full hash, and any round
                # function keeps the Feistel network a bijection.
                left, right = right, left ^ ((((right ^ key) * _GOLDEN) >> top) & mask)
            return (left << shift) | right

        x = feistel(i)
        outside = np.flatnonzero(x >= self.q)
        while outside.size:  # cycle-walk: a bijection of 0 .. 2^(2·half) − 1 restricted to q
            x[outside] = feistel(x[outside])
            outside = outside[x[outside] >= self.q]
        return x
