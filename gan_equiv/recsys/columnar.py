"""Columnar reading of interaction files with pandas' C parser: the fast path of every reader.

:func:`read_columns` parses the data rows in one pandas ``read_csv`` call (of the file itself when
its bytes are the text, else of the bytes :func:`gan_equiv.recsys.textfiles.read_bytes` loaded),
then builds the :class:`~gan_equiv.recsys.logs.InteractionLog` with vectorized operations: one
chunked scan of the bytes for the line breaks and separators (:func:`scan`), physical line numbers
from the breaks (blank lines skipped), field counts from the separators, token codes in order of
first appearance as the streaming parser assigns them (:func:`first_appearance` for integer ids —
kept as text when any is written with a sign, a space or a leading zero — ``pandas.factorize``
for text ids).

It accepts exactly what the streaming parser of :mod:`gan_equiv.recsys.streaming` accepts and
returns the same log, or returns None — for any row it is not sure about (a wrong number of fields,
an empty or padded id, a number that is not finite or that pandas cannot parse, text that is not
UTF-8, quoted CSV fields, …). The reader then runs the streaming parser over the same bytes, which
either raises the :class:`~gan_equiv.recsys.textfiles.InteractionFormatError` naming the first bad
line and the fix, or (for the rare files only it accepts, such as numbers with underscores) returns
the log. Valid files never pay for the streaming pass.

Why pandas: it is already installed wherever NumPy-based data work is done, its C tokenizer parses
and converts numbers without Python objects per field, and it needs no further dependency
(pyarrow's engine would be optional).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from gan_equiv.recsys.logs import InteractionLog

#: The byte that stands in for a multi-character separator (such as MovieLens' ``::``).
UNIT_SEPARATOR = b"\x1f"


@dataclass(frozen=True, kw_only=True)
class ColumnLayout:
    """Where the fields are: ``n_fields`` per row separated by ``sep``; the 0-based field of the
    user, item, timestamp and (optional) rating; ``quotes`` — CSV quoting rules apply (the fast path
    then declines files that contain a quote character); ``iso_time`` — timestamps are ISO 8601."""

    n_fields: int
    sep: str
    user: int
    item: int
    time: int
    rating: int | None = None
    quotes: bool = False
    iso_time: bool = False


def read_columns(
    data: bytes, *, start: int, first_line: int, layout: ColumnLayout, source: str, file: str | None = None
) -> InteractionLog | None:
    """The log of the data rows of ``data`` from byte ``start`` (physical line ``first_line``), or
    None when any row needs the streaming reader (see the module text). ``file``: a path whose
    bytes are exactly ``data`` — pandas then reads it itself (about twice as fast as from memory)."""
    if layout.quotes and data.find(b'"', start) >= 0:
        return None
    sep = layout.sep.encode("utf-8")
    if len(sep) != 1:  # the C parser takes one separator byte: substitute one that does not occur
        if data.find(UNIT_SEPARATOR, start) >= 0:
            return None
        data, start, sep, file = data[start:].replace(sep, UNIT_SEPARATOR), 0, UNIT_SEPARATOR, None
    body = np.frombuffer(data, dtype=np.uint8, offset=start)  # (bytes,), a view
    if body.size == 0:
        return None
    ids = (layout.user, layout.item)
    numbers = {layout.time: str if layout.iso_time else np.float64}
    if layout.rating is not None:
        numbers[layout.rating] = np.float64
    origin = (file, first_line - 1) if file is not None else (data, start)
    frame = _parse(origin, sep, layout, sorted(set(ids) | set(numbers)), numbers)
    if frame is None:
        return None  # a parser error
    breaks, seps = scan(body, sep[0])
    found = line_starts(body, breaks, len(frame))
    if found is None or seps.size != (layout.n_fields - 1) * len(frame):
        return None  # no rows, or some row has another number of fields (pandas refuses more, not fewer)
    starts, rows = found  # (R,) byte offset and line index of each non-blank line
    index = rows if rows.size == breaks.size + (body[-1] != 10) else None  # no blank line: rows = 0 … R−1
    fields = FieldStarts(body, starts, seps.reshape(len(frame), layout.n_fields - 1), index)
    user, item = (id_tokens(frame[c], fields, c) for c in ids)
    if user == "text" or item == "text":  # integer-looking ids that are not plain integers: reread as text
        text = _parse(origin, sep, layout, sorted(set(ids)), dict.fromkeys(ids, str))
        if text is None:
            return None
        user, item = (
            tokens(text[c]) if got == "text" else got for c, got in zip(ids, (user, item), strict=True)
        )
    time = iso_seconds(frame[layout.time]) if layout.iso_time else frame[layout.time].to_numpy(np.float64)
    rating = None if layout.rating is None else frame[layout.rating].to_numpy(np.float64)
    if user is None or item is None or time is None or not np.isfinite(time).all():
        return None
    if rating is not None and not np.isfinite(rating).all():
        return None
    return InteractionLog(
        user=user[0],
        item=item[0],
        timestamp=time,
        rating=rating,
        line=rows + first_line,  # int64 (R,) physical line numbers
        user_tokens=user[1],
        item_tokens=item[1],
        source=source,
    )


def _parse(origin: tuple, sep: bytes, layout: ColumnLayout, used: list[int], dtypes: dict):
    """pandas' C parser over the rows of ``origin`` — (file path, lines to skip) or (bytes, start
    offset) — columns ``used``, ids without a dtype inferred; None when it raises (a parser error,
    a bad number, invalid UTF-8)."""
    import pandas as pd

    where, skip = origin
    if isinstance(where, bytes):  # in memory: start at the byte offset, skip no line
        where = io.BytesIO(where)
        where.seek(skip)
        skip = 0
    try:
        return pd.read_csv(
            where,
            skiprows=skip,
            sep=sep.decode("latin-1"),
            header=None,
            names=list(range(layout.n_fields)),
            usecols=used if len(used) < layout.n_fields else None,  # usecols costs time: only if needed
            index_col=False,
            dtype=dtypes,
            quoting=csv.QUOTE_MINIMAL if layout.quotes else csv.QUOTE_NONE,
            na_filter=False,
            skip_blank_lines=True,
            engine="c",
            encoding="utf-8",
        )
    except ValueError:  # pandas' parser errors, unconvertible numbers, invalid UTF-8
        return None


def scan(body: np.ndarray, sep: int, *, chunk: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """(positions of the line breaks, positions of the separators) in ``body``, in one pass of
    cache-sized chunks through one reused buffer (several times faster than whole-array masks)."""
    buffer = np.empty(min(chunk, body.size), dtype=bool)
    breaks, seps = [], []
    for a in range(0, body.size, chunk):  # chunks of bytes, not a loop per row
        piece = body[a : a + chunk]
        mask = buffer[: piece.size]
        breaks.append(np.flatnonzero(np.equal(piece, 10, out=mask)) + a)
        seps.append(np.flatnonzero(np.equal(piece, sep, out=mask)) + a)
    return np.concatenate(breaks), np.concatenate(seps)


def line_starts(body: np.ndarray, breaks: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(byte offset, 0-based line index) of each non-blank line of ``body`` (bytes, lines ended by
    the ``breaks``): two int64 arrays (R,), or None unless there are exactly ``n_rows`` (≥ 1) such
    lines. When every line holds a row (no blank line) the indices are simply 0 … R−1."""
    ends = breaks if body[-1] == 10 else np.append(breaks, body.size)
    starts = np.empty_like(ends)
    starts[0], starts[1:] = 0, ends[:-1] + 1
    if n_rows < 1 or n_rows > ends.size:
        return None
    if n_rows == ends.size:  # every line is a row: no blank line to skip
        return starts, np.arange(ends.size)
    rows = np.flatnonzero(ends > starts)  # non-blank lines
    return (starts[rows], rows) if rows.size == n_rows else None


