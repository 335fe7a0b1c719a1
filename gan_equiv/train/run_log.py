"""What a training run records: units done per phase, the metrics file, the progress bar.

- :class:`Progress` counts the units completed in each phase of Algorithm 1 (MLE epochs, energy
  pretraining steps of eq. 3, adversarial rounds); their sum is the global step of checkpoints.
- :class:`MetricsLog` appends one row per logged unit (JSON lines or CSV, every key of every row);
  :func:`read_metrics_log` reads either back as the same rows, and :func:`trim_metrics_log` cuts a
  log back to a checkpoint's step when a run resumes (no step is logged twice).
- :func:`progress_bar` / :func:`postfix` draw the live bar (``progress = true`` in the config).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from gan_equiv.train.config_types import PHASES

#: Metrics shown live on the progress bar (all of them go to the metrics log).
POSTFIX_KEYS = ("mle_nll_per_token", "d_loss", "g_surrogate", "kl_data_model", "nll_test", "nll_oracle")

#: The :class:`Progress` counter of each phase.
_COUNTERS = dict(zip(PHASES, ("g_epochs", "d_pretrain_steps", "rounds"), strict=True))


@dataclass
class Progress:
    """Units completed in each phase; their sum is the global step of checkpoints."""

    g_epochs: int = 0
    d_pretrain_steps: int = 0
    rounds: int = 0

    @property
    def step(self) -> int:
        """Units completed in all phases together."""
        return self.g_epochs + self.d_pretrain_steps + self.rounds

    def done(self, phase: str) -> int:
        """Units completed in ``phase`` (one of ``mle``, ``d_pretrain``, ``adversarial``)."""
        return int(getattr(self, _COUNTERS[phase]))

    def advance(self, phase: str) -> None:
        """Count one more completed unit of ``phase``."""
        setattr(self, _COUNTERS[phase], self.done(phase) + 1)


_FORMATS = ("jsonl", "csv")
_INT = re.compile(r"[-+]?\d+")


def _log_format(path: Path, fmt: str | None) -> str:
    fmt = fmt if fmt is not None else path.suffix.lstrip(".")
    if fmt not in _FORMATS:
        raise ValueError(
            f"metrics log format {fmt!r} of {path} is not one of {_FORMATS}; pass fmt='jsonl' or 'csv'"
        )
    return fmt


def _replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file in the same folder, ``os.replace``)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _csv_text(fields: list[str], rows: list[dict[str, Any]] | list[list[str]]) -> str:
    out = io.StringIO()
    if rows and isinstance(rows[0], list):
        writer = csv.writer(out)
        writer.writerow(fields)
        writer.writerows(rows)
    else:
        dict_writer = csv.DictWriter(out, fieldnames=fields, restval="")
        dict_writer.writeheader()
        dict_writer.writerows(rows)
    return out.getvalue()


def _cell(text: str) -> Any:
    """A CSV cell back as the value written: bool, int, float (nan/inf too) or the string."""
    if text in ("True", "False"):
        return text == "True"
    if _INT.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def _complete_lines(path: Path) -> tuple[list[str], bool]:
    """The file's lines without a last line cut short by a kill (no newline); whether one was cut."""
    text = path.read_text() if path.exists() else ""
    lines = text.splitlines(keepends=True)
    torn = bool(lines) and not lines[-1].endswith("\n")
    return (lines[:-1] if torn else lines), torn


