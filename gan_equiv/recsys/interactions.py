"""Real interaction logs for sequential recommendation: streaming loaders and preprocessing.

Loaders (each reads the file line by line; a malformed row raises :class:`InteractionFormatError`
naming the file and the 1-based physical line number):

- :func:`read_recbole` — RecBole atomic ``.inter`` files: tab-separated, a header of ``name:type``
  fields (``user_id:token item_id:token rating:float timestamp:float``), extra columns ignored;
- :func:`read_movielens` — MovieLens ``u.data``: ``user item rating timestamp`` per line, no header
  (tab-separated; ``sep="::"`` reads ML-1M/10M ``ratings.dat``);
- :func:`read_csv` — a generic delimited file with a header naming the user, item, timestamp and
  (optionally) rating columns; timestamps numeric, or ISO 8601 with ``time_format="iso"``.

:func:`load_interactions` dispatches on ``fmt``; :func:`write_interactions` writes any of the three
formats (round trips are tested); :func:`synthetic_log` makes a small log with learnable sequential
structure for tests and smoke runs. Blank lines are skipped everywhere.

Preprocessing: :func:`filter_min_rating`, :func:`k_core` (repeated until stable), then
:func:`build_sequences` — chronological per-user sequences (ties in timestamps keep the original
line order), contiguous item ids 0 … V−1 with the mapping kept in both directions (:class:`IdMap`).
:func:`split_tail` holds out the last items of every user (:func:`leave_one_out`: last = test,
second last = validation, the rest = train) and :func:`training_windows` cuts the training prefixes
into windows of length T.

Windows and short users: GRUPolicy has no padding token, so a window is only cut where T real
items are available (no padding ever enters training). A user whose training prefix is shorter
than T contributes no window to the GRU/EB-SeqGAN training set (the count is reported by
:func:`training_windows`), but is still evaluated — at scoring time the GRU simply reads the
shorter history after its start token — and the popularity and Markov baselines train on every
transition. Summaries are :class:`LogSummary` dataclasses (:func:`summarize`).
"""

from __future__ import annotations

import csv
import datetime as _dt
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

Format = Literal["recbole", "movielens", "csv"]
FORMATS: tuple[str, ...] = ("recbole", "movielens", "csv")
#: RecBole atomic-file field types.
RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
#: Percentiles of the per-user sequence length reported by :func:`summarize`.
PERCENTILES = (0, 25, 50, 75, 90, 100)


class InteractionFormatError(ValueError):
    """A malformed interaction file: the message names the file and the 1-based line number."""

    def __init__(self, path: str | Path, line: int, problem: str) -> None:
        super().__init__(f"{path}, line {line}: {problem}")
        self.path = str(path)
        self.line = int(line)
        self.problem = problem


# =============================================================================================
# Raw interaction logs
# =============================================================================================


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


class _Collector:
    """Accumulates parsed rows and assigns token codes in order of first appearance."""

    def __init__(self, path: str | Path, *, with_rating: bool) -> None:
        self.path = path
        self.users: dict[str, int] = {}
        self.items: dict[str, int] = {}
        self.u: list[int] = []
        self.i: list[int] = []
        self.t: list[float] = []
        self.r: list[float] | None = [] if with_rating else None
        self.lines: list[int] = []

    def number(self, text: str, what: str, line: int) -> float:
        """``text`` as a finite float, or an error naming the line."""
        try:
            value = float(text)
        except ValueError:
            raise InteractionFormatError(
                self.path, line, f"{what} {text!r} is not a number; give a numeric {what}"
            ) from None
        if not math.isfinite(value):
            raise InteractionFormatError(self.path, line, f"{what} {text!r} is not finite")
        return value

    def add(self, line: int, user: str, item: str, time: float, rating: float | None) -> None:
        """Append one row (ids stripped; empty ids are errors naming the line)."""
        user, item = user.strip(), item.strip()
        if not user:
            raise InteractionFormatError(self.path, line, "empty user id")
        if not item:
            raise InteractionFormatError(self.path, line, "empty item id")
        self.u.append(self.users.setdefault(user, len(self.users)))
        self.i.append(self.items.setdefault(item, len(self.items)))
        self.t.append(time)
        if self.r is not None:
            self.r.append(float("nan") if rating is None else rating)
        self.lines.append(line)

    def build(self, end_line: int) -> InteractionLog:
        """The log; ``end_line`` (the line after the last one read) is named if there are no rows."""
        if not self.u:
            raise InteractionFormatError(self.path, end_line, "the file has no interactions")
        return InteractionLog(
            user=np.asarray(self.u, dtype=np.int64),
            item=np.asarray(self.i, dtype=np.int64),
            timestamp=np.asarray(self.t, dtype=np.float64),
            rating=None if self.r is None else np.asarray(self.r, dtype=np.float64),
            line=np.asarray(self.lines, dtype=np.int64),
            user_tokens=tuple(self.users),
            item_tokens=tuple(self.items),
            source=str(self.path),
        )


