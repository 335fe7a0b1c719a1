"""The streaming parser of interaction rows: one line at a time, the first bad line named.

:func:`parse_rows` is the reference every reader of :mod:`gan_equiv.recsys.readers` falls back on
when the columnar fast path (:mod:`gan_equiv.recsys.columnar`) declines a file: it accepts the same
rows and returns the same :class:`~gan_equiv.recsys.logs.InteractionLog`, and for a malformed row
it raises :class:`~gan_equiv.recsys.textfiles.InteractionFormatError` naming the file, the 1-based
physical line and the fix. It is also the ``engine="python"`` of the readers.
"""

from __future__ import annotations

import csv
import datetime as _dt
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from gan_equiv.recsys.columnar import ColumnLayout
from gan_equiv.recsys.logs import InteractionLog
from gan_equiv.recsys.textfiles import InteractionFormatError, text_lines


def split_rows(
    data: bytes, path: str | Path, *, start: int, first_line: int, sep: str, quotes: bool
) -> Iterator[tuple[int, list[str]]]:
    """(physical line, fields) of every non-blank row from byte ``start`` (line ``first_line``).

    Without ``quotes`` a row is its line split at ``sep``; with them the ``csv`` module's quoting
    rules apply and the line is the one a row ends on. Blank rows are skipped.
    """
    lines = text_lines(data, path, start=start, first_line=first_line)
    if not quotes:
        for number, text in lines:
            text = text.rstrip("\n")
            if text.strip():
                yield number, text.split(sep)
        return
    reader = csv.reader((text for _, text in lines), delimiter=sep)
    for row in reader:
        if any(cell.strip() for cell in row):
            yield first_line - 1 + reader.line_num, row


def line_count(data: bytes) -> int:
    """Number of lines of ``data`` (a last line without a break counts)."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _number(path: str | Path, line: int, text: str, what: str, hint: str = "") -> float:
    """``text`` as a finite float, or an error naming the line."""
    try:
        value = float(text)
    except ValueError:
        raise InteractionFormatError(
            path, line, f"{what} {text!r} is not a number; give a numeric {what}{hint}"
        ) from None
    if not math.isfinite(value):
        raise InteractionFormatError(path, line, f"{what} {text!r} is not finite; give a finite {what}")
    return value


def _iso(path: str | Path, line: int, text: str) -> float:
    """POSIX seconds of an ISO 8601 timestamp (naive = UTC), or an error naming the line."""
    try:
        stamp = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise InteractionFormatError(
            path, line, f"ISO 8601 timestamp {text!r} cannot be parsed; give e.g. 2020-01-31T12:00:00"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_dt.timezone.utc)
    return stamp.timestamp()


def parse_rows(
    rows: Iterator[tuple[int, list[str]]],
    *,
    path: str | Path,
    layout: ColumnLayout,
    fields_message: str,
    end_line: int,
) -> InteractionLog:
    """The log of ``rows`` (from :func:`split_rows`); token codes in order of first appearance.

    A row must have ``layout.n_fields`` fields (else ``fields_message`` with ``{got}`` filled in);
    ids are stripped and must not be empty; the timestamp and rating (checked in field order)
    must be finite numbers, or ISO 8601 timestamps with ``layout.iso_time``. ``end_line`` is named
    when there is no row at all.
    """
    users: dict[str, int] = {}
    items: dict[str, int] = {}
    u: list[int] = []
    i: list[int] = []
    t: list[float] = []
    r: list[float] = []
    lines: list[int] = []
    hint = " (or time_format='iso' for ISO 8601 dates)" if layout.quotes and not layout.iso_time else ""
    numbers = sorted(
        [(layout.time, "timestamp")] + ([(layout.rating, "rating")] if layout.rating is not None else [])
    )
    for number, fields in rows:
        if len(fields) != layout.n_fields:
            raise InteractionFormatError(path, number, fields_message.format(got=len(fields)))
        user, item = fields[layout.user].strip(), fields[layout.item].strip()
        if not user:
            raise InteractionFormatError(path, number, "empty user id; give every row a user")
        if not item:
            raise InteractionFormatError(path, number, "empty item id; give every row an item")
        values = {}
        for col, what in numbers:
            text = fields[col].strip()
            if what == "timestamp" and layout.iso_time:
                values[what] = _iso(path, number, text)
            else:
                values[what] = _number(path, number, text, what, hint if what == "timestamp" else "")
        u.append(users.setdefault(user, len(users)))
        i.append(items.setdefault(item, len(items)))
        t.append(values["timestamp"])
        if layout.rating is not None:
            r.append(values["rating"])
        lines.append(number)
    if not u:
        raise InteractionFormatError(
            path, end_line, "the file has no interactions; add rows after the header"
        )
    return InteractionLog(
        user=np.asarray(u, dtype=np.int64),
        item=np.asarray(i, dtype=np.int64),
        timestamp=np.asarray(t, dtype=np.float64),
        rating=None if layout.rating is None else np.asarray(r, dtype=np.float64),
        line=np.asarray(lines, dtype=np.int64),
        user_tokens=tuple(users),
        item_tokens=tuple(items),
        source=str(path),
    )
