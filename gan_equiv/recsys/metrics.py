"""Next-item and multi-step metrics of a scorer on user histories (the two evaluation protocols).

- :func:`next_item_metrics` — HR/NDCG/MRR@k of the true next item in a full ranking over all V
  items (:func:`gan_equiv.recsys.ranking.ranking_metrics`, ties in expectation);
- :func:`multi_step_metrics` — the model generates n items greedily, feeding on its own outputs:
  list recall (:func:`list_recall`), per-position hit@k with model-fed vs data-fed prefixes (the
  cascading-error gap), catalogue coverage and distinct items (:class:`MultiStepResult`).

With ``exclude_seen`` the items already in the history — and, while generating, already generated
or fed — are removed from every ranking (right for catalogues that are not re-consumed, like
MovieLens; wrong for music with repeats).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gan_equiv.checks import positive_int
from gan_equiv.recsys.histories import Histories, Scorer, mask_seen
from gan_equiv.recsys.ranking import ranking_metrics


def next_item_metrics(
    model: Scorer,
    histories: Histories,
    targets: Tensor,
    *,
    ks: Sequence[int] = (10, 20),
    exclude_seen: bool = True,
    batch_size: int = 1024,
) -> dict[str, float]:
    """HR@k, NDCG@k, MRR@k of the target item in the model's full ranking over all V items.

    With ``exclude_seen`` the items of each history are ranked last (score −inf). Ties count by
    their expectation over random tie-breaking (:func:`gan_equiv.recsys.ranking.ranking_metrics`).
    Computed in chunks of ``batch_size`` users; means over all users.
    """
    batch_size = positive_int(batch_size, "batch_size")
    targets = torch.as_tensor(targets).long()
    if targets.shape != (len(histories),):
        raise ValueError(f"targets must have shape ({len(histories)},), got {tuple(targets.shape)}")
    totals: dict[str, float] = {}
    for start in range(0, len(histories), batch_size):
        h = histories.slice(start, start + batch_size)
        seen = h.seen_mask(model.n_items) if exclude_seen else None
        m = ranking_metrics(mask_seen(model.scores(h), seen), targets[start : start + batch_size], ks)
        for key, value in m.items():
            totals[key] = totals.get(key, 0.0) + value * len(h)
    return {k: v / len(histories) for k, v in totals.items()}


def list_recall(generated: Any, truth: Any) -> float:
    """Mean over users of |set(generated_u) ∩ set(truth_u)| / |set(truth_u)| (order ignored)."""
    g = torch.as_tensor(generated).long()
    y = torch.as_tensor(truth).long()
    if g.ndim != 2 or y.ndim != 2 or g.shape[0] != y.shape[0] or y.shape[1] == 0:
        raise ValueError(
            f"generated and truth must be (N, n) arrays of one N, got {tuple(g.shape)}, {tuple(y.shape)}"
        )
    same = y[:, :, None] == y[:, None, :]  # (N, n, n)
    first = ~torch.tril(same, diagonal=-1).any(dim=2)  # first occurrence of each distinct truth item
    found = (y[:, :, None] == g[:, None, :]).any(dim=2)  # truth item appears in the generated list
    return float(((found & first).sum(dim=1).double() / first.sum(dim=1).double()).mean())


def distinct_items(generated: Any) -> int:
    """Number of distinct items over all generated lists."""
    return int(torch.unique(torch.as_tensor(generated)).numel())


def catalogue_coverage(generated: Any, n_items: int) -> float:
    """Share of the catalogue that appears in at least one generated list: distinct items / V."""
    return distinct_items(generated) / n_items


@dataclass(frozen=True)
class MultiStepResult:
    """Multi-step (cascading-error) metrics of one model.

    Attributes:
        k: the cut-off of the per-position hits.
        recall: {n: mean list recall of the first n generated items vs the true next n}.
        hit_model: per-position HR@k (positions 1 … n_max) when the prefix is the model's own output.
        hit_data: the same with the true items as prefix (teacher forcing; position 1 = next-item HR@k).
        coverage: {n: catalogue coverage of the first n generated items}.
        distinct: {n: distinct items among the first n generated items of all users}.
        generated: int64 (N, n_max) the generated lists.
    """

    k: int
    recall: dict[int, float]
    hit_model: np.ndarray
    hit_data: np.ndarray
    coverage: dict[int, float]
    distinct: dict[int, int]
    generated: np.ndarray = field(repr=False)

    def row(self) -> dict[str, float | int]:
        """Flat metrics: recall_n{n}, hit{k}_model_n{n}, hit{k}_data_n{n} (means over positions 1…n),
        coverage_n{n}, distinct_n{n}."""
        out: dict[str, float | int] = {}
        for n in sorted(self.recall):
            out[f"recall_n{n}"] = self.recall[n]
            out[f"hit{self.k}_model_n{n}"] = float(self.hit_model[:n].mean())
            out[f"hit{self.k}_data_n{n}"] = float(self.hit_data[:n].mean())
            out[f"coverage_n{n}"] = self.coverage[n]
            out[f"distinct_n{n}"] = self.distinct[n]
        return out


def _argmax(scores: Tensor) -> Tensor:
    """Index of the first maximum of each row (N, V) → (N,); NumPy on the CPU (several times faster
    than torch's there), the same first-maximum rule either way."""
    if scores.device.type == "cpu" and scores.dtype in (torch.float32, torch.float64):
        return torch.from_numpy(scores.numpy().argmax(axis=1))
    return scores.argmax(dim=1)


@torch.no_grad()
def _roll(
    model: Scorer, histories: Histories, targets: Tensor, k: int, *, feed_truth: bool, exclude_seen: bool
) -> tuple[Tensor, np.ndarray]:
    """Greedy continuation for n steps; returns (generated (N, n), per-position HR@k sums (n,)).
    With ``feed_truth`` the true items are fed and ``generated`` is left unfilled (not used)."""
    n = targets.shape[1]
    seen = histories.seen_mask(model.n_items) if exclude_seen else None
    width = getattr(model, "context", None)
    if width is not None:  # the model reads only the last ``width`` items: append to those alone
        histories = Histories(histories.tail(max(width, 1)))
    generated = torch.empty(len(histories), n, dtype=torch.long)
    hits = np.zeros(n)
    rows = torch.arange(len(histories))
    for j in range(n):  # n steps, vectorized over users
        scores = mask_seen(model.scores(histories), seen)
        hits[j] = ranking_metrics(scores, targets[:, j], (k,))[f"HR@{k}"] * len(histories)
        if feed_truth:  # the data-fed pass needs no generated items
            fed = targets[:, j]
        else:
            generated[:, j] = _argmax(scores)  # greedy; ties → lowest item id
            fed = generated[:, j]
        histories = histories.append(fed)
        if seen is not None:
            seen[rows, fed] = True
    return generated, hits


def multi_step_metrics(
    model: Scorer,
    histories: Histories,
    future: Any,
    *,
    steps: Sequence[int] = (5, 10),
    k: int = 10,
    exclude_seen: bool = True,
    batch_size: int = 1024,
) -> MultiStepResult:
    """Generate n_max = max(steps) items per user greedily (argmax, ties → lowest id), each step
    feeding on the model's own previous outputs, and score against the true next items ``future``
    (N, ≥ n_max).

    Per position j the target y_j is ranked (full ranking, expected ties) under the model-fed prefix
    history + g_1 … g_{j−1} and the data-fed prefix history + y_1 … y_{j−1}; with ``exclude_seen``
    the history and the fed items are masked in both. Greedy lists are nested, so the first n
    generated items are the n-step list for every n in ``steps``.
    """
    batch_size = positive_int(batch_size, "batch_size")
    k = positive_int(k, "k")
    y = torch.as_tensor(future).long()
    n_max = max(steps)
    if y.ndim != 2 or y.shape[0] != len(histories) or y.shape[1] < n_max:
        raise ValueError(f"future must be (N={len(histories)}, >= {n_max}), got {tuple(y.shape)}")
    y = y[:, :n_max]
    gens, hit_m, hit_d = [], np.zeros(n_max), np.zeros(n_max)
    for start in range(0, len(histories), batch_size):
        h, t = histories.slice(start, start + batch_size), y[start : start + batch_size]
        g, hm = _roll(model, h, t, k, feed_truth=False, exclude_seen=exclude_seen)
        _, hd = _roll(model, h, t, k, feed_truth=True, exclude_seen=exclude_seen)
        gens.append(g)
        hit_m += hm
        hit_d += hd
    generated = torch.cat(gens)
    N = len(histories)
    return MultiStepResult(
        k=k,
        recall={n: list_recall(generated[:, :n], y[:, :n]) for n in steps},
        hit_model=hit_m / N,
        hit_data=hit_d / N,
        coverage={n: catalogue_coverage(generated[:, :n], model.n_items) for n in steps},
        distinct={n: distinct_items(generated[:, :n]) for n in steps},
        generated=generated.numpy(),
    )