def _lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text without the line break) for each line, streamed."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"interaction file {str(p)!r} does not exist")
    with p.open(encoding="utf-8-sig", newline="") as handle:
        for number, text in enumerate(handle, start=1):
            yield number, text.rstrip("\r\n")


def read_recbole(
    path: str | Path,
    *,
    user_field: str = "user_id",
    item_field: str = "item_id",
    time_field: str = "timestamp",
    rating_field: str | None = "rating",
) -> InteractionLog:
    """Read a RecBole atomic ``.inter`` file (tab-separated, header of ``name:type`` fields).

    The user, item and timestamp fields are required; the rating field is read when the header
    has it (``rating_field=None`` ignores it). Other columns are ignored. Errors name the line.
    """
    rows = _lines(path)
    first = next(((n, t) for n, t in rows if t.strip()), None)
    if first is None:
        raise InteractionFormatError(path, 1, "empty file: expected a header such as 'user_id:token\\t…'")
    number, header = first
    names: list[str] = []
    for col in header.split("\t"):
        name, sep, kind = col.strip().partition(":")
        if not sep or not name:
            raise InteractionFormatError(
                path, number, f"header field {col!r} is not 'name:type' (RecBole atomic header)"
            )
        if kind not in RECBOLE_TYPES:
            raise InteractionFormatError(
                path, number, f"header field {col!r} has unknown type {kind!r}; use one of {RECBOLE_TYPES}"
            )
        if name in names:
            raise InteractionFormatError(path, number, f"header field {name!r} appears twice")
        names.append(name)
    for need in (user_field, item_field, time_field):
        if need not in names:
            raise InteractionFormatError(
                path, number, f"required field {need!r} is missing from the header (fields: {names})"
            )
    iu, ii, it = names.index(user_field), names.index(item_field), names.index(time_field)
    ir = names.index(rating_field) if rating_field is not None and rating_field in names else None
    out = _Collector(path, with_rating=ir is not None)
    end = number + 1
    for number, text in rows:
        end = number + 1
        if not text.strip():
            continue
        fields = text.split("\t")
        if len(fields) != len(names):
            raise InteractionFormatError(
                path, number, f"expected {len(names)} tab-separated fields (header), got {len(fields)}"
            )
        time = out.number(fields[it].strip(), "timestamp", number)
        rating = None if ir is None else out.number(fields[ir].strip(), "rating", number)
        out.add(number, fields[iu], fields[ii], time, rating)
    return out.build(end)


