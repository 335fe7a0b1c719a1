"""Exact maximum-entropy imitation learning over item sequences (paper eqs. 6–8, 15–21).

numpy/scipy only, float64 throughout. The public pieces:

- :class:`SequenceSpace` — the V^T sequences, chunked enumeration, index ↔ sequence.
- :class:`StateActionFeatures` / :class:`CustomFeatures` — feature maps f(S) (paper §2.4).
- :class:`GibbsModel`, :func:`gibbs_stats` — P_θ(S) = exp(−θ·f(S))/Z by enumeration (eq. 8).
- :func:`soft_bellman` — the same by dynamic programming for decomposable features (E12).
- :func:`log_likelihood_and_gradient` — exact LL and its gradient (eq. 15).
- :func:`fit_maxent` — the dual fit; :func:`solve_primal` — the primal (7) directly.
- :func:`two_step` and friends — the approximate LL (16, 17), q-steps (18, 20), c-step (21);
  :class:`TabularQ` — an autoregressive q with the exact gradient of (20).
"""

from maxent_il.dynamic import SoftBellmanResult, soft_bellman
from maxent_il.features import CustomFeatures, FeatureMap, StateActionFeatures, state_action_features
from maxent_il.gibbs import GibbsModel, GibbsStats, entropy, gibbs_stats, kl_divergence, log_partition
from maxent_il.likelihood import (
    Demonstrations,
    demo_moments,
    log_likelihood,
    log_likelihood_and_gradient,
    log_likelihood_gradient,
    model_moments,
)
from maxent_il.primal import PrimalSolution, solve_primal
from maxent_il.solver import MaxEntFit, UnboundedOptimumWarning, fit_maxent
from maxent_il.space import EnumerationTooLargeError, SequenceSpace, validate_sequences
from maxent_il.tabular_q import TabularQ
from maxent_il.two_step import (
    approximate_gradient,
    approximate_log_likelihood,
    c_step,
    exact_ll_ascent,
    exact_q_step,
    gradient_gap_bound,
    inexact_q_step,
    q_objective,
    two_step,
)

__all__ = [
    "CustomFeatures",
    "Demonstrations",
    "EnumerationTooLargeError",
    "FeatureMap",
    "GibbsModel",
    "GibbsStats",
    "MaxEntFit",
    "PrimalSolution",
    "SequenceSpace",
    "SoftBellmanResult",
    "StateActionFeatures",
    "TabularQ",
    "UnboundedOptimumWarning",
    "approximate_gradient",
    "approximate_log_likelihood",
    "c_step",
    "demo_moments",
    "entropy",
    "exact_ll_ascent",
    "exact_q_step",
    "fit_maxent",
    "gibbs_stats",
    "gradient_gap_bound",
    "inexact_q_step",
    "kl_divergence",
    "log_likelihood",
    "log_likelihood_and_gradient",
    "log_likelihood_gradient",
    "log_partition",
    "model_moments",
    "q_objective",
    "soft_bellman",
    "solve_primal",
    "state_action_features",
    "two_step",
    "validate_sequences",
]