def first_appearance(values: np.ndarray, index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``pandas.factorize`` of integers — (int64 codes (R,), the distinct values in order of first
    appearance) — by ``np.minimum.at`` over a table of the value range when the values are small
    non-negative integers (several times faster than hashing), else by pandas. ``index``: the row
    numbers 0 … R−1 when the caller has them already."""
    import pandas as pd

    if (
        values.size
        and values.dtype.kind in "iu"
        and values.min() >= 0
        and values.max() < 4 * values.size + 2**20
    ):
        size = int(values.max()) + 1
        first = np.full(size, values.size, dtype=np.int64)  # (size,) first row of each value
        np.minimum.at(first, values, np.arange(values.size) if index is None else index)
        present = np.flatnonzero(first < values.size)
        order = present[np.argsort(first[present], kind="stable")]  # values by first appearance
        rank = np.empty(size, dtype=np.int64)
        rank[order] = np.arange(order.size)
        return rank[values], order
    codes, uniques = pd.factorize(values)
    return codes.astype(np.int64), np.asarray(uniques)


#: The first byte of an integer field: 0 plain, 1 refused ('+', ' '), 2 look at the next one ('0', '-').
FIRST_BYTE = np.zeros(256, dtype=np.int8)
FIRST_BYTE[[ord("+"), ord(" ")]] = 1
FIRST_BYTE[[ord("0"), ord("-")]] = 2


@dataclass(frozen=True)
class FieldStarts:
    """Where each row's fields begin: ``starts`` (R,) the rows' first bytes, ``seps`` (R, n − 1)
    the positions of their separators (every row has exactly n fields)."""

    body: np.ndarray
    starts: np.ndarray
    seps: np.ndarray
    index: np.ndarray | None = None  # 0 … R−1, when already built

    def of(self, index: int) -> np.ndarray:
        """Offset of field ``index`` in every row: (R,)."""
        return self.starts if index == 0 else self.seps[:, index - 1] + 1

    def plain_integers(self, index: int) -> bool:
        """Whether no value of field ``index`` starts like a non-canonical integer (a sign '+', a
        space, a leading zero, '-0'): then ``str(int(text))`` gives back the text (up to trailing
        spaces, which the streaming reader strips as well)."""
        at = self.of(index)
        first = FIRST_BYTE[self.body[at]]  # (R,) 0 plain, 1 refused, 2 look at the next byte
        if not first.any():
            return True
        if (first == 1).any():
            return False
        look = at[first == 2]  # '0' or '-': rare in ids (only "0" and negative ids)
        c0, c1 = self.body[look], self.body[np.minimum(look + 1, self.body.size - 1)]
        leading_zero = (c0 == ord("0")) & (c1 >= ord("0")) & (c1 <= ord("9"))
        return not (leading_zero | ((c0 == ord("-")) & (c1 == ord("0")))).any()


def id_tokens(column, fields: FieldStarts, index: int):
    """(codes, tokens) of an id column as pandas inferred it: integers (plain ones only) are
    factorized as numbers, text by :func:`tokens`; ``"text"`` when the column must be reread as
    text (floats, or integers written with a sign, spaces or leading zeros)."""

    kind = column.dtype.kind
    if kind in "iu":
        if not fields.plain_integers(index):
            return "text"
        codes, uniques = first_appearance(column.to_numpy(), fields.index)
        return codes, tuple(str(u) for u in uniques.tolist())
    if kind in "fcb":
        return "text"
    return tokens(column)


def tokens(column) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """(int64 codes (rows,), tokens) of a text column: codes in order of first appearance of the
    stripped token; None if a token is empty after stripping."""
    import pandas as pd

    codes, uniques = pd.factorize(column)
    raw = [str(u) for u in uniques.tolist()]
    stripped = [u.strip() for u in raw]
    if stripped != raw:  # surrounding spaces: merge tokens equal after stripping
        merged, index = pd.factorize(pd.Index(stripped))
        codes, stripped = merged[codes], [str(u) for u in index.tolist()]
    if "" in stripped:
        return None
    return codes.astype(np.int64), tuple(stripped)


def iso_seconds(column) -> np.ndarray | None:
    """POSIX seconds of ISO 8601 timestamps (naive ones read as UTC): float64 (rows,), equal to
    ``datetime.fromisoformat(t).timestamp()`` to the microsecond; None if one does not parse."""
    import pandas as pd

    try:
        stamps = pd.to_datetime(column.str.strip(), format="ISO8601", utc=True)
    except (ValueError, TypeError, OverflowError):
        return None
    if stamps.isna().any():
        return None
    naive = stamps.dt.tz_convert(None).dt.as_unit("us")  # UTC wall time
    micros = naive.to_numpy().view(np.int64)  # (rows,) microseconds since 1970
    return micros / 1e6
