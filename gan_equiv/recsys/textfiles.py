"""Interaction files as bytes: gzip read transparently, binary files refused, lines decoded with numbers.

:func:`read_bytes` loads a whole file (decompressing gzip, recognized by its magic bytes, whatever
the name), refuses other compressed or binary files (a NUL byte) with a clear
:class:`InteractionFormatError`, drops a UTF-8 byte-order mark and normalizes line breaks to
``\\n``. :func:`text_lines` decodes it line by line, so a line that is not UTF-8 is named by its
number; :func:`first_content_line` finds a header (the first non-blank line) and where the data
after it begins.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path

#: Magic bytes of compressed formats that are refused (gzip is read).
REFUSED_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip", b"\x28\xb5\x2f\xfd": "zstd"}
GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"


class InteractionFormatError(ValueError):
    """A malformed interaction file: the message names the file and, where there is one, the
    1-based line number (``line`` is None for problems of the whole file)."""

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = None if line is None else int(line)
        self.problem = problem


def read_bytes(path: str | Path) -> bytes:
    """The whole text of ``path`` as bytes (gzip decompressed; BOM dropped; ``\\r\\n`` and ``\\r``
    turned into ``\\n``).

    Raises :class:`InteractionFormatError` (a ValueError) for a missing path, a directory, an
    unreadable file, a corrupt gzip stream, another compression format, or a binary file (a NUL
    byte, named by its line).
    """
    p = Path(path)
    if not p.exists():
        raise InteractionFormatError(p, None, "the interaction file does not exist; check the path (--data)")
    if p.is_dir():
        raise InteractionFormatError(p, None, "is a directory; give the interaction file inside it")
    try:
        raw = p.read_bytes()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise InteractionFormatError(p, None, f"cannot be read ({reason}); check its permissions") from None
    if raw.startswith(GZIP_MAGIC):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise InteractionFormatError(
                p, None, f"is not a valid gzip file ({err}); re-compress it or give the plain text file"
            ) from None
    for magic, name in REFUSED_MAGIC.items():
        if raw.startswith(magic):
            raise InteractionFormatError(
                p, None, f"is {name}-compressed; decompress it (or gzip it: .gz files are read as they are)"
            )
    if raw.startswith(BOM):
        raw = raw[len(BOM) :]
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise InteractionFormatError(
            p,
            line,
            "contains a NUL byte: this is a binary file, not a text interaction log; give a "
            "tab- or comma-separated text file (plain or .gz)",
        )
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return raw


def text_lines(
    data: bytes, path: str | Path, *, start: int = 0, first_line: int = 1
) -> Iterator[tuple[int, str]]:
    """(1-based line number, text with the line break) of each line of ``data`` from byte ``start``
    (line number ``first_line``); a line that is not UTF-8 raises :class:`InteractionFormatError`."""
    stream = io.BytesIO(data)
    stream.seek(start)
    for number, raw in enumerate(stream, start=first_line):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InteractionFormatError(
                path,
                number,
                f"is not UTF-8 text (byte {raw[err.start]:#04x} at column {err.start + 1}); "
                "save the file as UTF-8 (a binary file cannot be read)",
            ) from None
        yield number, text


def first_content_line(data: bytes, path: str | Path) -> tuple[int, str, int] | None:
    """(line number, text without the break, byte offset after it) of the first non-blank line,
    or None when every line is blank."""
    offset = 0
    for number, text in text_lines(data, path):
        offset += len(text.encode("utf-8"))
        if text.strip():
            return number, text.rstrip("\n"), offset
    return None


def is_verbatim(path: str | Path, data: bytes) -> bool:
    """Whether ``data`` (from :func:`read_bytes`) is byte for byte the file at ``path`` (not gzip,
    no byte-order mark or carriage return removed): then ``path`` may be read in its place."""
    p = Path(path)
    with p.open("rb") as handle:
        head = handle.read(len(GZIP_MAGIC))
    return not head.startswith(GZIP_MAGIC) and p.stat().st_size == len(data)
