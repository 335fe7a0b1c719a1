"""Exact Q(s_1 … s_t) of eq. (14), its baselines and ∇J of eq. (9) by enumeration (float64, tiny spaces).

The exact twins of :mod:`gan_equiv.train.rollouts`: Q_t = E[D(S) + w·log p_G(S) | s_1 … s_t] at every
prefix-tree node by the tower property, the exact baseline V(h_t), the reward-to-go weights and the
gradient ∇J of J = E_{p_G}[D + w·log p_G] by autograd over all V^T sequences. The Monte-Carlo
estimators are checked against these (claim E10).

Direction: the generator *descends* ∇J; every gradient returned here is ∇J itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gan_equiv.checks import choice
from gan_equiv.models.energies import SequenceEnergy
from gan_equiv.models.policies import SequencePolicy
from gan_equiv.train.rollouts import MODES, Mode, check_given, check_pair, check_weight, past_log_probs
from maxent_il.space import EnumerationTooLargeError, SequenceSpace

#: Largest V^T the exact routes enumerate by default (they hold all V^T sequences and their states).
EXACT_MAX_SEQUENCES = 2**20


@dataclass(frozen=True)
class _ExactTables:
    """Q at every prefix-tree node: ``q[t]`` is (V^t,) indexed by the prefix s_1 … s_t (q[0] = J)."""

    q: list[Tensor]
    step_log_probs: Tensor  # (V^T, T) log p_G(s_t | h_t) of every sequence, index order


@torch.no_grad()
def _exact_tables(
    policy: SequencePolicy, energy: SequenceEnergy, w: float, max_sequences: int
) -> _ExactTables:
    V, T = policy.n_items, policy.horizon
    space = SequenceSpace(V, T)
    if space.size > max_sequences:
        raise EnumerationTooLargeError(
            f"exact Q-values enumerate every continuation: V={V}, T={T} gives V^T={space.size:.3e} "
            f"sequences, above max_sequences={max_sequences:.3e}. Use mc_q_values for large spaces, "
            "or pass a larger max_sequences."
        )
    every = torch.as_tensor(space.all_sequences(max_sequences=max_sequences), device=policy.device)
    step = policy.step_log_probs(every).double()  # (V^T, T)
    q: list[Tensor] = [torch.empty(0)] * (T + 1)
    q[T] = energy(every).double() + w * step.sum(dim=1)  # (V^T,): D(S) + w·log p_G(S)
    for t in range(T - 1, -1, -1):  # backward over the T tree levels, vectorized over nodes
        # log p_G(s_{t+1} | s_1 … s_t) per node of depth t+1: first member of each index block.
        p = step[:: V ** (T - t - 1), t].exp()  # (V^{t+1},)
        q[t] = torch.where(p > 0, p * q[t + 1], 0.0).view(V**t, V).sum(dim=1)  # tower property
    return _ExactTables(q, step)


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
    eq. 14, Q of eq. 5), computed for every prefix-tree node by the tower property
    Q_t(h) = Σ_a p_G(a | h) Q_{t+1}(h a) over the enumerated space; column T is D(S) + w·log p_G(S).
    Raises :class:`~maxent_il.space.EnumerationTooLargeError` when V^T > ``max_sequences``.
    """
    check_pair(policy, energy)
    w = check_weight(entropy_weight)
    seqs = check_given(policy, sequences)
    tables = _exact_tables(policy, energy, w, max_sequences)
    V, T = policy.n_items, policy.horizon
    idx = _indices(seqs, V)  # (N,)
    return torch.stack([tables.q[t][idx // V ** (T - t)] for t in range(1, T + 1)], dim=1)


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
    tables = _exact_tables(policy, energy, w, max_sequences)
    V, T = policy.n_items, policy.horizon
    idx = _indices(seqs, V)
    values = torch.stack([tables.q[t - 1][idx // V ** (T - t + 1)] for t in range(1, T + 1)], dim=1)
    if mode == "reward_to_go":
        values = values - w * past_log_probs(tables.step_log_probs[idx])
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
    tables = _exact_tables(policy, energy, w, max_sequences)
    V, T = policy.n_items, policy.horizon
    idx = _indices(seqs, V)
    q = torch.stack([tables.q[t][idx // V ** (T - t)] for t in range(0, T + 1)], dim=1)  # (N, T+1)
    if subtract_value:
        return q[:, 1:] - q[:, :-1]
    return q[:, 1:] - w * past_log_probs(tables.step_log_probs[idx])


def gradient_parameters(policy: SequencePolicy) -> list[Tensor]:
    """The policy parameters gradients are taken over (those with requires_grad), in order."""
    return [p for p in policy.parameters() if p.requires_grad]


def flat_gradient(objective: Tensor, params: list[Tensor]) -> Tensor:
    """∇objective over ``params`` as one flat float64 vector (zeros for unused parameters)."""
    grads = torch.autograd.grad(objective, params, allow_unused=True)
    flat = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    return torch.cat([g.reshape(-1) for g in flat]).double()


def exact_policy_gradient(
    policy: SequencePolicy,
    energy: SequenceEnergy,
    *,
    entropy_weight: float = 1.0,
    max_sequences: int = EXACT_MAX_SEQUENCES,
) -> Tensor:
    """∇J of eq. (9), J = Σ_S p_G(S)[D(S) + w·log p_G(S)], by autograd over the enumerated space.

    Returns a flat float64 vector over ``[p for p in policy.parameters() if p.requires_grad]`` (in
    that order). D is held fixed (it belongs to the discriminator). Direction: the generator
    descends this gradient. Exact up to the policy's dtype (use float64 policies for exactness).
    """
    check_pair(policy, energy)
    w = check_weight(entropy_weight)
    space = SequenceSpace(policy.n_items, policy.horizon)
    if space.size > max_sequences:
        raise EnumerationTooLargeError(
            f"the exact gradient enumerates all V^T={space.size:.3e} sequences (V={space.n_items}, "
            f"T={space.horizon}), above max_sequences={max_sequences:.3e}; use mc_policy_gradient"
        )
    every = torch.as_tensor(space.all_sequences(max_sequences=max_sequences), device=policy.device)
    with torch.no_grad():
        d = energy(every).double()  # (V^T,)
    log_p = policy.log_prob(every).double()  # (V^T,), differentiable
    objective = (log_p.exp() * (d + w * log_p)).sum()  # J, eq. (9)
    return flat_gradient(objective, gradient_parameters(policy))
