"""Interaction-log files: columnar readers with line-numbered errors, and the matching writer.

Readers (plain or gzip files; a malformed row raises :class:`InteractionFormatError` naming the
file, the 1-based physical line number and the fix):

- :func:`read_recbole` — RecBole atomic ``.inter`` files: tab-separated, a header of ``name:type``
  fields (``user_id:token item_id:token rating:float timestamp:float``), extra columns ignored;
- :func:`read_movielens` — MovieLens ``u.data``: ``user item rating timestamp`` per line, no header
  (tab-separated; ``sep="::"`` reads ML-1M/10M ``ratings.dat``);
- :func:`read_csv` — a generic delimited file with a header naming the user, item, timestamp and
  (optionally) rating columns; timestamps numeric, or ISO 8601 with ``time_format="iso"``.

Each parses the header itself, then the rows with pandas' C parser
(:func:`gan_equiv.recsys.columnar.read_columns`); when that path declines a file (a bad row, or a
form only the streaming parser handles) the streaming parser of :mod:`gan_equiv.recsys.streaming`
reads the same bytes and names the first bad line. ``engine="python"`` uses the streaming parser
alone; both return the same log (tested on random files).

:class:`LogSource` names a file, its format and its columns (the ``evaluate`` command's data
options); :func:`load_interactions` reads one. :func:`write_interactions` writes any of the three
formats (round trips are tested). Blank lines are skipped everywhere.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from gan_equiv.checks import choice
from gan_equiv.recsys.columnar import ColumnLayout, read_columns
from gan_equiv.recsys.logs import InteractionLog
from gan_equiv.recsys.streaming import line_count, parse_rows, split_rows
from gan_equiv.recsys.textfiles import InteractionFormatError, first_content_line, is_verbatim, read_bytes

Format = Literal["recbole", "movielens", "csv"]
TimeFormat = Literal["numeric", "iso"]
Engine = Literal["pandas", "python"]
ENGINES: tuple[str, ...] = ("pandas", "python")
FORMATS: tuple[str, ...] = ("recbole", "movielens", "csv")
TIME_FORMATS: tuple[str, ...] = ("numeric", "iso")
#: RecBole atomic-file field types.
RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
#: Standard column (field) names of the user, item, timestamp and rating.
USER_COL, ITEM_COL, TIME_COL, RATING_COL = "user_id", "item_id", "timestamp", "rating"
#: Field separators of the formats that have one by default.
DEFAULT_DELIMITER = {"movielens": "\t", "csv": ","}


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

    def load(self, *, engine: Engine = "pandas") -> InteractionLog:
        """Read the file with the reader of ``fmt`` (``engine``: columnar ``pandas`` with the
        streaming parser as fallback, or the streaming ``python`` parser alone).

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
                engine=engine,
            )
        sep = self.delimiter or DEFAULT_DELIMITER[self.fmt]
        if self.fmt == "movielens":
            return read_movielens(self.path, sep=sep, engine=engine)
        return read_csv(
            self.path,
            user_col=self.user_col,
            item_col=self.item_col,
            time_col=self.time_col,
            rating_col=self.rating_col,
            delimiter=sep,
            time_format=self.time_format,
            engine=engine,
        )


def _read(
    data: bytes,
    path: str | Path,
    *,
    start: int,
    first_line: int,
    layout: ColumnLayout,
    fields_message: str,
    engine: Engine,
) -> InteractionLog:
    """The rows after byte ``start``: columnar first (``engine="pandas"``), the streaming parser
    when the columnar path declines (it names the first bad line) or with ``engine="python"``."""
    choice(engine, "engine", ENGINES)
    if engine == "pandas":
        file = str(path) if is_verbatim(path, data) else None
        log = read_columns(
            data, start=start, first_line=first_line, layout=layout, source=str(path), file=file
        )
        if log is not None:
            return log
    rows = split_rows(data, path, start=start, first_line=first_line, sep=layout.sep, quotes=layout.quotes)
    end = line_count(data) + 1
    return parse_rows(rows, path=path, layout=layout, fields_message=fields_message, end_line=end)


