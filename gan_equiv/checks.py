"""Argument checks shared by every wing of ``gan_equiv``: one signature, one message style.

The scalar checks are those of :mod:`maxent_il.checks` (one definition for both packages): each
takes ``(value, name, *, hint="")``, returns the value in its canonical type and raises a
``ValueError`` that names the argument, the value it got and, with ``hint``, what to do.
Item-id tensors are checked by :func:`check_item_tensor` (range errors name the bad id).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from maxent_il.checks import (
    choice,
    finite_float,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)

__all__ = [
    "check_item_tensor",
    "choice",
    "finite_float",
    "non_negative_float",
    "non_negative_int",
    "positive_float",
    "positive_int",
]

_INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


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
