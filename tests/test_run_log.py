"""The metrics log: CSV and JSON lines hold the same rows (every key, whatever the first row had),
CSV rewrites are atomic, and a log is trimmed back to a checkpoint's step on resume."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest

from gan_equiv.train import run_log
from gan_equiv.train.run_log import MetricsLog, read_metrics_log, trim_metrics_log

#: Rows of a run's phases: MLE rows first, then keys the first row never had (energy, evaluation).
ROWS: list[dict[str, Any]] = [
    {"phase": "mle", "unit": 1, "step": 1, "mle_nll_per_token": 1.2345678901234567, "wall_s": 0.5},
    {"phase": "mle", "unit": 2, "step": 2, "mle_nll_per_token": 0.1 + 0.2, "wall_s": 1.0},
    {"phase": "d_pretrain", "unit": 1, "step": 3, "d_loss": -3.5e-12, "e_real": 2.0, "e_fake": 1e300},
    {"phase": "adversarial", "unit": 1, "step": 4, "g_surrogate": float("nan"), "q_mean": float("-inf")},
    {"phase": "adversarial", "unit": 2, "step": 5, "d_loss": 7.0, "nll_oracle": 8.25, "converged": True},
]


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal rows, NaN equal to NaN; types kept (an int is not a float)."""
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if type(x) is not type(y):
            return False
        if not (x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))):
            return False
    return True


def write_both(tmp_path: Path, rows: list[dict[str, Any]]) -> tuple[MetricsLog, MetricsLog]:
    logs = MetricsLog(tmp_path / "metrics.jsonl", "jsonl"), MetricsLog(tmp_path / "metrics.csv", "csv")
    for row in rows:
        for log in logs:
            log.write(row)
    return logs


def test_csv_holds_every_key_and_the_same_values_as_jsonl(tmp_path: Path) -> None:
    jsonl, csv_log = write_both(tmp_path, ROWS)
    from_jsonl, from_csv = jsonl.read(), csv_log.read()
    assert len(from_jsonl) == len(from_csv) == len(ROWS)
    for original, a, b in zip(ROWS, from_jsonl, from_csv, strict=True):
        assert same(a, original) and same(b, original), (original, a, b)
    with csv_log.path.open(newline="") as handle:
        header = next(csv.reader(handle))
    every_key = list(dict.fromkeys(k for row in ROWS for k in row))
    assert header == every_key  # the union, in order of first appearance
    by_suffix = read_metrics_log(csv_log.path)  # the format is read from the suffix
    assert all(same(a, b) for a, b in zip(by_suffix, from_csv, strict=True))


def test_a_new_key_rewrites_the_csv_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = MetricsLog(tmp_path / "metrics.csv", "csv")
    for row in ROWS[:2]:
        log.write(row)
    before = log.path.read_bytes()

    def crash(src, dst) -> None:
        raise OSError("killed during the rewrite")

    monkeypatch.setattr(run_log.os, "replace", crash)
    with pytest.raises(OSError, match="killed"):
        log.write(ROWS[2])  # new keys: the wider file goes to a temporary, then replaces the old
    monkeypatch.undo()
    assert log.path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]
    log.write(ROWS[2])
    assert [r["step"] for r in log.read()] == [1, 2, 3]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_trim_then_resume_logs_no_step_twice(tmp_path: Path, fmt: str) -> None:
    log = MetricsLog(tmp_path / f"metrics.{fmt}", fmt)
    for row in ROWS:  # steps 1 … 5 logged; the checkpoint was written after step 3
        log.write(row)
    with log.path.open("a") as handle:
        handle.write('{"phase": "adversarial", "unit": 3, "st' if fmt == "jsonl" else "adversarial,3,6,0.")
    assert [r["step"] for r in log.read()] == [1, 2, 3, 4, 5]  # the torn line is left out
    assert log.trim(3) == 3  # steps 4, 5 and the torn line
    kept = log.read()
    assert [r["step"] for r in kept] == [1, 2, 3]
    assert all(same(a, b) for a, b in zip(kept, ROWS[:3], strict=True))
    for row in ROWS[3:]:  # the resumed run logs steps 4 and 5 again
        log.write(row)
    steps = [r["step"] for r in log.read()]
    assert steps == sorted(set(steps)) == [1, 2, 3, 4, 5]
    assert log.trim(5) == 0 and trim_metrics_log(log.path, step=0) == 5 and log.read() == []
    assert trim_metrics_log(tmp_path / f"missing.{fmt}", step=3) == 0


def test_bad_lines_and_arguments_are_named(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match=r"metrics\.jsonl, line 2: not a JSON row"):
        read_metrics_log(path)
    with pytest.raises(ValueError, match="step must be a non-negative integer"):
        trim_metrics_log(path, step=-1)
    with pytest.raises(ValueError, match=r"format 'txt' .* is not one of"):
        read_metrics_log(tmp_path / "metrics.txt")
    with pytest.raises(ValueError, match=r"format 'parquet'"):
        MetricsLog(tmp_path / "m.parquet", "parquet")
