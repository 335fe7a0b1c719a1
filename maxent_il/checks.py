"""Argument checks of ``maxent_il``: one signature ``(value, name, *, hint="")``, one message style.

Each check returns the value in its canonical type (``int``, ``float``, a float64 array) and raises
a ``ValueError`` that names the argument, the value it got and, with ``hint``, what it is for.
Vector checks take their required length as a keyword (``dim=``, ``size=``). numpy only: this is
the bottom layer, and nothing here imports the rest of the project.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: How far Σ q may be from 1 for a probability vector.
PROBABILITY_SUM_TOL = 1e-9
#: Largest |c(S)| = |θ·f(S)| the exact routes accept. Beyond it differences and sums of costs could
#: overflow float64 (max ≈ 1.8e308) inside the log-sum-exps; such costs mean e^{−c} underflows for
#: every sequence but the cheapest anyway, so nothing is lost by refusing them.
MAX_ABS_COST = 1e300


def _suffix(hint: str) -> str:
    return f" ({hint})" if hint else ""


def positive_int(value: Any, name: str, *, hint: str = "") -> int:
    """``value`` as an ``int`` ≥ 1; bools and floats such as 2.5 are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer{_suffix(hint)}, got {value!r}")
    return int(value)


def non_negative_int(value: Any, name: str, *, hint: str = "") -> int:
    """``value`` as an ``int`` ≥ 0."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer{_suffix(hint)}, got {value!r}")
    return int(value)


def finite_float(value: Any, name: str, *, hint: str = "") -> float:
    """``value`` as a finite ``float`` (NaN, ±inf, bools and non-numbers are refused)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = math.nan
    if isinstance(value, bool) or not math.isfinite(out):
        raise ValueError(f"{name} must be a finite number{_suffix(hint)}, got {value!r}")
    return out


def positive_float(value: Any, name: str, *, hint: str = "") -> float:
    """``value`` as a finite ``float`` > 0 (a step size, a scale)."""
    try:
        out = finite_float(value, name)
    except ValueError:
        out = math.nan
    if not out > 0:
        raise ValueError(f"{name} must be a finite number > 0{_suffix(hint)}, got {value!r}")
    return out


def non_negative_float(value: Any, name: str, *, hint: str = "") -> float:
    """``value`` as a finite ``float`` ≥ 0 (a regularization strength λ)."""
    try:
        out = finite_float(value, name)
    except ValueError:
        out = math.nan
    if not out >= 0:
        raise ValueError(f"{name} must be a finite non-negative number{_suffix(hint)}, got {value!r}")
    return out


def choice(value: Any, name: str, choices: Sequence[str], *, hint: str = "") -> str:
    """``value`` if it is one of ``choices``; the error lists them."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(map(repr, choices))
        raise ValueError(f"unknown {name} {value!r}{_suffix(hint)}; choose one of {options}")
    return value


def finite_vector(value: Any, name: str, *, dim: int, hint: str = "") -> np.ndarray:
    """``value`` as a finite float64 vector of shape (dim,) (θ, moments E f); the error names the entry."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (dim,):
        raise ValueError(f"{name} must have shape ({dim},){_suffix(hint)}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"{name}[{bad}] = {arr[bad]} is not finite{_suffix(hint)}")
    return arr


def probability_vector(value: Any, name: str, *, size: int | None = None, hint: str = "") -> np.ndarray:
    """``value`` as a probability vector: float64 (size,), finite, ≥ 0, |Σ − 1| ≤ PROBABILITY_SUM_TOL.

    With ``size`` the vector must cover the whole space (all V^T sequences); without it any
    non-empty 1-d vector is accepted. The error names the first bad entry or the sum.
    """
    arr = np.asarray(value, dtype=np.float64)
    if size is not None and arr.shape != (size,):
        raise ValueError(
            f"{name} must be a probability vector of shape ({size},) over all V^T sequences"
            f"{_suffix(hint)}, got {arr.shape}"
        )
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-d probability vector{_suffix(hint)}, got shape {arr.shape}"
        )
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} must hold finite non-negative probabilities{_suffix(hint)}, "
            f"but {name}[{i}] = {float(arr[i])!r}"
        )
    total = float(arr.sum())
    if abs(total - 1.0) > PROBABILITY_SUM_TOL:
        raise ValueError(
            f"{name} sums to {total!r}, not 1 (tolerance {PROBABILITY_SUM_TOL:g}){_suffix(hint)}; "
            "pass probabilities (normalize by the sum), not weights, counts or log-probabilities"
        )
    return arr
