"""Containers of interaction data: the raw log as read, ragged per-user rows, and id maps.

- :class:`InteractionLog` — interactions in file order, users and items as integer codes into
  their raw tokens, with the 1-based source line of each row (the tie rule: file order);
- :class:`Ragged` — rows of variable length stored flat (CSR offsets), vectorized row operations;
- :class:`IdMap` — contiguous ids 0 … n−1 ↔ raw tokens, both directions;
- :class:`UserSequences` — one chronological row of item ids per user, with both id maps.

Readers that fill an :class:`InteractionLog` are in :mod:`gan_equiv.recsys.readers`; the steps
from a log to :class:`UserSequences`, splits and windows in :mod:`gan_equiv.recsys.preprocessing`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class InteractionLog:
    """Interactions in file order; users and items are integer codes into the token tuples.

    Attributes:
        user: int64 (n,) codes; ``user_tokens[user[i]]`` is the raw id of row i.
        item: int64 (n,) codes into ``item_tokens``.
        timestamp: float64 (n,).
        rating: float64 (n,), or None when the file has no rating column.
        line: int64 (n,) 1-based line of each row in the source file (file order = tie order).
        user_tokens, item_tokens: raw ids, in order of first appearance.
        source: where the log came from (a path or a description).
    """

    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray
    rating: np.ndarray | None
    line: np.ndarray
    user_tokens: tuple[str, ...]
    item_tokens: tuple[str, ...]
    source: str = ""

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def subset(self, keep: np.ndarray) -> InteractionLog:
        """The rows where boolean ``keep`` is true (token tables unchanged)."""
        return InteractionLog(
            user=self.user[keep],
            item=self.item[keep],
            timestamp=self.timestamp[keep],
            rating=None if self.rating is None else self.rating[keep],
            line=self.line[keep],
            user_tokens=self.user_tokens,
            item_tokens=self.item_tokens,
            source=self.source,
        )


@dataclass(frozen=True)
class IdMap:
    """Contiguous ids 0 … n−1 ↔ raw tokens. ``tokens[id]`` is the token; ``index[token]`` the id."""

    tokens: tuple[str, ...]
    index: dict[str, int] = field(repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not self.index:
            object.__setattr__(self, "index", {t: i for i, t in enumerate(self.tokens)})
        if len(self.index) != len(self.tokens):
            raise ValueError("IdMap tokens must be distinct")

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens) -> np.ndarray:
        """Ids of raw tokens (KeyError naming the first unknown token)."""
        try:
            return np.asarray([self.index[str(t)] for t in tokens], dtype=np.int64)
        except KeyError as err:
            raise KeyError(f"unknown token {err.args[0]!r} (not among the {len(self)} mapped ids)") from None

    def decode(self, ids) -> list[str]:
        """Raw tokens of ids."""
        return [self.tokens[int(i)] for i in np.asarray(ids).ravel()]


def runs_at(values: np.ndarray, starts: np.ndarray, width: int, *, chunk: int = 1 << 16) -> np.ndarray:
    """``values[s : s + width]`` for every start s: int64 (len(starts), width), 0 past the end.

    Gathered in chunks of ``chunk`` rows through an index matrix (the fastest route NumPy offers:
    fancy indexing of a sliding-window view copies far more), so memory stays bounded.
    """
    padded = np.concatenate([values.astype(np.int64, copy=False), np.zeros(width, dtype=np.int64)])
    cols = np.arange(width)
    out = np.empty((starts.size, width), dtype=np.int64)
    for a in range(0, starts.size, chunk):  # chunks of rows, not a loop per row
        np.take(padded, starts[a : a + chunk, None] + cols[None, :], out=out[a : a + chunk])
    return out


@dataclass(frozen=True)
class Ragged:
    """Rows of variable length stored flat (CSR): row r is ``values[offsets[r]:offsets[r+1]]``.

    ``times`` (optional) runs parallel to ``values``.
    """

    values: np.ndarray
    offsets: np.ndarray
    times: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.offsets.size - 1)

    @property
    def lengths(self) -> np.ndarray:
        """Length of every row: (n_rows,)."""
        return np.diff(self.offsets)

    def row(self, r: int) -> np.ndarray:
        """Values of row ``r``."""
        return self.values[self.offsets[r] : self.offsets[r + 1]]

    def row_ids(self) -> np.ndarray:
        """Row index of every value: (len(values),)."""
        return np.repeat(np.arange(self.n_rows), self.lengths)

    def positions(self) -> np.ndarray:
        """Position of every value inside its row (0-based)."""
        return np.arange(self.values.size) - np.repeat(self.offsets[:-1], self.lengths)

    def take(self, rows: np.ndarray) -> Ragged:
        """The given rows, in the given order."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        src = np.repeat(self.offsets[:-1][rows] - offsets[:-1], lengths) + np.arange(offsets[-1])
        return Ragged(self.values[src], offsets, None if self.times is None else self.times[src])

    def concat(self, other: Ragged) -> Ragged:
        """Row-wise concatenation: row r = self.row(r) followed by other.row(r)."""
        if other.n_rows != self.n_rows:
            raise ValueError(f"cannot concatenate {self.n_rows} rows with {other.n_rows} rows")
        offsets = np.concatenate([[0], np.cumsum(self.lengths + other.lengths)]).astype(np.int64)
        values = np.empty(offsets[-1], dtype=self.values.dtype)
        first = np.repeat(offsets[:-1], self.lengths) + self.positions()
        second = np.repeat(offsets[:-1] + self.lengths, other.lengths) + other.positions()
        values[first], values[second] = self.values, other.values
        times = None
        if self.times is not None and other.times is not None:
            times = np.empty(offsets[-1], dtype=np.float64)
            times[first], times[second] = self.times, other.times
        return Ragged(values, offsets, times)

    def padded(self, *, width: int | None = None, pad: int = -1) -> np.ndarray:
        """Right-aligned (N, width) matrix of the last ``width`` values of each row, ``pad`` before."""
        w = int(self.lengths.max(initial=0)) if width is None else int(width)
        out = np.full((self.n_rows, w), pad, dtype=np.int64)
        lengths = self.lengths
        # flat position of value k of row r: r·w + (w − L_r + k), for the last w values of a row
        flat = np.arange(self.values.size) + np.repeat(
            np.arange(self.n_rows) * w + w - lengths - self.offsets[:-1], lengths
        )
        ok = flat >= np.repeat(np.arange(self.n_rows) * w, lengths)  # inside the row's own w slots
        out.reshape(-1)[flat[ok]] = self.values[ok]
        return out


@dataclass(frozen=True)
class UserSequences:
    """Chronological item sequences per user with contiguous ids.

    Attributes:
        seqs: one row per user (ids 0 … V−1), oldest first; ``seqs.times`` the timestamps.
        users: user id ↔ raw user token (row r is user ``users.tokens[r]``).
        items: item id ↔ raw item token.
        source: where the log came from.
    """

    seqs: Ragged
    users: IdMap
    items: IdMap
    source: str = ""

    @property
    def n_users(self) -> int:
        """Number of users (rows)."""
        return self.seqs.n_rows

    @property
    def n_items(self) -> int:
        """Number of items V (ids 0 … V−1)."""
        return len(self.items)
