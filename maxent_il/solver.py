"""Dual fit of the MaxEnt cost: θ* = argmax LL(θ) by L-BFGS on the exact likelihood (eqs. 8, 15).

At an unregularized interior optimum ∇LL = 0, i.e. E_{P_θ*} f = E_demo f: the moment-matching
constraint (6) holds and P_θ* is the max-entropy distribution of (7) (strong duality, E1/E3).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from maxent_il.features import FeatureMap
from maxent_il.likelihood import (
    Demonstrations,
    ExactMethod,
    check_l2,
    demo_moments,
    log_likelihood_and_gradient,
    model_moments,
)


class UnboundedOptimumWarning(UserWarning):
    """The unregularized optimum lies at infinity (features the demos never use)."""


@dataclass(frozen=True)
class MaxEntFit:
    """Result of :func:`fit_maxent`.

    Attributes:
        theta: fitted cost parameters θ*, shape (d,).
        log_likelihood: LL(θ*) including the −(λ/2)‖θ‖² term.
        gradient_norm: ‖∇LL(θ*)‖_∞ (eq. 15).
        iterations: L-BFGS iterations taken.
        converged: whether ‖∇LL‖_∞ ≤ gtol.
        demo_moments: E_demo f, shape (d,).
        model_moments: E_{P_θ*} f, shape (d,).
        log_partition: log Z(θ*).
        entropy: H(P_θ*) = log Z + θ*·E_P f.
        unused_features: indices of features with zero demo count (optimum at +∞ when λ = 0).
        message: the optimizer's message.
    """

    theta: np.ndarray
    log_likelihood: float
    gradient_norm: float
    iterations: int
    converged: bool
    demo_moments: np.ndarray
    model_moments: np.ndarray
    log_partition: float
    entropy: float
    unused_features: tuple[int, ...]
    message: str

    @property
    def moment_gap(self) -> float:
        """‖E_P f − E_demo f‖_∞: the violation of constraint (6)."""
        return float(np.abs(self.model_moments - self.demo_moments).max())


def fit_maxent(
    features: FeatureMap,
    demos: Any = None,
    *,
    weights: Any = None,
    target_moments: Any = None,
    l2: float = 0.0,
    gtol: float = 1e-8,
    max_iter: int = 1000,
    theta0: Any = None,
    method: ExactMethod = "auto",
) -> MaxEntFit:
    """Fit θ by maximizing the exact demo log-likelihood (eq. 15 gradient) with L-BFGS.

    Args:
        features: the feature map f.
        demos: expert sequences (N, T); or give ``target_moments`` instead.
        weights: optional non-negative weights for the demos.
        target_moments: E_demo f directly, shape (d,) (e.g. moments of a known distribution).
        l2: λ ≥ 0, strength of the −(λ/2)‖θ‖² term (λ > 0 keeps θ* finite).
        gtol: convergence tolerance on ‖∇LL‖_∞.
        max_iter: L-BFGS iteration cap.
        theta0: starting point (zeros by default).
        method: ``"dp"``, ``"enumerate"`` or ``"auto"`` (DP for decomposable features).

    Warns:
        UnboundedOptimumWarning: when λ = 0 and some features never occur in the demos; their
        θ_i grow without bound and P_θ gives their sequences vanishing probability.
    """
    l2 = check_l2(l2)
    if (demos is None) == (target_moments is None):
        raise ValueError("give exactly one of demos or target_moments")
    if target_moments is not None:
        target = features.check_theta(target_moments).copy()
    else:
        target = demo_moments(features, Demonstrations.from_any(features, demos, weights))
    unused = tuple(int(i) for i in np.flatnonzero(target <= 0.0))
    if unused and l2 == 0.0:
        shown = ", ".join(features.name(i) for i in unused[:8])
        more = f" and {len(unused) - 8} more" if len(unused) > 8 else ""
        warnings.warn(
            f"{len(unused)} feature(s) never occur in the demonstrations ({shown}{more}); without an "
            "L2 term the optimum is at infinity for them (their θ grows until gtol is met). "
            "Pass l2 > 0 for a finite solution.",
            UnboundedOptimumWarning,
            stacklevel=2,
        )
    x0 = np.zeros(features.dim) if theta0 is None else features.check_theta(theta0).copy()

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = log_likelihood_and_gradient(features, theta, target, l2=l2, method=method)
        return -ll, -grad  # minimize the negative log-likelihood

    res = minimize(
        objective,
        x0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": gtol, "ftol": 0.0, "maxcor": 30},
    )
    theta = np.asarray(res.x, dtype=np.float64)
    ll, grad = log_likelihood_and_gradient(features, theta, target, l2=l2, method=method)
    log_z, expected = model_moments(features, theta, method=method)
    gnorm = float(np.abs(grad).max())
    return MaxEntFit(
        theta=theta,
        log_likelihood=ll,
        gradient_norm=gnorm,
        iterations=int(res.nit),
        converged=gnorm <= gtol,
        demo_moments=target,
        model_moments=expected,
        log_partition=log_z,
        entropy=float(log_z + theta @ expected),
        unused_features=unused,
        message=str(res.message),
    )
