"""Interaction-log files: streaming readers with line-numbered errors, and the matching writer.

Readers (each reads the file line by line; a malformed row raises :class:`InteractionFormatError`
naming the file and the 1-based physical line number):

- :func:`read_recbole` — RecBole atomic ``.inter`` files: tab-separated, a header of ``name:type``
  fields (``user_id:token item_id:token rating:float timestamp:float``), extra columns ignored;
- :func:`read_movielens` — MovieLens ``u.data``: ``user item rating timestamp`` per line, no header
  (tab-separated; ``sep="::"`` reads ML-1M/10M ``ratings.dat``);
- :func:`read_csv` — a generic delimited file with a header naming the user, item, timestamp and
  (optionally) rating columns; timestamps numeric, or ISO 8601 with ``time_format="iso"``.

:class:`LogSource` names a file, its format and its columns (the ``evaluate`` command's data
options); :func:`load_interactions` reads one. :func:`write_interactions` writes any of the three
formats (round trips are tested). Blank lines are skipped everywhere.
"""

from __future__ import annotations

import csv
import datetime as _dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from gan_equiv.checks import choice
from gan_equiv.recsys.logs import InteractionLog

Format = Literal["recbole", "movielens", "csv"]
TimeFormat = Literal["numeric", "iso"]
FORMATS: tuple[str, ...] = ("recbole", "movielens", "csv")
TIME_FORMATS: tuple[str, ...] = ("numeric", "iso")
#: RecBole atomic-file field types.
RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
#: Standard column (field) names of the user, item, timestamp and rating.
USER_COL, ITEM_COL, TIME_COL, RATING_COL = "user_id", "item_id", "timestamp", "rating"
#: Field separators of the formats that have one by default.
DEFAULT_DELIMITER = {"movielens": "\t", "csv": ","}


class InteractionFormatError(ValueError):
    """A malformed interaction file: the message names the file and the 1-based line number."""

    def __init__(self, path: str | Path, line: int, problem: str) -> None:
        super().__init__(f"{path}, line {line}: {problem}")
        self.path = str(path)
        self.line = int(line)
        self.problem = problem


@dataclass(frozen=True, kw_only=True)
class LogSource:
    """An interaction file and how to read it.

    Attributes:
        path: the file.
        fmt: ``recbole`` | ``movielens`` | ``csv``.
        user_col, item_col, time_col: field (recbole) or column (csv) names.
        rating_col: rating column (csv); recbole reads ``rating`` when the header has it.
        delimiter: field separator (default: tab for movielens, comma for csv).
        time_format: csv timestamps, ``numeric`` or ISO 8601 (``iso``).
    """

    path: str = ""
    fmt: Format = "recbole"
    user_col: str = USER_COL
    item_col: str = ITEM_COL
    time_col: str = TIME_COL
    rating_col: str | None = None
    delimiter: str | None = None
    time_format: TimeFormat = "numeric"

    def __post_init__(self) -> None:
        choice(self.fmt, "format", FORMATS)
        choice(self.time_format, "time_format", TIME_FORMATS)

    def load(self) -> InteractionLog:
        """Read the file with the reader of ``fmt``.

        Column names apply to ``recbole`` (field names; the rating field defaults to ``rating``
        when the header has it) and ``csv``; ``delimiter`` applies to ``movielens`` and ``csv``.
        """
        if self.fmt == "recbole":
            return read_recbole(
                self.path,
                user_field=self.user_col,
                item_field=self.item_col,
                time_field=self.time_col,
                rating_field=self.rating_col or RATING_COL,
            )
        sep = self.delimiter or DEFAULT_DELIMITER[self.fmt]
        if self.fmt == "movielens":
            return read_movielens(self.path, sep=sep)
        return read_csv(
            self.path,
            user_col=self.user_col,
            item_col=self.item_col,
            time_col=self.time_col,
            rating_col=self.rating_col,
            delimiter=sep,
            time_format=self.time_format,
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
    user_field: str = USER_COL,
    item_field: str = ITEM_COL,
    time_field: str = TIME_COL,
    rating_field: str | None = RATING_COL,
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


def read_movielens(path: str | Path, *, sep: str = DEFAULT_DELIMITER["movielens"]) -> InteractionLog:
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
    user_col: str = USER_COL,
    item_col: str = ITEM_COL,
    time_col: str = TIME_COL,
    rating_col: str | None = None,
    delimiter: str = DEFAULT_DELIMITER["csv"],
    time_format: TimeFormat = "numeric",
) -> InteractionLog:
    """Read a delimited file whose header names the user, item, timestamp (and rating) columns.

    Quoted fields follow the ``csv`` module's rules. Timestamps are numbers, or ISO 8601 strings
    with ``time_format="iso"`` (naive times are taken as UTC; the value is POSIX seconds).
    """
    choice(time_format, "time_format", TIME_FORMATS)
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


def load_interactions(path: str | Path, *, fmt: Format, **options: str | None) -> InteractionLog:
    """Read an interaction file in format ``fmt`` (``recbole`` | ``movielens`` | ``csv``).

    ``options`` are the other :class:`LogSource` fields (``user_col``, ``item_col``, ``time_col``,
    ``rating_col``, ``delimiter``, ``time_format``); see :meth:`LogSource.load`.
    """
    return LogSource(path=str(path), fmt=fmt, **options).load()  # type: ignore[arg-type]


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
    choice(fmt, "format", FORMATS)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    users = np.asarray(log.user_tokens, dtype=object)[log.user]
    items = np.asarray(log.item_tokens, dtype=object)[log.item]
    times = [_number_text(t) for t in log.timestamp]
    ratings = None if log.rating is None else [_number_text(r) for r in log.rating]
    if fmt == "movielens":
        if ratings is None:
            raise ValueError("the MovieLens format needs ratings; this log has none")
        sep = delimiter or DEFAULT_DELIMITER["movielens"]
        text = "".join(
            f"{u}{sep}{i}{sep}{r}{sep}{t}\n" for u, i, r, t in zip(users, items, ratings, times, strict=True)
        )
        p.write_text(text, encoding="utf-8")
        return p
    names = [USER_COL, ITEM_COL] + ([RATING_COL] if ratings else []) + [TIME_COL]
    rows = zip(users, items, *([ratings] if ratings else []), times, strict=True)
    if fmt == "recbole":
        head = [f"{n}:{'token' if n in (USER_COL, ITEM_COL) else 'float'}" for n in names]
        p.write_text("\t".join(head) + "\n" + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
        return p
    with p.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter or DEFAULT_DELIMITER["csv"])
        writer.writerow(names)
        writer.writerows(rows)
    return p