def read_movielens(path: str | Path, *, sep: str = "\t") -> InteractionLog:
    """Read MovieLens ``u.data``: ``user item rating timestamp`` per line, no header.

    ``sep`` is the field separator (``"\\t"`` for ML-100K, ``"::"`` for ML-1M/10M ``ratings.dat``).
    """
    out = _Collector(path, with_rating=True)
    end = 1
    for number, text in _lines(path):
        end = number + 1
        if not text.strip():
            continue
        fields = text.split(sep)
        if len(fields) != 4:
            raise InteractionFormatError(
                path,
                number,
                f"expected 4 fields (user, item, rating, timestamp) separated by {sep!r}, got {len(fields)}",
            )
        rating = out.number(fields[2].strip(), "rating", number)
        time = out.number(fields[3].strip(), "timestamp", number)
        out.add(number, fields[0], fields[1], time, rating)
    return out.build(end)


def _iso_seconds(text: str) -> float:
    stamp = _dt.datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_dt.timezone.utc)
    return stamp.timestamp()


def read_csv(
    path: str | Path,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str = "timestamp",
    rating_col: str | None = None,
    delimiter: str = ",",
    time_format: Literal["numeric", "iso"] = "numeric",
) -> InteractionLog:
    """Read a delimited file whose header names the user, item, timestamp (and rating) columns.

    Quoted fields follow the ``csv`` module's rules. Timestamps are numbers, or ISO 8601 strings
    with ``time_format="iso"`` (naive times are taken as UTC; the value is POSIX seconds).
    """
    if time_format not in ("numeric", "iso"):
        raise ValueError(f"time_format must be 'numeric' or 'iso', got {time_format!r}")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"interaction file {str(p)!r} does not exist")
    convert = float if time_format == "numeric" else _iso_seconds
    with p.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
        if header is None:
            raise InteractionFormatError(path, max(reader.line_num, 1), "empty file: expected a header row")
        header_line = reader.line_num
        names = [h.strip() for h in header]
        wanted = [user_col, item_col, time_col] + ([rating_col] if rating_col else [])
        for need in wanted:
            if need not in names:
                raise InteractionFormatError(
                    path,
                    header_line,
                    f"required column {need!r} is missing from the header (columns: {names})",
                )
        iu, ii, it = names.index(user_col), names.index(item_col), names.index(time_col)
        ir = names.index(rating_col) if rating_col else None
        out = _Collector(path, with_rating=ir is not None)
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                raise InteractionFormatError(
                    path, number, f"expected {len(names)} fields ({delimiter!r}-separated), got {len(row)}"
                )
            what = "timestamp" if time_format == "numeric" else "ISO 8601 timestamp"
            try:
                time = convert(row[it].strip())
            except ValueError:
                raise InteractionFormatError(
                    path,
                    number,
                    f"{what} {row[it]!r} cannot be parsed; give a numeric timestamp"
                    + (" or set time_format='iso'" if time_format == "numeric" else ""),
                ) from None
            if not math.isfinite(time):
                raise InteractionFormatError(path, number, f"timestamp {row[it]!r} is not finite")
            rating = None if ir is None else out.number(row[ir].strip(), "rating", number)
            out.add(number, row[iu], row[ii], time, rating)
        return out.build(reader.line_num + 1)


def load_interactions(
    path: str | Path,
    *,
    fmt: Format,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str = "timestamp",
    rating_col: str | None = None,
    delimiter: str | None = None,
    time_format: Literal["numeric", "iso"] = "numeric",
) -> InteractionLog:
    """Read an interaction file in format ``fmt`` (``recbole`` | ``movielens`` | ``csv``).

    Column names apply to ``recbole`` (field names, rating defaults to ``rating`` if present) and
    ``csv`` (column names); ``delimiter`` applies to ``movielens`` (default tab) and ``csv``
    (default comma).
    """
    if fmt == "recbole":
        return read_recbole(
            path,
            user_field=user_col,
            item_field=item_col,
            time_field=time_col,
            rating_field=rating_col or "rating",
        )
    if fmt == "movielens":
        return read_movielens(path, sep=delimiter or "\t")
    if fmt == "csv":
        return read_csv(
            path,
            user_col=user_col,
            item_col=item_col,
            time_col=time_col,
            rating_col=rating_col,
            delimiter=delimiter or ",",
            time_format=time_format,
        )
    raise ValueError(f"unknown format {fmt!r}; use one of {FORMATS}")


