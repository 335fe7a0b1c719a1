"""E19: the analytic-entropy generator estimator (``gan_equiv.train.entropy_gradient``) is unbiased.

The estimator's gradient is linear in the rollout Q^D, and Q^D is unbiased given the sampled
sequence, so its expectation over samples *and* rollouts is the surrogate with the exact
Q^D_t = E[D(S) | s_1 … s_t] averaged over all V^T sequences with weights p_G(S) (held fixed). That
expectation is compared with the exact ∇J of eq. (9) (J = E[D] − w·H(p_G)).
"""

from __future__ import annotations

import torch

from gan_equiv.checks import finite_float
from gan_equiv.exact.claim_base import CheckResult, TinyProblem
from gan_equiv.exact.family_common import all_sequences, policy_flat_gradient
from gan_equiv.exact.q_values import exact_policy_gradient, exact_q_values, exact_state_values
from gan_equiv.models.energies import LinearEnergy, SequenceEnergy
from gan_equiv.models.policies import GRUPolicy, SequencePolicy
from gan_equiv.train.entropy_gradient import analytic_entropy_surrogate
from maxent_il.space import SequenceSpace


def expected_analytic_entropy_gradient(
    policy: SequencePolicy,
    energy: SequenceEnergy,
    *,
    entropy_weight: float = 1.0,
    exact_baseline: bool = True,
) -> torch.Tensor:
    """E[∇L] of the analytic-entropy surrogate by enumeration: flat float64 vector (as ∇J of eq. 9).

    Σ_S p_G(S)·∇L(S) with the exact Q^D (``exact_q_values`` at w = 0) and, with ``exact_baseline``,
    the exact value V^D(h_t) (a function of h_t only) as baseline.
    """
    w = finite_float(entropy_weight, "entropy_weight")
    seqs = all_sequences(SequenceSpace(policy.n_items, policy.horizon))
    q = exact_q_values(policy, energy, seqs, entropy_weight=0.0)  # (V^T, T) Q^D
    b = exact_state_values(policy, energy, seqs, entropy_weight=0.0) if exact_baseline else None
    with torch.no_grad():
        p = policy.log_prob(seqs).exp()  # (V^T,) fixed weights
    surrogate = analytic_entropy_surrogate(policy, seqs, q, entropy_weight=w, baseline=b, weights=p)
    return policy_flat_gradient(surrogate, policy)


def check_e19(problem: TinyProblem, *, entropy_weight: float = 1.0) -> CheckResult:
    """E19: the analytic-entropy estimator (energy part from rollouts, entropy part
    Σ_t ∇H(p_G(·|h_t)) + score of future per-step entropies) has mean ∇J of eq. (9)/(14), exactly
    (GRU policy, linear energy, with and without the exact baseline)."""
    torch.manual_seed(problem.seed)
    space = problem.space
    policy = GRUPolicy(space.n_items, space.horizon, embed_dim=4, hidden_dim=6, dtype=torch.float64)
    energy = LinearEnergy(problem.features, theta=problem.theta)
    exact = exact_policy_gradient(policy, energy, entropy_weight=entropy_weight)
    with_b = expected_analytic_entropy_gradient(policy, energy, entropy_weight=entropy_weight)
    without_b = expected_analytic_entropy_gradient(
        policy, energy, entropy_weight=entropy_weight, exact_baseline=False
    )
    scale = max(1.0, float(exact.abs().max()))
    err = max(float((with_b - exact).abs().max()), float((without_b - exact).abs().max())) / scale
    return CheckResult(
        "E19",
        "analytic-entropy generator estimator (rollout energy part, per-step entropy) is unbiased for ∇J",
        "(4), (9), (14)",
        float(with_b.norm()),
        float(exact.norm()),
        err,
        1e-10,
    )
