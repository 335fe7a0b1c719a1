"""User histories as one right-aligned tensor, and what every scorer of next items provides.

:class:`Histories` holds N histories of different lengths in one int64 (N, W) tensor, ``PAD``
before each history, so that scoring, masking and appending an item are vectorized over users.
:class:`Scorer` is the interface the metrics need: ``n_items`` and ``scores(histories) → (N, V)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from gan_equiv.recsys.logs import Ragged

#: The padding id before a history (no item has a negative id).
PAD = -1


class Scorer(Protocol):
    """Anything that scores every item as the next one: ``scores(histories)`` is (N, V), higher =
    more likely next, for V = ``n_items``."""

    n_items: int

    def scores(self, histories: Histories) -> Tensor:
        """Score of every item after each history: (N, V)."""
        ...


@dataclass(frozen=True)
class Histories:
    """A batch of user histories, right-aligned: ``items`` int64 (N, W), ``PAD`` (−1) before each history.

    The most recent item is the last column, so appending an item is one column.
    """

    items: Tensor

    @classmethod
    def from_ragged(cls, rows: Ragged) -> Histories:
        """Histories from per-user rows (oldest first)."""
        return cls(torch.as_tensor(rows.padded(pad=PAD)))

    def __len__(self) -> int:
        return int(self.items.shape[0])

    @property
    def lengths(self) -> Tensor:
        """Number of items in each history: (N,)."""
        return (self.items >= 0).sum(dim=1)

    def slice(self, start: int, stop: int) -> Histories:
        """Rows start … stop−1."""
        return Histories(self.items[start:stop])

    def append(self, items: Tensor) -> Histories:
        """Each history extended by one item (N,)."""
        return Histories(torch.cat([self.items, items.reshape(-1, 1).to(self.items)], dim=1))

    def tail(self, width: int) -> Tensor:
        """The last ``width`` items, right-aligned with PAD: (N, width)."""
        if width <= 0:
            return self.items[:, :0]
        if self.items.shape[1] >= width:
            return self.items[:, -width:]
        pad = torch.full((len(self), width - self.items.shape[1]), PAD, dtype=self.items.dtype)
        return torch.cat([pad, self.items], dim=1)

    def last_items(self) -> Tensor:
        """The most recent item of each history, PAD for an empty one: (N,)."""
        return self.tail(1)[:, 0]

    def seen_mask(self, n_items: int) -> Tensor:
        """bool (N, V): item j occurs in history i."""
        idx = torch.where(self.items >= 0, self.items, torch.full_like(self.items, n_items))
        mask = torch.zeros(len(self), n_items + 1, dtype=torch.bool)
        mask.scatter_(1, idx, True)
        return mask[:, :n_items]


def mask_seen(scores: Tensor, seen: Tensor | None) -> Tensor:
    """``scores`` (N, V) with the items marked in bool ``seen`` (N, V) set to −inf (ranked last);
    unchanged when ``seen`` is None."""
    if seen is None:
        return scores
    return scores.masked_fill(seen, float("-inf"))
