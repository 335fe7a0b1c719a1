"""What the command line checks before work starts, and how it reports a user error.

- Path checks (:func:`readable_file`, :func:`utf8_text_file`, :func:`writable_folder`,
  :func:`writable_file`) run before any data is read or any model is trained; each raises
  :class:`UnusablePathError` (a ``ValueError``) naming the option, the path and the fix.
- :class:`CommandParser` is an ``argparse.ArgumentParser`` whose errors raise
  :class:`CommandLineError` instead of printing the usage and exiting.
- :func:`user_error_message` decides what is a user error (a ``ValueError`` and its subclasses —
  ConfigError, CheckpointError, InteractionFormatError, EnumerationTooLargeError, UnicodeDecodeError,
  argparse errors —, an ``OSError`` on a file outside this package, a handler's ``SystemExit`` with a
  message) and turns it into one line; anything else is an internal error and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import tempfile
from pathlib import Path
from typing import NoReturn

#: Environment variable that, set to 1 (or true/yes/on), re-raises user errors with the traceback.
DEBUG_ENV = "GAN_EQUIV_DEBUG"
#: Exit status of a user error (argparse's convention).
USER_ERROR_STATUS = 2
#: Files of the installed packages: an OSError on one of them is an internal error, not the user's.
_PACKAGE_ROOTS = tuple(Path(__file__).resolve().parents[1] / name for name in ("gan_equiv", "maxent_il"))
_OS_HINTS = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EISDIR: "give a file, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.ENOSPC: "no space left on the device; free some space or choose another folder",
    errno.EROFS: "the file system is read-only; choose another folder",
}


class UnusablePathError(ValueError):
    """A path given by the user cannot be used (missing, unreadable, not writable, wrong kind)."""


class CommandLineError(ValueError):
    """A command-line parsing error (unknown option, bad value, missing argument)."""


class CommandParser(argparse.ArgumentParser):
    """``ArgumentParser`` that raises :class:`CommandLineError` (one line, with a pointer to
    ``--help``) instead of printing the usage and exiting; its subparsers are of the same class."""

    def error(self, message: str) -> NoReturn:
        raise CommandLineError(f"{message}; see '{self.prog} --help'")


def debug_requested(argv: list[str], environ: dict[str, str] | None = None) -> bool:
    """Whether ``--debug`` is among the options (before a ``--``) or :data:`DEBUG_ENV` is set."""
    env = os.environ if environ is None else environ
    options = argv[: argv.index("--")] if "--" in argv else argv
    return "--debug" in options or env.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _fail(option: str, path: Path, problem: str, fix: str) -> NoReturn:
    raise UnusablePathError(f"{option} {str(path)!r} {problem}; {fix}")


def readable_file(path: str | Path, *, option: str, fix: str = "check the path") -> Path:
    """``path`` as a ``Path`` after checking it is an existing, readable file (one byte is read)."""
    p = Path(path)
    if not p.exists():
        _fail(option, p, "does not exist", fix)
    if p.is_dir():
        _fail(option, p, "is a folder, not a file", "give the file inside it")
    try:
        with p.open("rb") as handle:
            handle.read(1)
    except OSError as err:
        _fail(option, p, f"cannot be read ({err.strerror or err})", "check its permissions")
    return p


def utf8_text_file(path: str | Path, *, option: str, fix: str = "check the path") -> Path:
    """:func:`readable_file`, and its whole content decodes as UTF-8 (for small text files such as
    TOML configs); the error names the line and byte of the first bad byte."""
    p = readable_file(path, option=option, fix=fix)
    data = p.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        _fail(
            option,
            p,
            f"is not UTF-8 text (byte 0x{data[err.start]:02x} at line {line}, byte offset {err.start})",
            "save the file as UTF-8",
        )
    return p


def writable_folder(path: str | Path, *, option: str) -> Path:
    """``path`` as a ``Path`` after creating the folder (with its parents) if needed and writing and
    removing a temporary file in it."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        _fail(option, p, "is a file, not a folder", "choose a folder path")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _fail(option, p, f"cannot be created ({err.strerror or err})", "choose a folder you can write to")
    try:
        with tempfile.TemporaryFile(dir=p) as handle:
            handle.write(b"0")
    except OSError as err:
        _fail(option, p, f"is not writable ({err.strerror or err})", "choose a folder you can write to")
    return p


def writable_file(path: str | Path, *, option: str) -> Path:
    """``path`` as a ``Path`` after checking it is not a folder and its folder is writable
    (:func:`writable_folder`); an existing file must be writable too."""
    p = Path(path)
    if p.is_dir():
        _fail(option, p, "is a folder", "give a file name inside it")
    writable_folder(p.parent, option=f"the folder of {option}")
    if p.exists() and not os.access(p, os.W_OK):
        _fail(option, p, "exists and is not writable", "check its permissions or choose another name")
    return p


def _one_line(text: str) -> str:
    return "; ".join(part.strip() for part in text.splitlines() if part.strip()) or "(no message)"


def _is_package_file(filename: object) -> bool:
    try:
        resolved = Path(os.fsdecode(filename)).resolve()  # type: ignore[arg-type]
    except (TypeError, ValueError, OSError):
        return False
    return any(resolved.is_relative_to(root) for root in _PACKAGE_ROOTS)


def user_error_message(err: BaseException) -> str | None:
    """The one-line message of a user error, or None for an internal error (keep the traceback).

    User errors: ``ValueError`` and subclasses; an ``OSError`` that names a file outside this
    package; a ``SystemExit`` whose code is a message (a handler that refused its input).
    """
    if isinstance(err, SystemExit):
        if isinstance(err.code, str):
            text = _one_line(err.code)
            return text[len("error: ") :] if text.startswith("error: ") else text
        return None
    if isinstance(err, UnicodeDecodeError):
        return (
            f"a file is not {err.encoding} text ({err.reason} at byte offset {err.start}); "
            "save it as UTF-8 or give the right file"
        )
    if isinstance(err, ValueError):
        return _one_line(str(err))
    if isinstance(err, OSError) and err.filename is not None and not _is_package_file(err.filename):
        hint = _OS_HINTS.get(err.errno or 0, "check the path")
        names = repr(os.fsdecode(err.filename))
        if err.filename2 is not None:
            names += f" -> {os.fsdecode(err.filename2)!r}"
        return f"{err.strerror or err}: {names}; {hint}"
    return None