class MetricsLog:
    """Append-only metrics file (JSON lines or CSV), one row per logged unit.

    CSV columns are the union of the keys of all rows: a row with a new key (the first energy step
    after MLE epochs, an evaluation) rewrites the file atomically with the wider header, earlier
    rows getting empty cells; a resumed run appends under the existing header. Either format reads
    back as the same rows (:func:`read_metrics_log`).
    """

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = Path(path)
        self.fmt = _log_format(self.path, fmt)

    def write(self, row: dict[str, Any]) -> None:
        """Append ``row``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.fmt == "jsonl":
            with self.path.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            return
        fields: list[str] = []
        if self.path.exists():
            with self.path.open(newline="") as handle:
                fields = next(csv.reader(handle), [])
        added = [k for k in row if k not in fields]
        if not added:
            with self.path.open("a", newline="") as handle:
                csv.DictWriter(handle, fieldnames=fields, restval="").writerow(row)
            return
        old_rows: list[dict[str, Any]] = []
        if fields:
            with self.path.open(newline="") as handle:
                old_rows = list(csv.DictReader(handle))
        _replace_text(self.path, _csv_text(fields + added, [*old_rows, row]))

    def read(self) -> list[dict[str, Any]]:
        """Every row written so far (:func:`read_metrics_log`)."""
        return read_metrics_log(self.path, fmt=self.fmt)

    def trim(self, step: int) -> int:
        """Drop the rows after ``step`` (:func:`trim_metrics_log`); return how many were dropped."""
        return trim_metrics_log(self.path, step=step, fmt=self.fmt)


def read_metrics_log(path: str | Path, *, fmt: str | None = None) -> list[dict[str, Any]]:
    """The rows of a metrics log (``fmt``: 'jsonl' or 'csv', None: from the suffix), each with the
    keys it was written with — empty CSV cells are keys the row did not have. A last line cut short
    by a kill is left out; a malformed line elsewhere is a ``ValueError`` naming it."""
    p = Path(path)
    fmt = _log_format(p, fmt)
    lines, _ = _complete_lines(p)
    if fmt == "csv":
        reader = csv.DictReader(lines)
        return [{k: _cell(v) for k, v in r.items() if k is not None and v not in ("", None)} for r in reader]
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{p}, line {number}: not a JSON row ({err.msg}); remove or repair that line"
            ) from None
    return rows


def trim_metrics_log(path: str | Path, *, step: int, fmt: str | None = None) -> int:
    """Cut a metrics log back to a checkpoint: drop every row whose ``step`` exceeds ``step`` (and a
    last line cut short by a kill), rewriting the file atomically. Returns the number of lines dropped.

    Call it when a run resumes from the checkpoint of ``step``: the units after it run again and are
    logged again, so no step appears twice. A missing file is left missing (0 dropped).
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative integer (a checkpoint's step), got {step!r}")
    p = Path(path)
    fmt = _log_format(p, fmt)
    if not p.exists():
        return 0
    lines, torn = _complete_lines(p)
    if fmt == "jsonl":
        rows = read_metrics_log(p, fmt=fmt)
        kept_lines = [line for line, row in zip(lines, rows, strict=True) if _step_of(row) <= step]
        n_rows, n_kept, text = len(lines), len(kept_lines), "".join(kept_lines)
    else:
        table = list(csv.reader(lines))
        header, body = (table[0], table[1:]) if table else ([], [])
        column = header.index("step") if "step" in header else len(header)
        kept = [r for r in body if _step_of({"step": _cell(r[column]) if column < len(r) else None}) <= step]
        n_rows, n_kept, text = len(body), len(kept), _csv_text(header, kept) if header else ""
    dropped = n_rows - n_kept + int(torn)
    if dropped:
        _replace_text(p, text)
    return dropped


def _step_of(row: dict[str, Any]) -> float:
    """The row's step (rows without one are kept: -inf)."""
    value = row.get("step")
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else float("-inf")


def progress_bar(*, total: int, initial: int, enabled: bool, name: str) -> tqdm:
    """A bar over all units of the run, starting at the units already done (disabled: a no-op bar)."""
    return tqdm(total=total, initial=initial, disable=not enabled, desc=name)


def postfix(row: dict[str, Any]) -> dict[str, str]:
    """The :data:`POSTFIX_KEYS` of a logged row, formatted for the bar."""
    return {k: f"{row[k]:.4g}" for k in POSTFIX_KEYS if isinstance(row.get(k), float)}
