"""The analytic-entropy generator step: ∇J of eq. (4) with ψ = −w·H, entropy part computed per step.

J = E_{p_G}[D(S)] − w·H(p_G). The paper's estimator (14) puts w·log p_G(S) into the rollout return;
on long sequences log p_G(S) (tens to hundreds of nats) dominates the return and its variance. By
the chain rule of entropy H(p_G) = Σ_t E_{h_t} H_t(h_t), with H_t(h) = −Σ_a p_G(a | h) log p_G(a | h)
the entropy of the V conditional probabilities at the prefix h, so

    ∇H = Σ_t E[∇H_t(h_t)]                                   (direct term, exact at each visited h_t)
       + Σ_t E[∇log p_G(s_t | h_t) · Σ_{k>t} H_k(h_k)]      (score term of the future entropies)

(∇E_{h_t} g(h_t) = E[∇g] + E[g·Σ_{k<t} ∇log p_G(s_k | h_k)], regrouped by k). The energy part keeps
the rollouts: ∇E[D] = Σ_t E[∇log p_G(s_t | h_t)·Q^D_t], Q^D_t = E[D(S) | s_1 … s_t]
(``mc_q_values`` with ``entropy_weight=0``). Hence the surrogate

    L = mean_n Σ_t [ log p_G(s_t | h_t)·(Q^D_t − w·F_t − b_t) − w·H_t(h_t) ],   F_t = Σ_{k>t} H_k(h_k),

with Q^D, F and any baseline b_t(h_t) held fixed, has E[∇L] = ∇J exactly (``tests/test_family.py``
proves it by enumeration; ``benchmarks/bench_estimator_variance.py`` measures its variance against
the full-return estimator). Direction: the generator *minimizes* L (descends ∇J).
Shapes: sequences (N, T), per-step tensors (N, T).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from gan_equiv.models.policies import SequencePolicy
from gan_equiv.train.rollouts import check_given, check_weight

Baseline = Tensor | Literal["leave_one_out"] | None
#: ``call(method, *args)`` runs ``policy.method(*args)``, possibly through a wrapper such as DDP.
PolicyCall = Callable[..., Any]


@dataclass(frozen=True)
class StepTerms:
    """Per-step quantities of the sampled sequences, both differentiable in the policy parameters.

    Attributes:
        step_log_probs: log p_G(s_t | h_t), (N, T).
        step_entropies: H_t(h_t) = −Σ_a p_G(a | h_t) log p_G(a | h_t), (N, T), in nats.
    """

    step_log_probs: Tensor
    step_entropies: Tensor


def step_terms(policy: SequencePolicy, sequences: Tensor, *, call: PolicyCall | None = None) -> StepTerms:
    """log p_G(s_t | h_t) and H(p_G(· | h_t)) at every visited prefix, from one teacher-forced pass.

    Implements the per-step factors of H(p_G) = Σ_t E_{h_t} H_t(h_t) (chain rule of entropy).
    ``call(method, *args)`` routes the policy's ``prefix_states`` and ``logits`` (a trainer passes
    its DDP entry point so that the gradients are averaged over ranks); default: direct calls.
    """
    seqs = check_given(policy, sequences)
    N, T = seqs.shape
    run = call if call is not None else (lambda method, *args: getattr(policy, method)(*args))
    states = run("prefix_states", seqs)[:, :-1]  # (N, T, *S): state before s_t
    flat = states.reshape(N * T, *states.shape[2:])
    logits = run("logits", flat)  # (N·T, V)
    if logits.dtype in (torch.float16, torch.bfloat16):  # autocast: the softmax and entropy in float32
        logits = logits.float()
    logp = torch.log_softmax(logits, dim=-1)  # (N·T, V)
    chosen = logp.gather(1, seqs.reshape(-1, 1)).view(N, T)
    # H = −Σ_a p log p; items of zero probability contribute 0 (p·log p → 0)
    probs = logp.exp()
    plogp = probs * torch.where(probs > 0, logp, torch.zeros_like(logp))
    return StepTerms(chosen, -plogp.sum(dim=1).view(N, T))


def future_entropies(step_entropies: Tensor) -> Tensor:
    """F_t = Σ_{k>t} H_k(h_k), reward-to-go of the per-step entropies (strictly after t): (N, T), detached."""
    h = step_entropies.detach()
    return torch.flip(torch.cumsum(torch.flip(h, [1]), dim=1), [1]) - h


def analytic_entropy_returns(energy_q: Tensor, step_entropies: Tensor, *, entropy_weight: float) -> Tensor:
    """The score-function weights before a baseline: Q^D_t − w·F_t, (N, T), detached float64.

    ``energy_q`` (N, T) is Q^D_t = E[D(S) | s_1 … s_t] (e.g. ``mc_q_values(..., entropy_weight=0)``).
    A trainer computes its baseline (e.g. leave-one-out over the batch) from these.
    """
    w = check_weight(entropy_weight)
    if energy_q.shape != step_entropies.shape:
        raise ValueError(
            f"energy_q {tuple(energy_q.shape)} and step_entropies {tuple(step_entropies.shape)} differ; "
            "both are (N, T) over the same sampled sequences"
        )
    return energy_q.detach().double() - w * future_entropies(step_entropies).double()


def leave_one_out(values: Tensor) -> Tensor:
    """b_t for sample n = mean of column t over the other samples: (N, T); needs N ≥ 2.

    Independent of sample n, so subtracting it keeps every expected gradient.
    """
    n = values.shape[0]
    if n < 2:
        raise ValueError("the leave_one_out baseline needs at least 2 sampled sequences (N >= 2)")
    return (values.sum(dim=0, keepdim=True) - values) / (n - 1)


def analytic_entropy_surrogate(
    policy: SequencePolicy,
    sequences: Tensor,
    energy_q: Tensor,
    *,
    entropy_weight: float,
    baseline: Baseline = None,
    weights: Tensor | None = None,
    terms: StepTerms | None = None,
) -> Tensor:
    """Surrogate whose gradient estimates ∇J, J = E_G[D] − w·H(p_G) (eq. 4, ψ = −w·H; eq. 9 at w = 1).

    L = mean_n Σ_t [log p_G(s_t | h_t)·(Q^D_t − w·F_t − b_t) − w·H_t(h_t)] (module docstring): the
    energy part by the score function with rollout Q^D (``energy_q`` (N, T), from ``mc_q_values``
    with ``entropy_weight=0``, either mode), the entropy part analytic per step. ``baseline``: None,
    ``"leave_one_out"`` (over the batch, of Q^D − w·F) or a tensor (N, T) whose column t depends on
    s_1 … s_{t−1} only. ``weights`` (N,), summing to one, replace the batch mean by a weighted sum
    (exact expectations on enumerated spaces). ``terms`` reuses a :func:`step_terms` result.
    Direction: the generator *minimizes* L; the value of L is not J (only its gradient matters).
    """
    seqs = check_given(policy, sequences)
    w = check_weight(entropy_weight)
    terms = step_terms(policy, seqs) if terms is None else terms
    if terms.step_log_probs.shape != seqs.shape:
        raise ValueError(
            f"terms are for shape {tuple(terms.step_log_probs.shape)}, sequences {tuple(seqs.shape)}"
        )
    returns = analytic_entropy_returns(energy_q, terms.step_entropies, entropy_weight=w)  # (N, T)
    if isinstance(baseline, str):
        if baseline != "leave_one_out":
            raise ValueError(
                f"unknown baseline {baseline!r}; choose 'leave_one_out', a (N, T) tensor or None"
            )
        returns = returns - leave_one_out(returns)
    elif baseline is not None:
        if baseline.shape != returns.shape:
            raise ValueError(f"baseline must have shape {tuple(returns.shape)}, got {tuple(baseline.shape)}")
        returns = returns - baseline.detach().double()
    dtype = terms.step_log_probs.dtype
    per_seq = (terms.step_log_probs * returns.to(dtype) - w * terms.step_entropies).sum(dim=1)  # (N,)
    if weights is None:
        return per_seq.mean()
    if weights.shape != per_seq.shape:
        raise ValueError(f"weights must have shape ({per_seq.shape[0]},), got {tuple(weights.shape)}")
    return (weights.detach().to(dtype) * per_seq).sum()
