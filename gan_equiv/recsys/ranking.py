"""Next-item ranking metrics: HR@k, NDCG@k and MRR@k from a full ranking over all V items,
ties resolved in expectation over random tie-breaking."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch


def ranking_metrics(
    scores: Any,
    targets: Any,
    ks: Sequence[int] = (10, 20),
    *,
    ties: Literal["expected", "pessimistic"] = "expected",
) -> dict[str, float]:
    """HR@k, NDCG@k and MRR@k of a full ranking over all V items (higher score = ranked higher).

    For row i with target item y, let g = #{j: score_j > score_y} and e = #{j ≠ y: score_j =
    score_y}. The target's rank r is g + 1 without ties. With ``ties="expected"`` (default) each
    metric is its expectation over uniformly random tie-breaking, i.e. r uniform on g+1 … g+e+1
    (a constant scorer gets exactly the random baseline, HR@k = k/V); ``"pessimistic"`` takes
    r = g + e + 1. Per row: HR@k = [r ≤ k], NDCG@k = [r ≤ k]/log₂(r + 1) (one relevant item),
    MRR@k = [r ≤ k]/r; the returned values are means over rows, keyed ``"HR@k"``, ``"NDCG@k"``,
    ``"MRR@k"``.
    """
    s = torch.as_tensor(scores).detach()
    if s.ndim != 2 or s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(f"scores must have shape (N, V) with N, V ≥ 1, got {tuple(s.shape)}")
    if s.dtype not in (torch.float32, torch.float64):
        s = s.double()
    N, V = s.shape
    y = torch.as_tensor(targets, device=s.device)
    if y.shape != (N,) or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(
            f"targets must be {N} integer item ids (shape ({N},)), got {tuple(y.shape)} {y.dtype}"
        )
    y = y.long()
    if (y < 0).any() or (y >= V).any():
        bad = int(y[(y < 0) | (y >= V)][0])
        raise ValueError(f"target item {bad} is outside 0..{V - 1} (V={V})")
    if ties not in ("expected", "pessimistic"):
        raise ValueError(f"ties must be 'expected' or 'pessimistic', got {ties!r}")
    ks = [int(k) for k in ks]
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {ks}")
    greater, equal = rank_counts(s, y)
    if ties == "pessimistic":
        greater, equal = greater + equal, np.zeros_like(equal)
    # Expectations over r uniform on lo+1 … hi with lo = g, hi = g+e+1, via prefix sums of the gains.
    lo, hi = greater, greater + equal + 1
    ranks = np.arange(1, V + 1, dtype=np.float64)
    out: dict[str, float] = {}
    for k in ks:
        kk = min(k, V)
        gains = {
            "HR": np.ones(kk),
            "NDCG": 1.0 / np.log2(ranks[:kk] + 1.0),
            "MRR": 1.0 / ranks[:kk],
        }
        for name, gain in gains.items():
            cum = np.concatenate([[0.0], np.cumsum(gain)])  # cum[r] = Σ_{j ≤ r} gain_j
            spread = (cum[np.minimum(hi, kk)] - cum[np.minimum(lo, kk)]) / (hi - lo)
            single = np.where(hi <= kk, gain[np.minimum(hi, kk) - 1], 0.0)  # exact when untied
            per_row = np.where(hi - lo == 1, single, spread)
            out[f"{name}@{k}"] = float(per_row.mean())
    return out


def rank_counts(scores: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(g, e) per row of ``scores`` (N, V): g = #{j: s_j > s_y}, e = #{j ≠ y: s_j = s_y} for the
    target y of the row — the two counts of :func:`ranking_metrics`' rank distribution.

    NaN scores are refused. On the CPU the counts run in NumPy (one comparison pass each, no
    temporary integer matrix), elsewhere in torch; both give the same integers.
    """
    if scores.device.type == "cpu":
        a = scores.numpy()  # (N, V), shares memory
        if np.isnan(a.max()):  # the maximum propagates any NaN
            raise ValueError("scores contain NaN; rankings are undefined")
        target = a[np.arange(a.shape[0]), targets.numpy()][:, None]  # (N, 1)
        greater = np.count_nonzero(a > target, axis=1).astype(np.int64)
        equal = np.count_nonzero(a == target, axis=1).astype(np.int64) - 1
        return greater, equal
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN; rankings are undefined")
    target = scores.gather(1, targets[:, None])  # (N, 1)
    greater = (scores > target).sum(dim=1).cpu().numpy().astype(np.int64)
    equal = ((scores == target).sum(dim=1) - 1).cpu().numpy().astype(np.int64)
    return greater, equal
