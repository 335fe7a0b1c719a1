"""Exact Q(s_1 … s_t) of eq. (14), its baselines and ∇J of eq. (9) by enumeration (float64, tiny spaces).

The exact twins of :mod:`gan_equiv.train.rollouts`: Q_t = E[D(S) + w·log p_G(S) | s_1 … s_t] at every
prefix-tree node by the tower property, the exact baseline V(h_t), the reward-to-go weights and the
gradient ∇J of J = E_{p_G}[D + w·log p_G] by autograd over all V^T sequences. The Monte-Carlo
estimators are checked against these (claim E10).

Direction: the generator *descends* ∇J; every gradient returned here is ∇J itself.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan_equiv.checks import choice
from gan_equiv.exact.enumeration import (
    enumerate_policy,
    flat_gradient,
    gradient_parameters,
    prefix_q_tables,
)
from gan_equiv.exact.gradients import line9
from gan_equiv.models.energies import SequenceEnergy
from gan_equiv.models.policies import SequencePolicy
from gan_equiv.train.rollouts import MODES, Mode, check_given, check_pair, check_weight, past_log_probs

__all__ = [
    "EXACT_MAX_SEQUENCES",
    "exact_policy_gradient",
    "exact_q_values",
    "exact_reward_to_go",
    "exact_state_values",
    "flat_gradient",
    "gradient_parameters",
]

#: Largest V^T the exact routes enumerate by default (they hold all V^T sequences and their states).
EXACT_MAX_SEQUENCES = 2**20


def _prefix_tables(
    policy: SequencePolicy, energy: SequenceEnergy, w: float, max_sequences: int
) -> tuple[list[Tensor], Tensor]:
    """(Q at every prefix-tree node, log p_G(s_t | h_t) of every sequence (V^T, T)) by enumeration."""
    problem = enumerate_policy(policy, energy, entropy_weight=w, max_sequences=max_sequences)
    return prefix_q_tables(problem.step_log_probs, problem.cost, policy.n_items), problem.step_log_probs


def _indices(seqs: Tensor, n_items: int) -> Tensor:
    """index(S) = Σ_t s_t V^(T−t): (N,) int64."""
    place = n_items ** torch.arange(seqs.shape[1] - 1, -1, -1, device=seqs.device)
    return (seqs * place).sum(dim=1)


def exact_q_values(
    policy: SequencePolicy,
    energy: SequenceEnergy,
    sequences: Tensor,
    *,
    entropy_weight: float = 1.0,
    max_sequences: int = EXACT_MAX_SEQUENCES,
) -> Tensor:
    """Exact Q(s_1 … s_t) of eq. (14) for every prefix of every given sequence: float64 (N, T).

    Q_t = Σ_{s_{t+1} … s_T} p_G(s_{t+1} … s_T | s_1 … s_t)[D(S) + w·log p_G(S)] (the inner sum of
    eq. 14, Q of eq. 5), read off the one exact-Q engine
    (:func:`~gan_equiv.exact.enumeration.prefix_q_tables`, tower property
    Q_t(h) = Σ_a p_G(a | h) Q_{t+1}(h a) over the enumerated space); column T is D(S) + w·log p_G(S).
    Raises :class:`~maxent_il.space.EnumerationTooLargeError` when V^T > ``max_sequences``.
    """
    check_pair(policy, energy)
    w = check_weight(entropy_weight)
    seqs = check_given(policy, sequences)
    q, _ = _prefix_tables(policy, energy, w, max_sequences)
    V, T = policy.n_items, policy.horizon
    idx = _indices(seqs, V)  # (N,)
    return torch.stack([q[t][idx // V ** (T - t)] for t in range(1, T + 1)], dim=1)


def exact_state_values(
    policy: SequencePolicy,
    energy: SequenceEnergy,
    sequences: Tensor,
    *,
    entropy_weight: float = 1.0,
    mode: Mode = "full",
    max_sequences: int = EXACT_MAX_SEQUENCES,
) -> Tensor:
    """Exact baseline V(h_t) = E_{s_t ~ p_G(·|h_t)}[Q_t] for t = 1 … T: float64 (N, T).

    For ``mode="full"`` this is Q_{t−1}(h_t) (tower property; V(h_1) = J of eq. 9); for
    ``"reward_to_go"`` it is Q_{t−1}(h_t) − w·Σ_{k<t} log p_G(s_k | h_k). It depends on h_t only, so
    subtracting it from the weights of eq. (14) keeps the expected gradient.
    """
    check_pair(policy, energy)
    mode = choice(mode, "mode", MODES)
    w = check_weight(entropy_weight)
    seqs = check_given(policy, sequences)
    q, step = _prefix_tables(policy, energy, w, max_sequences)
    V, T = policy.n_items, policy.horizon
    idx = _indices(seqs, V)
    values = torch.stack([q[t - 1][idx // V ** (T - t + 1)] for t in range(1, T + 1)], dim=1)
    if mode == "reward_to_go":
        values = values - w * past_log_probs(step[idx])
    return values


def exact_reward_to_go(
    policy: SequencePolicy,
    energy: SequenceEnergy,
    sequences: Tensor,
    *,
    entropy_weight: float = 1.0,
    subtract_value: bool = False,
    max_sequences: int = EXACT_MAX_SEQUENCES,
) -> Tensor:
    """Exact reward-to-go weights of eq. (14): float64 (N, T).

    Q^rtg_t = E[D(S) + w·Σ_{k≥t} log p_G(s_k | h_k) | s_1 … s_t] = Q_t − w·Σ_{k<t} log p_G(s_k | h_k).
    The dropped past terms depend on h_t only (zero-mean score-function contribution), so the
    expected gradient is that of eq. (14). With ``subtract_value`` the exact value
    V^rtg(h_t) = E_{s_t}[Q^rtg_t] is subtracted too, leaving the advantage Q_t − Q_{t−1}(h_t).
    """
    check_pair(policy, energy)
    w = check_weight(entropy_weight)
    seqs = check_given(policy, sequences)
    tables, step = _prefix_tables(policy, energy, w, max_sequences)
    V, T = policy.n_items, policy.horizon
    idx = _indices(seqs, V)
    q = torch.stack([tables[t][idx // V ** (T - t)] for t in range(0, T + 1)], dim=1)  # (N, T+1)
    if subtract_value:
        return q[:, 1:] - q[:, :-1]
    return q[:, 1:] - w * past_log_probs(step[idx])


def exact_policy_gradient(
    policy: SequencePolicy,
    energy: SequenceEnergy,
    *,
    entropy_weight: float = 1.0,
    max_sequences: int = EXACT_MAX_SEQUENCES,
) -> Tensor:
    """∇J of eq. (9), J = Σ_S p_G(S)[D(S) + w·log p_G(S)], by autograd over the enumerated space.

    Returns a flat float64 vector over ``[p for p in policy.parameters() if p.requires_grad]`` (in
    that order). D is held fixed (it belongs to the discriminator, evaluated in eval mode).
    Direction: the generator descends this gradient. Computed as
    :func:`gan_equiv.exact.gradients.line9` of a fresh snapshot; exact up to the policy's dtype (use
    float64 policies for exactness). Raises
    :class:`~maxent_il.space.EnumerationTooLargeError` when V^T > ``max_sequences``.
    """
    check_pair(policy, energy)
    w = check_weight(entropy_weight)
    problem = enumerate_policy(policy, energy, entropy_weight=w, max_sequences=max_sequences)
    return line9(problem)
