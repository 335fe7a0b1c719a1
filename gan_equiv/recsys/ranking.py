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
    s = torch.as_tensor(scores)
    if s.ndim != 2 or s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(f"scores must have shape (N, V) with N, V ≥ 1, got {tuple(s.shape)}")
    if not s.dtype.is_floating_point:
        s = s.double()
    if torch.isnan(s).any():
        raise ValueError("scores contain NaN; rankings are undefined")
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
    target_score = s.gather(1, y[:, None])
    greater = (s > target_score).sum(dim=1).cpu().numpy().astype(np.int64)
    equal = ((s == target_score).sum(dim=1) - 1).cpu().numpy().astype(np.int64)
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
