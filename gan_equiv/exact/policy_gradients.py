"""Monte-Carlo policy gradients of eq. (14) (full return, reward-to-go, baselines) and eq. (5) as printed.

Each returns a flat float64 vector over the policy's trainable parameters, comparable with
:func:`gan_equiv.exact.q_values.exact_policy_gradient` (claim E10; the z-tests in
tests/test_rollouts.py). Direction: the generator descends the returned vector.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from gan_equiv.checks import choice, positive_int
from gan_equiv.exact.enumeration import flat_gradient, gradient_parameters
from gan_equiv.exact.q_values import exact_state_values
from gan_equiv.losses import policy_gradient_surrogate
from gan_equiv.models.energies import SequenceEnergy
from gan_equiv.models.policies import SequencePolicy
from gan_equiv.train.rollouts import Mode, check_pair, mc_q_values

#: Named baselines of :func:`mc_policy_gradient` (a callable is accepted too).
BASELINES: tuple[str, ...] = ("exact_value", "leave_one_out")
Baseline = Literal["exact_value", "leave_one_out"] | Callable[[Tensor], Tensor] | None


def _baseline_values(
    baseline: Baseline,
    policy: SequencePolicy,
    energy: SequenceEnergy,
    seqs: Tensor,
    q: Tensor,
    w: float,
    mode: str,
) -> Tensor | None:
    """b_t(h_t) for each sampled sequence: float64 (N, T), or None."""
    if baseline is None:
        return None
    if callable(baseline):
        b = torch.as_tensor(baseline(seqs), device=q.device).double()
        if b.shape != q.shape:
            raise ValueError(f"baseline(sequences) must return shape {tuple(q.shape)}, got {tuple(b.shape)}")
        return b
    name = choice(baseline, "baseline", BASELINES)
    if name == "exact_value":
        return exact_state_values(policy, energy, seqs, entropy_weight=w, mode=mode)
    n = q.shape[0]  # leave-one-out: mean over the *other* samples, independent of sample n
    return (q.sum(dim=0, keepdim=True) - q) / (n - 1)


def mc_policy_gradient(
    policy: SequencePolicy,
    energy: SequenceEnergy,
    n_samples: int,
    *,
    n_rollouts: int,
    entropy_weight: float = 1.0,
    mode: Mode = "full",
    baseline: Baseline = None,
    generator: torch.Generator | None = None,
    chunk_rows: int | None = None,
) -> Tensor:
    """Monte-Carlo estimate of ∇J by eq. (14): flat float64 vector (as :func:`exact_policy_gradient`).

    Draws ``n_samples`` sequences from p_G, estimates their Q (or reward-to-go) with ``n_rollouts``
    rollouts per prefix, subtracts the baseline, and differentiates
    ``losses.policy_gradient_surrogate`` = mean_n Σ_t log p_G(s_t | h_t)·(Q̂_t − b_t). Unbiased for
    every mode and baseline. Baselines: ``"exact_value"`` (V(h_t) by enumeration; tiny spaces),
    ``"leave_one_out"`` (mean Q̂_t of the other samples; needs n_samples ≥ 2), or a callable
    ``sequences (N, T) → (N, T)`` whose column t may depend on s_1 … s_{t−1} only. Direction: the
    generator descends the returned vector.
    """
    check_pair(policy, energy)
    n = positive_int(n_samples, "n_samples", hint="sequences drawn from p_G")
    if baseline == "leave_one_out" and n < 2:
        raise ValueError("the leave_one_out baseline needs n_samples >= 2")
    seqs = policy.sample(n, generator=generator)  # (N, T)
    q = mc_q_values(
        policy,
        energy,
        seqs,
        n_rollouts=n_rollouts,
        entropy_weight=entropy_weight,
        mode=mode,
        generator=generator,
        chunk_rows=chunk_rows,
    )
    b = _baseline_values(baseline, policy, energy, seqs, q, float(entropy_weight), mode)
    weights = q if b is None else q - b  # (N, T)
    step = policy.step_log_probs(seqs)  # (N, T), differentiable
    surrogate = policy_gradient_surrogate(step, weights.to(step.dtype))
    return flat_gradient(surrogate, gradient_parameters(policy))


def mc_policy_gradient_eq5_as_printed(
    policy: SequencePolicy,
    energy: SequenceEnergy,
    n_samples: int,
    *,
    n_rollouts: int,
    entropy_weight: float = 1.0,
    generator: torch.Generator | None = None,
    chunk_rows: int | None = None,
) -> Tensor:
    """Eq. (5) *as printed*: Σ_t E_{s_1…s_t ~ p_G} ∇p_G(s_t | h_t)·Q(s_1 … s_t) — **biased**.

    The Monte-Carlo estimate mean_n Σ_t ∇p_G(s_t | h_t)·Q̂_t (the gradient of the *probability*,
    not of its log). Its expectation is Σ_t E[p_G(s_t | h_t)·∇log p_G(s_t | h_t)·Q_t]: every
    score term carries an extra weight p_G(s_t | h_t) ≤ 1, so it is not ∇J (eq. 14) in general.
    When every conditional p_G(· | h) is uniform it equals ∇J / V exactly (right direction, wrong
    scale); see docs/errata.md. Returned for demonstration only (flat float64, like
    :func:`mc_policy_gradient`).
    """
    check_pair(policy, energy)
    n = positive_int(n_samples, "n_samples", hint="sequences drawn from p_G")
    seqs = policy.sample(n, generator=generator)
    q = mc_q_values(
        policy,
        energy,
        seqs,
        n_rollouts=n_rollouts,
        entropy_weight=entropy_weight,
        generator=generator,
        chunk_rows=chunk_rows,
    )
    step = policy.step_log_probs(seqs)  # (N, T)
    surrogate = (step.exp() * q.to(step.dtype)).sum(dim=1).mean()  # ∇ of this = eq. (5) as printed
    return flat_gradient(surrogate, gradient_parameters(policy))
