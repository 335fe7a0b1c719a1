"""From a raw interaction log to training data: filters, per-user sequences, splits and windows.

:func:`filter_min_rating`, :func:`k_core` (repeated until stable), then :func:`build_sequences` —
chronological per-user sequences (ties in timestamps keep the original line order), contiguous
item ids 0 … V−1 with the mapping kept in both directions (:class:`~gan_equiv.recsys.logs.IdMap`);
:func:`preprocess` chains the three. :func:`split_tail` holds out the last items of every user
(:func:`leave_one_out`: last = test, second last = validation, the rest = train) and
:func:`training_windows` cuts the training prefixes into windows of length T. :func:`summarize`
describes a log or its sequences (:class:`LogSummary`).

Windows and short users: GRUPolicy has no padding token, so a window is only cut where T real
items are available (no padding ever enters training). A user whose training prefix is shorter
than T contributes no window to the GRU/EB-SeqGAN training set (the count is reported by
:func:`training_windows`), but is still evaluated — at scoring time the GRU simply reads the
shorter history after its start token — and the popularity and Markov baselines train on every
transition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from gan_equiv.checks import non_negative_int, positive_int
from gan_equiv.recsys.logs import IdMap, InteractionLog, Ragged, UserSequences, runs_at

#: Percentiles of the per-user sequence length reported by :func:`summarize`.
PERCENTILES = (0, 25, 50, 75, 90, 100)


@dataclass(frozen=True)
class LogSummary:
    """Size and shape of an interaction log.

    Attributes:
        n_users, n_items, n_interactions: counts.
        density: interactions / (users · items).
        mean_length: mean interactions per user.
        length_percentiles: {p: p-th percentile of the per-user length} for p in PERCENTILES.
        tie_share: share of interactions whose timestamp equals that of another interaction of the
            same user (their order comes from the tie rule: original line order).
        repeat_share: share of interactions repeating an earlier (user, item) pair.
    """

    n_users: int
    n_items: int
    n_interactions: int
    density: float
    mean_length: float
    length_percentiles: dict[int, float] = field(default_factory=dict)
    tie_share: float = 0.0
    repeat_share: float = 0.0

    def format(self) -> str:
        """One line per quantity, for printing."""
        pct = ", ".join(f"p{p}={v:g}" for p, v in self.length_percentiles.items())
        return (
            f"users {self.n_users}, items {self.n_items}, interactions {self.n_interactions} "
            f"(density {self.density:.4f})\n"
            f"sequence length: mean {self.mean_length:.1f}; {pct}\n"
            f"timestamp ties: {100 * self.tie_share:.2f}% of interactions; "
            f"repeated (user, item) pairs: {100 * self.repeat_share:.2f}%"
        )


def _summary(user: np.ndarray, item: np.ndarray, time: np.ndarray) -> LogSummary:
    n = int(user.size)
    if n == 0:
        return LogSummary(0, 0, 0, 0.0, 0.0, {p: 0.0 for p in PERCENTILES}, 0.0, 0.0)
    counts = np.bincount(user)  # user and item are codes (non-negative ints)
    lengths = counts[counts > 0]
    n_items = int(np.count_nonzero(np.bincount(item)))
    order = np.lexsort((time, user))
    u, t = user[order], time[order]
    same = (u[1:] == u[:-1]) & (t[1:] == t[:-1])
    tied = np.zeros(n, dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    pair = np.sort(user.astype(np.int64) * (int(item.max()) + 1) + item)  # (n,) one key per (user, item)
    pairs = 1 + int(np.count_nonzero(pair[1:] != pair[:-1]))  # distinct (user, item) pairs
    return LogSummary(
        n_users=int(lengths.size),
        n_items=n_items,
        n_interactions=n,
        density=n / (lengths.size * n_items),
        mean_length=float(lengths.mean()),
        length_percentiles={
            p: float(v) for p, v in zip(PERCENTILES, np.percentile(lengths, PERCENTILES), strict=True)
        },
        tie_share=float(tied.mean()),
        repeat_share=(n - pairs) / n,
    )


def filter_min_rating(log: InteractionLog, *, min_rating: float) -> InteractionLog:
    """Keep the interactions with rating ≥ ``min_rating`` (e.g. 4 for "liked" on a 1–5 scale)."""
    if log.rating is None:
        raise ValueError(f"min_rating={min_rating} needs ratings, but {log.source or 'the log'} has none")
    return log.subset(log.rating >= min_rating)


def k_core(
    log: InteractionLog, *, min_user: int = 5, min_item: int = 5, max_rounds: int = 1000
) -> InteractionLog:
    """Repeatedly drop users with < ``min_user`` and items with < ``min_item`` interactions until stable.

    Counts are interactions (repeats count). The result is the largest sub-log in which every user
    and every item meets its threshold (possibly empty).
    """
    keep = np.ones(len(log), dtype=bool)
    n_u, n_i = len(log.user_tokens), len(log.item_tokens)
    for _ in range(max_rounds):
        u_count = np.bincount(log.user[keep], minlength=n_u)
        i_count = np.bincount(log.item[keep], minlength=n_i)
        new = keep & (u_count[log.user] >= min_user) & (i_count[log.item] >= min_item)
        if np.array_equal(new, keep):
            return log.subset(keep)
        keep = new
    raise RuntimeError(f"k-core did not converge in {max_rounds} rounds")


def _contiguous(codes: np.ndarray, n_codes: int) -> tuple[np.ndarray, np.ndarray]:
    """(the codes present, ascending; each code's rank among them) — ``np.unique(codes,
    return_inverse=True)`` by counting instead of sorting (codes lie in 0 … n_codes−1)."""
    present = np.bincount(codes, minlength=n_codes) > 0
    rank = np.cumsum(present) - 1
    return np.flatnonzero(present), rank[codes].astype(np.int64)


def chronological(user: np.ndarray, time: np.ndarray, line: np.ndarray) -> np.ndarray:
    """The order of the rows by user, then time, then file line: int64 (n,).

    Rows already in file order with whole-number timestamps (the usual case) sort on one int64
    key user·span + (t − t_min) with a stable sort, which keeps file order within ties; otherwise
    a three-key ``lexsort``. Both give the same order.
    """
    if time.size and np.all(line[1:] > line[:-1]):  # file order: a stable sort keeps it for ties
        lo, hi = float(time.min()), float(time.max())
        span, n_users = hi - lo + 1, int(user.max()) + 1
        if span * n_users < 2**62 and np.array_equal(time, np.floor(time)):
            key = user.astype(np.int64) * int(span) + (time - lo).astype(np.int64)  # (n,)
            return np.argsort(key, kind="stable")
        return np.lexsort((time, user))
    return np.lexsort((line, time, user))


def build_sequences(log: InteractionLog) -> UserSequences:
    """Per-user chronological sequences; equal timestamps keep file order; ids made contiguous.

    Users and items keep the order of their first appearance in the file, so the ids do not depend
    on which rows a filter removed before them, only on the surviving rows.
    """
    if len(log) == 0:
        raise ValueError(f"no interactions left in {log.source or 'the log'} (filters removed everything?)")
    user_codes, user = _contiguous(log.user, len(log.user_tokens))
    item_codes, item = _contiguous(log.item, len(log.item_tokens))
    order = chronological(user, log.timestamp, log.line)
    lengths = np.bincount(user, minlength=user_codes.size)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    seqs = Ragged(item[order].astype(np.int64), offsets, log.timestamp[order])
    return UserSequences(
        seqs=seqs,
        users=IdMap(tuple(log.user_tokens[c] for c in user_codes)),
        items=IdMap(tuple(log.item_tokens[c] for c in item_codes)),
        source=log.source,
    )


def preprocess(
    log: InteractionLog, *, min_rating: float | None = None, min_user: int = 0, min_item: int = 0
) -> UserSequences:
    """Rating threshold (optional), then k-core filtering, then :func:`build_sequences`.

    A filter that leaves no interaction is a ValueError naming its value and the fix.
    """
    source, n_read = log.source or "the log", len(log)
    if min_rating is not None:
        log = filter_min_rating(log, min_rating=min_rating)
        if len(log) == 0:
            raise ValueError(
                f"no interaction of {source} has a rating >= {min_rating} ({n_read} read); "
                "lower --min-rating or leave it out"
            )
    if min_user > 1 or min_item > 1:
        n_before = len(log)
        log = k_core(log, min_user=max(min_user, 1), min_item=max(min_item, 1))
        if len(log) == 0:
            raise ValueError(
                f"the k-core filter (users >= {min_user}, items >= {min_item} interactions, repeated until "
                f"stable) removed all {n_before} interactions of {source}; lower --k-core (0 = no filter)"
            )
    return build_sequences(log)


def summarize(data: InteractionLog | UserSequences) -> LogSummary:
    """Users, items, interactions, length percentiles, timestamp-tie and repeat shares of a log."""
    if isinstance(data, UserSequences):
        return _summary(data.seqs.row_ids(), data.seqs.values, data.seqs.times)
    return _summary(data.user, data.item, data.timestamp)


@dataclass(frozen=True)
class TailSplit:
    """Per-user chronological split: train prefix, then ``n_valid`` validation, then ``n_test`` test items.

    Attributes:
        train, valid, test: Ragged rows, one per kept user (with timestamps).
        users: row of each kept user in the source :class:`UserSequences`.
        n_dropped: users left out for having fewer than n_valid + n_test + min_train items.
    """

    train: Ragged
    valid: Ragged
    test: Ragged
    users: np.ndarray
    n_dropped: int

    def history(self, part: Literal["valid", "test"]) -> Ragged:
        """What precedes ``part``: the train prefix (valid) or train + valid (test)."""
        return self.train if part == "valid" else self.train.concat(self.valid)


def split_tail(seqs: UserSequences, *, n_valid: int = 1, n_test: int = 1, min_train: int = 1) -> TailSplit:
    """Hold out the last ``n_test`` items (test) and the ``n_valid`` before them (validation).

    Users with fewer than ``n_valid + n_test + min_train`` items are dropped (counted). Everything
    in train precedes (in time, ties by file order) everything in validation, which precedes test.
    """
    non_negative_int(n_valid, "n_valid")
    positive_int(n_test, "n_test", hint="the test part holds at least one item")
    positive_int(min_train, "min_train")
    lengths = seqs.seqs.lengths
    kept = np.flatnonzero(lengths >= n_valid + n_test + min_train)
    rows = seqs.seqs.take(kept)
    pos_from_end = np.repeat(rows.lengths, rows.lengths) - rows.positions()  # 1 = last item
    parts = {
        "test": pos_from_end <= n_test,
        "valid": (pos_from_end > n_test) & (pos_from_end <= n_test + n_valid),
        "train": pos_from_end > n_test + n_valid,
    }
    row_ids = rows.row_ids()
    out: dict[str, Ragged] = {}
    for name, mask in parts.items():
        counts = np.bincount(row_ids[mask], minlength=kept.size)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        out[name] = Ragged(rows.values[mask], offsets, rows.times[mask] if rows.times is not None else None)
    return TailSplit(out["train"], out["valid"], out["test"], kept, int(lengths.size - kept.size))


def leave_one_out(seqs: UserSequences) -> TailSplit:
    """The standard leave-one-out split: last item = test, second last = validation, rest = train."""
    return split_tail(seqs, n_valid=1, n_test=1)


@dataclass(frozen=True)
class Windows:
    """Training windows of length T: ``items`` int64 (N, T); ``rows`` the source row of each;
    ``n_short_rows`` rows shorter than T (no window)."""

    items: np.ndarray
    rows: np.ndarray
    n_short_rows: int


def training_windows(train: Ragged, *, horizon: int, stride: int = 1) -> Windows:
    """Windows of ``horizon`` consecutive items from each row, starting every ``stride`` items.

    A row of length L ≥ T gives windows starting at 0, stride, 2·stride, … ≤ L−T, plus the window
    ending at the last item when the stride skips it; rows with L < T give none (no padding).
    """
    positive_int(horizon, "horizon")
    positive_int(stride, "stride")
    lengths = train.lengths
    n_start = np.where(lengths >= horizon, (lengths - horizon) // stride + 1, 0)
    rows = np.repeat(np.arange(train.n_rows), n_start)
    k = np.arange(rows.size) - np.repeat(np.cumsum(n_start) - n_start, n_start)
    starts = train.offsets[rows] + k * stride
    # add the window that ends at the row's last item where the stride does not land on it
    tail = np.flatnonzero((lengths >= horizon) & ((lengths - horizon) % stride != 0))
    rows = np.concatenate([rows, tail])
    starts = np.concatenate([starts, train.offsets[tail + 1] - horizon])
    order = np.lexsort((starts, rows))
    rows, starts = rows[order], starts[order]
    return Windows(runs_at(train.values, starts, horizon), rows, int((lengths < horizon).sum()))
