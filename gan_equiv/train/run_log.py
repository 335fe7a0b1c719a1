"""What a training run records: units done per phase, the metrics file, the progress bar.

- :class:`Progress` counts the units completed in each phase of Algorithm 1 (MLE epochs, energy
  pretraining steps of eq. 3, adversarial rounds); their sum is the global step of checkpoints.
- :class:`MetricsLog` appends one row per logged unit (JSON lines or CSV).
- :func:`progress_bar` / :func:`postfix` draw the live bar (``progress = true`` in the config).
"""

from __future__ import annotations

import csv
import json
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


class MetricsLog:
    """Append-only metrics file (JSON lines or CSV), one row per logged unit.

    CSV columns are the union of the keys of all rows: a row with a new key (the first energy step
    after MLE epochs, an evaluation) rewrites the file once with the wider header, earlier rows
    getting empty cells; a resumed run appends under the existing header.
    """

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.fmt = fmt

    def write(self, row: dict[str, Any]) -> None:
        """Append ``row``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.fmt == "jsonl":
            with self.path.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            return
        old_rows: list[dict[str, str]] = []
        fields: list[str] = []
        if self.path.exists():
            with self.path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                fields = list(reader.fieldnames or [])
                if any(k not in fields for k in row):
                    old_rows = list(reader)
        added = [k for k in row if k not in fields]
        if not added:
            with self.path.open("a", newline="") as handle:
                csv.DictWriter(handle, fieldnames=fields, restval="").writerow(row)
            return
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields + added, restval="")
            writer.writeheader()
            writer.writerows([*old_rows, row])


def progress_bar(*, total: int, initial: int, enabled: bool, name: str) -> tqdm:
    """A bar over all units of the run, starting at the units already done (disabled: a no-op bar)."""
    return tqdm(total=total, initial=initial, disable=not enabled, desc=name)


def postfix(row: dict[str, Any]) -> dict[str, str]:
    """The :data:`POSTFIX_KEYS` of a logged row, formatted for the bar."""
    return {k: f"{row[k]:.4g}" for k in POSTFIX_KEYS if isinstance(row.get(k), float)}