def read_recbole(
    path: str | Path,
    *,
    user_field: str = USER_COL,
    item_field: str = ITEM_COL,
    time_field: str = TIME_COL,
    rating_field: str | None = RATING_COL,
    engine: Engine = "pandas",
) -> InteractionLog:
    """Read a RecBole atomic ``.inter`` file (tab-separated, header of ``name:type`` fields).

    The user, item and timestamp fields are required; the rating field is read when the header
    has it (``rating_field=None`` ignores it). Other columns are ignored. Errors name the line.
    """
    data = read_bytes(path)
    first = first_content_line(data, path)
    if first is None:
        raise InteractionFormatError(path, 1, "empty file: expected a header such as 'user_id:token\\t…'")
    number, header, start = first
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
    layout = ColumnLayout(
        n_fields=len(names),
        sep="\t",
        user=names.index(user_field),
        item=names.index(item_field),
        time=names.index(time_field),
        rating=names.index(rating_field) if rating_field is not None and rating_field in names else None,
    )
    message = f"expected {len(names)} tab-separated fields (header), got {{got}}"
    return _read(
        data, path, start=start, first_line=number + 1, layout=layout, fields_message=message, engine=engine
    )


def read_movielens(
    path: str | Path, *, sep: str = DEFAULT_DELIMITER["movielens"], engine: Engine = "pandas"
) -> InteractionLog:
    """Read MovieLens ``u.data``: ``user item rating timestamp`` per line, no header.

    ``sep`` is the field separator (``"\\t"`` for ML-100K, ``"::"`` for ML-1M/10M ``ratings.dat``).
    """
    if not sep:
        raise ValueError("sep must not be empty; use '\\t' (u.data) or '::' (ratings.dat)")
    data = read_bytes(path)
    layout = ColumnLayout(n_fields=4, sep=sep, user=0, item=1, rating=2, time=3)
    message = f"expected 4 fields (user, item, rating, timestamp) separated by {sep!r}, got {{got}}"
    return _read(data, path, start=0, first_line=1, layout=layout, fields_message=message, engine=engine)


def read_csv(
    path: str | Path,
    *,
    user_col: str = USER_COL,
    item_col: str = ITEM_COL,
    time_col: str = TIME_COL,
    rating_col: str | None = None,
    delimiter: str = DEFAULT_DELIMITER["csv"],
    time_format: TimeFormat = "numeric",
    engine: Engine = "pandas",
) -> InteractionLog:
    """Read a delimited file whose header names the user, item, timestamp (and rating) columns.

    Quoted fields follow the ``csv`` module's rules (a file with quotes is read by the streaming
    parser). Timestamps are numbers, or ISO 8601 strings with ``time_format="iso"`` (naive times are
    taken as UTC; the value is POSIX seconds).
    """
    choice(time_format, "time_format", TIME_FORMATS)
    if len(delimiter) != 1:
        raise ValueError(f"delimiter {delimiter!r} must be one character, e.g. ',' or '\\t'")
    data = read_bytes(path)
    first = first_content_line(data, path)
    if first is None:
        raise InteractionFormatError(path, 1, "empty file: expected a header row naming the columns")
    number, header, start = first
    names = [h.strip() for h in next(csv.reader([header], delimiter=delimiter))]
    wanted = [user_col, item_col, time_col] + ([rating_col] if rating_col else [])
    for need in wanted:
        if need not in names:
            raise InteractionFormatError(
                path, number, f"required column {need!r} is missing from the header (columns: {names})"
            )
    layout = ColumnLayout(
        n_fields=len(names),
        sep=delimiter,
        user=names.index(user_col),
        item=names.index(item_col),
        time=names.index(time_col),
        rating=names.index(rating_col) if rating_col else None,
        quotes=True,
        iso_time=time_format == "iso",
    )
    message = f"expected {len(names)} fields ({delimiter!r}-separated), got {{got}}"
    return _read(
        data, path, start=start, first_line=number + 1, layout=layout, fields_message=message, engine=engine
    )


def load_interactions(
    path: str | Path, *, fmt: Format, engine: Engine = "pandas", **options: str | None
) -> InteractionLog:
    """Read an interaction file in format ``fmt`` (``recbole`` | ``movielens`` | ``csv``).

    ``options`` are the other :class:`LogSource` fields (``user_col``, ``item_col``, ``time_col``,
    ``rating_col``, ``delimiter``, ``time_format``); see :meth:`LogSource.load` for ``engine``.
    """
    return LogSource(path=str(path), fmt=fmt, **options).load(engine=engine)  # type: ignore[arg-type]


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
