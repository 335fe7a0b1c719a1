"""Argument checks shared by every wing of ``gan_equiv``: one signature, one message style.

Each check takes ``(value, name, *, hint="")``, returns the value in its canonical type and
raises a ``ValueError`` that names the argument, the value it got and, with ``hint``, what to do.
Item-id tensors are checked by :func:`check_item_tensor` (range errors name the bad id).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

_INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


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
        raise ValueError(f"{name} must be an integer >= 0{_suffix(hint)}, got {value!r}")
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
    """``value`` as a finite ``float`` > 0."""
    out = finite_float(value, name, hint=hint)
    if out <= 0:
        raise ValueError(f"{name} must be a finite number > 0{_suffix(hint)}, got {value!r}")
    return out


def non_negative_float(value: Any, name: str, *, hint: str = "") -> float:
    """``value`` as a finite ``float`` ≥ 0."""
    out = finite_float(value, name, hint=hint)
    if out < 0:
        raise ValueError(f"{name} must be a finite number >= 0{_suffix(hint)}, got {value!r}")
    return out


def choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``; the error lists them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(repr, choices))}")
    return value


def check_item_tensor(
    sequences: Tensor | np.ndarray, *, n_items: int, length: int, device: torch.device
) -> Tensor:
    """Return ``sequences`` as an int64 tensor (N, length) on ``device`` with items in 0 … V−1.

    On the CPU a bad item raises a ``ValueError`` naming it. On CUDA the range check is an
    asynchronous device assertion, so validation never forces a host–device synchronization in a
    training loop (an out-of-range id then surfaces as a CUDA error carrying the same message).
    """
    seqs = torch.as_tensor(sequences, device=device)
    if seqs.dtype not in _INTEGER_DTYPES:
        raise ValueError(f"sequences must hold integer item ids, got dtype {seqs.dtype}")
    seqs = seqs.long()
    if seqs.ndim != 2 or seqs.shape[1] != length:
        raise ValueError(f"sequences must have shape (N, {length}), got {tuple(seqs.shape)}")
    message = f"item ids must lie in 0..{n_items - 1} (V={n_items})"
    if seqs.is_cuda:
        if seqs.numel():
            torch._assert_async(((seqs >= 0) & (seqs < n_items)).all(), message)
        return seqs
    if seqs.numel() and (int(seqs.min()) < 0 or int(seqs.max()) >= n_items):
        bad = seqs[(seqs < 0) | (seqs >= n_items)][0].item()
        raise ValueError(f"item id {bad} is outside 0..{n_items - 1} (V={n_items})")
    return seqs
