"""The q-step of paper §4: min_q KL(q‖P_θ) (eq. 18), i.e. min_q F(q) = E_q[c + log q] (eq. 20).

F(q) = E_q c − H(q) = KL(q‖P_θ) − log Z (claim E4), so the exact minimizer is q = P_θ
(:func:`exact_q_step`); an inexact q-step takes k gradient-descent steps on F over a tabular
autoregressive q (:func:`inexact_q_step`, exact gradient by :meth:`TabularQ.objective_and_gradient`).
Exact on tiny enumerable spaces, float64, every sum over all V^T sequences in index order. The loop
that alternates q-steps with c-steps is :func:`maxent_il.two_step.two_step`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from maxent_il.checks import positive_float, positive_int, probability_vector
from maxent_il.divergences import entropy
from maxent_il.features import FeatureMap
from maxent_il.gibbs import log_gibbs
from maxent_il.tabular_q import TabularQ


def q_distribution(features: FeatureMap, q: Any) -> np.ndarray:
    """q over all V^T sequences, shape (V^T,): a probability vector in index order, or a :class:`TabularQ`."""
    if isinstance(q, TabularQ):
        if q.space != features.space:
            raise ValueError(f"q lives on {q.space} but the features on {features.space}")
        return q.probabilities()
    return probability_vector(q, "q", size=features.space.size)


def q_objective(features: FeatureMap, theta: Any, q: Any) -> float:
    """Eq. (20): F(q) = E_q c − H(q) = E_q[c(S) + log q(S)] = KL(q‖P_θ) − log Z (eq. 18, E4)."""
    theta = features.check_theta(theta)
    q = q_distribution(features, q)
    costs = features.costs(theta, features.space.all_sequences())  # (V^T,)
    return float(q @ costs) - entropy(q)


@dataclass(frozen=True)
class QStepResult:
    """Result of a q-step.

    Attributes:
        q: the new tabular q.
        objectives: F(q) of eq. (20) before each gradient step and after the last, shape (k+1,);
            for the exact step the single value F(P_θ) = −log Z.
    """

    q: TabularQ
    objectives: np.ndarray


def exact_q_step(features: FeatureMap, theta: Any) -> QStepResult:
    """The exact minimizer of (20) (and of 18): q = P_θ of eq. (8), as a :class:`TabularQ`.

    Its conditionals are the soft Bellman policy of P_θ (E12); computed here from the enumerated
    log P_θ, so any feature map works.
    """
    theta = features.check_theta(theta)
    log_p, log_z = log_gibbs(features.costs(theta, features.space.all_sequences()))
    return QStepResult(TabularQ.from_log_probs(features.space, log_p), np.array([-log_z]))


def inexact_q_step(
    features: FeatureMap, theta: Any, q: TabularQ | Any, *, n_steps: int, lr: float
) -> QStepResult:
    """k = ``n_steps`` gradient-descent steps on F(q) of eq. (20) from ``q`` (warm start).

    ``q`` is a :class:`TabularQ` or its flat logits. Each step is logits ← logits − lr·∂F/∂logits
    with the exact gradient of :meth:`TabularQ.objective_and_gradient` (direction: F decreases).
    """
    theta = features.check_theta(theta)
    n_steps = positive_int(n_steps, "n_steps", hint="k, gradient steps per q-step")
    lr = positive_float(lr, "lr", hint="the q-step size")
    if not isinstance(q, TabularQ):
        q = TabularQ(features.space, q)
    elif q.space != features.space:
        raise ValueError(f"q lives on {q.space} but the features on {features.space}")
    costs = features.costs(theta, features.space.all_sequences())  # (V^T,)
    logits = q.logits.copy()
    objectives = np.empty(n_steps + 1)
    for step in range(n_steps):  # k sequential gradient steps
        value, grad = TabularQ(q.space, logits).objective_and_gradient(costs)
        objectives[step] = value
        logits -= lr * grad
    out = TabularQ(q.space, logits)
    objectives[n_steps] = out.objective_and_gradient(costs)[0]
    return QStepResult(out, objectives)
