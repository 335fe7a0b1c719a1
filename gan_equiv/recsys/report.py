"""The results of an evaluation: one row per model, curves, data summaries, settings, timings.

:class:`EvaluationReport` prints as a fixed-width or Markdown table and writes CSV (the rows) or
JSON (everything, via :func:`json_safe`).
"""

from __future__ import annotations

import csv
import json
import resource
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np


def max_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (``getrusage`` max RSS; KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class EvaluationReport:
    """Results of :func:`gan_equiv.recsys.protocol.run_protocols`: one row per model (metrics of
    both protocols), the per-position hit curves and training logs, the data and split summaries,
    the settings and the timings."""

    rows: list[dict[str, Any]]
    curves: dict[str, dict[str, Any]]
    data: dict[str, Any]
    settings: dict[str, Any]
    timings: dict[str, Any]

    def columns(self) -> list[str]:
        """All metric columns, in first-seen order."""
        cols: list[str] = []
        for row in self.rows:
            cols += [c for c in row if c not in cols]
        return cols

    def table(self, columns: Sequence[str] | None = None, *, markdown: bool = False) -> str:
        """A fixed-width (or Markdown) table: one line per model."""
        cols = list(columns) if columns else self.columns()
        cells = [[_fmt(row.get(c, "")) for c in cols] for row in self.rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
        if markdown:
            lines = [
                "| " + " | ".join(cols) + " |",
                "|" + "|".join("---:" if i else "---" for i in range(len(cols))) + "|",
            ]
            lines += ["| " + " | ".join(r) + " |" for r in cells]
            return "\n".join(lines)
        lines = [
            "  ".join(
                c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths, strict=True))
            )
        ]
        lines.append("-" * len(lines[0]))
        lines += [
            "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True)))
            for r in cells
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of everything."""
        return json_safe(asdict(self))

    def write(self, path: str | Path) -> Path:
        """Write the rows as CSV (``.csv``) or everything as JSON (``.json``)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix == ".csv":
            with p.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=self.columns(), restval="")
                writer.writeheader()
                writer.writerows(self.rows)
        elif p.suffix == ".json":
            p.write_text(json.dumps(self.to_dict(), indent=2))
        else:
            raise ValueError(f"output {str(p)!r} must end in .csv or .json")
        return p


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def json_safe(v: Any) -> Any:
    """``v`` with dict keys as strings, tuples and arrays as lists, numpy scalars as Python numbers."""
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    return v