def _number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 2**53 else repr(float(x))


def write_interactions(
    log: InteractionLog, path: str | Path, *, fmt: Format, delimiter: str | None = None
) -> Path:
    """Write ``log`` in format ``fmt`` (the inverse of the matching reader; rows in log order).

    ``recbole``: header ``user_id:token item_id:token [rating:float] timestamp:float``;
    ``movielens``: ``user item rating timestamp`` (needs ratings); ``csv``: header
    ``user_id,item_id[,rating],timestamp``.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    users = np.asarray(log.user_tokens, dtype=object)[log.user]
    items = np.asarray(log.item_tokens, dtype=object)[log.item]
    times = [_number_text(t) for t in log.timestamp]
    ratings = None if log.rating is None else [_number_text(r) for r in log.rating]
    if fmt == "movielens":
        if ratings is None:
            raise ValueError("the MovieLens format needs ratings; this log has none")
        sep = delimiter or "\t"
        text = "".join(
            f"{u}{sep}{i}{sep}{r}{sep}{t}\n" for u, i, r, t in zip(users, items, ratings, times, strict=True)
        )
        p.write_text(text, encoding="utf-8")
        return p
    if fmt == "recbole":
        head = (
            ["user_id:token", "item_id:token"] + (["rating:float"] if ratings else []) + ["timestamp:float"]
        )
        rows = zip(users, items, *([ratings] if ratings else []), times, strict=True)
        p.write_text("\t".join(head) + "\n" + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
        return p
    if fmt == "csv":
        with p.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter=delimiter or ",")
            writer.writerow(["user_id", "item_id"] + (["rating"] if ratings else []) + ["timestamp"])
            writer.writerows(zip(users, items, *([ratings] if ratings else []), times, strict=True))
        return p
    raise ValueError(f"unknown format {fmt!r}; use one of {FORMATS}")


def synthetic_log(
    *,
    n_users: int = 60,
    n_items: int = 40,
    min_length: int = 12,
    max_length: int = 30,
    successors: int = 3,
    tie_rate: float = 0.1,
    seed: int = 0,
) -> InteractionLog:
    """A small log with sequential structure: each item has ``successors`` likely next items.

    Every user walks a random sparse Markov chain (90% of the mass on the successors, the rest
    uniform) without repeating an item, for a length drawn in [min_length, max_length]. Timestamps
    increase by random gaps, and with probability ``tie_rate`` a gap is 0 (a tie); ratings are
    1…5. Rows are shuffled, so file order differs from time order. User/item tokens are "u7"/"i3".
    """
    if not 1 <= min_length <= max_length <= n_items:
        raise ValueError(
            f"need 1 <= min_length <= max_length <= n_items, got {min_length}, {max_length}, {n_items}"
        )
    rng = np.random.default_rng(seed)
    probs = np.full((n_items, n_items), 0.1 / n_items)
    succ = np.stack([rng.choice(n_items, size=successors, replace=False) for _ in range(n_items)])
    np.put_along_axis(probs, succ, probs[0, 0] + 0.9 / successors, axis=1)
    lengths = rng.integers(min_length, max_length + 1, size=n_users)
    seqs = np.zeros((n_users, max_length), dtype=np.int64)
    seen = np.zeros((n_users, n_items), dtype=bool)
    current = rng.integers(n_items, size=n_users)
    for t in range(max_length):  # steps, vectorized over users
        if t:
            p = np.where(seen, 0.0, probs[current])
            cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
            current = np.minimum((cdf < rng.random((n_users, 1))).sum(axis=1), n_items - 1)
        seqs[:, t] = current
        seen[np.arange(n_users), current] = True
    valid = np.arange(max_length)[None, :] < lengths[:, None]
    user = np.repeat(np.arange(n_users), lengths)
    item = seqs[valid]
    gaps = rng.integers(1, 10_000, size=(n_users, max_length)) * (
        rng.random((n_users, max_length)) >= tie_rate
    )
    times = 880_000_000 + rng.integers(0, 10**6, size=(n_users, 1)) + np.cumsum(gaps, axis=1)
    flat_t = times[valid].astype(np.float64)
    # Shuffle the rows, but let the rows of a tie (same user and time) occupy their file positions
    # in generation order, so the file-order tie rule recovers the generated sequences exactly.
    pos = rng.permutation(user.size)  # file position of each row
    gen = np.arange(user.size)
    by_pos = np.lexsort((pos, flat_t, user))
    by_gen = np.lexsort((gen, flat_t, user))
    new_pos = np.empty_like(pos)
    new_pos[by_gen] = pos[by_pos]
    order = np.argsort(new_pos)
    return InteractionLog(
        user=user[order],
        item=item[order],
        timestamp=flat_t[order],
        rating=rng.integers(1, 6, size=user.size)[order].astype(np.float64),
        line=np.arange(1, user.size + 1, dtype=np.int64),
        user_tokens=tuple(f"u{u}" for u in range(n_users)),
        item_tokens=tuple(f"i{i}" for i in range(n_items)),
        source=f"synthetic(n_users={n_users}, n_items={n_items}, seed={seed})",
    )


# =============================================================================================
# Summary
# =============================================================================================


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
    _, lengths = np.unique(user, return_counts=True)
    n_items = int(np.unique(item).size)
    order = np.lexsort((time, user))
    u, t = user[order], time[order]
    same = (u[1:] == u[:-1]) & (t[1:] == t[:-1])
    tied = np.zeros(n, dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    pairs = np.unique(np.stack([user, item], axis=1), axis=0).shape[0]
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


# =============================================================================================
# Preprocessing
# =============================================================================================


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
        pos = self.positions()
        col = w - np.repeat(lengths, lengths) + pos
        ok = col >= 0
        out[self.row_ids()[ok], col[ok]] = self.values[ok]
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


def build_sequences(log: InteractionLog) -> UserSequences:
    """Per-user chronological sequences; equal timestamps keep file order; ids made contiguous.

    Users and items keep the order of their first appearance in the file, so the ids do not depend
    on which rows a filter removed before them, only on the surviving rows.
    """
    if len(log) == 0:
        raise ValueError(f"no interactions left in {log.source or 'the log'} (filters removed everything?)")
    user_codes, user = np.unique(log.user, return_inverse=True)
    item_codes, item = np.unique(log.item, return_inverse=True)
    order = np.lexsort((log.line, log.timestamp, user))  # user, then time, then file line
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
    """Rating threshold (optional), then k-core filtering, then :func:`build_sequences`."""
    if min_rating is not None:
        log = filter_min_rating(log, min_rating=min_rating)
    if min_user > 1 or min_item > 1:
        log = k_core(log, min_user=max(min_user, 1), min_item=max(min_item, 1))
    return build_sequences(log)


def summarize(data: InteractionLog | UserSequences) -> LogSummary:
    """Users, items, interactions, length percentiles, timestamp-tie and repeat shares of a log."""
    if isinstance(data, UserSequences):
        return _summary(data.seqs.row_ids(), data.seqs.values, data.seqs.times)
    return _summary(data.user, data.item, data.timestamp)


# =============================================================================================
# Splits and windows
# =============================================================================================


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
    if n_valid < 0 or n_test < 1 or min_train < 1:
        raise ValueError(
            f"need n_valid >= 0, n_test >= 1, min_train >= 1; got {n_valid}, {n_test}, {min_train}"
        )
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
    if horizon < 1 or stride < 1:
        raise ValueError(f"horizon and stride must be >= 1, got {horizon}, {stride}")
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
    items = train.values[starts[:, None] + np.arange(horizon)[None, :]].reshape(-1, horizon)
    return Windows(items.astype(np.int64), rows, int((lengths < horizon).sum()))
