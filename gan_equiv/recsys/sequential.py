"""RecBole-style training examples: one per target position with all its history (up to C items).

A user's training prefix x_0 … x_{L−1} gives the L − 1 examples (history x_{max(0, t−C)} … x_{t−1},
target x_t) for t = 1 … L − 1 — RecBole's sequential data augmentation. With a causal generator of
horizon T = C + 1 (start token, then at most C items of context) they pack into rows of T items:

- a *head* row x_0 … x_{min(L, T)−1} (0 after the end) carries the targets t = 1 … min(L, T) − 1,
  each conditioned on its whole history (p_G(x_t | start, x_0 … x_{t−1}), causal: the padding
  after the row's end is never seen by an earlier position);
- a *tail* row x_{t−C} … x_t for every t ≥ T carries the one target x_t after its last C items.

:func:`prefix_examples` builds both without a loop over users; :func:`masked_mle_epoch` is one
epoch of behaviour cloning on them (mean −log p_G over the marked targets).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gan_equiv.checks import positive_int
from gan_equiv.models.policies import SequencePolicy
from gan_equiv.models.sasrec import SASRecPolicy
from gan_equiv.recsys.logs import Ragged, runs_at


@dataclass(frozen=True)
class PrefixExamples:
    """Packed examples: ``items`` int64 (M, T) rows, ``targets`` bool (M, T) — position j of row m
    is a training target. ``targets.sum()`` = Σ_users (L − 1), one per target position."""

    items: np.ndarray
    targets: np.ndarray

    @property
    def n_examples(self) -> int:
        """Number of (history, target) examples."""
        return int(self.targets.sum())


def prefix_examples(train: Ragged, *, context: int) -> PrefixExamples:
    """Head and tail rows of T = context + 1 items for every training row (see the module text)."""
    C = positive_int(context, "context", hint="the number of previous items a target may see")
    T = C + 1
    L, off = train.lengths, train.offsets[:-1]
    cols = np.arange(T)
    head = np.flatnonzero(L >= 2)
    n_tail = np.maximum(L - T, 0)
    rows = np.repeat(np.arange(train.n_rows), n_tail)
    k = np.arange(rows.size) - np.repeat(np.cumsum(n_tail) - n_tail, n_tail)  # target t = T + k
    inside = cols[None, :] < L[head, None]  # (H, T)
    head_items = np.where(inside, runs_at(train.values, off[head], T), 0)  # x_0 … x_{min(L, T)−1}
    tail_items = runs_at(train.values, off[rows] + k + 1, T)  # (M_tail, T): x_{t−C} … x_t
    targets = np.zeros((head.size + rows.size, T), dtype=bool)
    targets[: head.size] = inside & (cols[None, :] >= 1)
    targets[head.size :, -1] = True
    return PrefixExamples(items=np.concatenate([head_items, tail_items]), targets=targets)


def target_log_probs(policy: SequencePolicy, items: Tensor, targets: Tensor) -> Tensor:
    """log p_G(x_j | start, x_0 … x_{j−1}) at the marked positions only: (n_targets,) in row-major order.

    Equals ``policy.step_log_probs(items)[targets]`` (teacher forcing) but runs the V-wide output
    layer only where a target is: one causal pass for SASRec, the recurrent states
    (``prefix_states``) then ``logits`` on the marked states for any other generator.
    """
    if isinstance(policy, SASRecPolicy):
        seqs = policy.check_sequences(items)
        h = policy.hidden(policy._tokens(seqs[:, :-1]))[targets]  # (n_targets, d)
        logits = policy.item_logits(h)
    else:
        states = policy.prefix_states(items)[:, :-1]  # (M, T, *S): the state before each position
        logits = policy.logits(states[targets])
    return torch.log_softmax(logits, dim=-1).gather(1, items[targets][:, None]).squeeze(1)


def masked_mle_epoch(
    policy: SequencePolicy,
    examples: PrefixExamples,
    optimizer: torch.optim.Optimizer,
    *,
    batch_size: int,
    generator: torch.Generator,
    grad_clip: float | None = None,
) -> float:
    """One shuffled epoch minimizing −mean log p_G(x_t | history) over the marked targets of each
    batch of rows (teacher forcing, one ``step_log_probs`` call per batch); returns the mean NLL
    per target over the epoch."""
    items = torch.as_tensor(examples.items, device=policy.device)  # (M, T)
    mask = torch.as_tensor(examples.targets, device=policy.device)  # (M, T)
    order = torch.randperm(items.shape[0], generator=generator).to(policy.device)
    total, count = 0.0, 0
    policy.train()
    for start in range(0, order.numel(), batch_size):
        pick = order[start : start + batch_size]
        m = mask[pick]
        logp: Tensor = target_log_probs(policy, items[pick], m).float()  # (targets in the batch,)
        n = int(m.sum())
        nll = -logp.sum() / max(n, 1)  # minimized
        optimizer.zero_grad(set_to_none=True)
        nll.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(policy.parameters(), grad_clip)
        optimizer.step()
        total += float(nll.detach()) * n
        count += n
    policy.eval()
    return total / max(count, 1)
