"""Dual fit of the MaxEnt cost: θ* = argmax LL(θ) on the exact likelihood (eqs. 8, 15).

Newton's method with the exact Hessian Cov_P(f) for small spaces (quadratic convergence, robust to
the poor conditioning of rarely reached ``history`` prefixes), L-BFGS for large ones.

At an unregularized interior optimum ∇LL = 0, i.e. E_{P_θ*} f = E_demo f: the moment-matching
constraint (6) holds and P_θ* is the max-entropy distribution of (7) (strong duality, E1/E3).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize

from maxent_il.checks import choice, finite_vector, non_negative_float, positive_float, positive_int
from maxent_il.features import FeatureMap
from maxent_il.likelihood import (
    Demonstrations,
    ExactMethod,
    demo_moments,
    log_likelihood_and_gradient,
    model_summary,
)
from maxent_il.targets import TargetDiagnosis, diagnose_target

Optimizer = Literal["auto", "lbfgs", "newton"]
OPTIMIZERS: tuple[str, ...] = ("auto", "lbfgs", "newton")
#: Largest V^T·d for which the Newton solver builds the dense (V^T, d) feature table.
MAX_NEWTON_ENTRIES = 2**24


class UnboundedOptimumWarning(UserWarning):
    """The unregularized optimum lies at infinity: the target is on the boundary of the marginal
    polytope (features the demos never use, or a face found by the support LP)."""


@dataclass(frozen=True)
class MaxEntFit:
    """Result of :func:`fit_maxent`.

    Attributes:
        theta: fitted cost parameters θ*, shape (d,).
        log_likelihood: LL(θ*) including the −(λ/2)‖θ‖² term.
        gradient_norm: ‖∇LL(θ*)‖_∞ (eq. 15).
        iterations: L-BFGS iterations taken, plus gradient-only polishing steps if any.
        converged: whether ‖∇LL‖_∞ ≤ gtol.
        demo_moments: E_demo f, shape (d,).
        model_moments: E_{P_θ*} f, shape (d,).
        log_partition: log Z(θ*).
        entropy: H(P_θ*) = −Σ P log P (= log Z + θ*·E_P f), from the normalized log-probabilities.
        unused_features: indices of features that never occur in the demos but do occur in some
            sequence (more generally: sit at their smallest possible value), so the optimum has
            θ_i = +∞ when λ = 0.
        message: the optimizer's message.
        boundary: where the target lies in the marginal polytope (:mod:`maxent_il.targets`):
            ``"unused_features"``, ``"face"`` (found by the support LP on small spaces) or ``""``
            (interior, or not known on spaces too large for the LP). With λ = 0 a non-empty value
            means the optimum is at infinity and :class:`UnboundedOptimumWarning` was issued.
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
    boundary: str = ""

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
    optimizer: Optimizer = "auto",
) -> MaxEntFit:
    """Fit θ by maximizing the exact demo log-likelihood (eq. 15 gradient) with Newton or L-BFGS.

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
        optimizer: ``"newton"`` (exact Hessian Cov_P(f) + λI by enumeration, damped steps;
            quadratic convergence on ill-conditioned problems, for V^T·d ≤ 2^24), ``"lbfgs"``
            (any size), or ``"auto"``: Newton when it fits and the optimum is finite, else L-BFGS.

    Warns:
        UnboundedOptimumWarning: when λ = 0 and some features never occur in the demos (though
            some sequence has them); their θ_i grow without bound and P_θ gives their sequences
            vanishing probability.
    """
    l2 = non_negative_float(l2, "l2")
    gtol = positive_float(gtol, "gtol", hint="the tolerance on ‖∇LL‖_∞; 0 can never be met")
    max_iter = positive_int(max_iter, "max_iter", hint="the iteration cap")
    if (demos is None) == (target_moments is None):
        raise ValueError("give exactly one of demos or target_moments")
    x0 = np.zeros(features.dim) if theta0 is None else features.check_theta(theta0).copy()
    if target_moments is not None:
        target = finite_vector(target_moments, "target_moments", dim=features.dim).copy()
    else:
        target = demo_moments(features, Demonstrations.from_any(features, demos, weights))
    diagnosis = diagnose_target(
        features, target, from_demos=target_moments is None, method=method, use_lp=l2 == 0.0
    )
    unbounded = l2 == 0.0 and diagnosis.boundary != ""
    if unbounded:
        warnings.warn(diagnosis.warning(features), UnboundedOptimumWarning, stacklevel=2)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = log_likelihood_and_gradient(features, theta, target, l2=l2, method=method)
        return -ll, -grad  # minimize the negative log-likelihood

    choice(optimizer, "optimizer", OPTIMIZERS)
    fits = features.space.size * features.dim <= MAX_NEWTON_ENTRIES
    if optimizer == "newton" and not fits:
        raise ValueError(
            f"optimizer='newton' needs V^T·d <= {MAX_NEWTON_ENTRIES} "
            f"(got {features.space.size}·{features.dim}); use optimizer='lbfgs'"
        )
    if optimizer == "newton" or (optimizer == "auto" and fits and not unbounded):
        theta, iterations, message = _newton(features, objective, x0, l2, gtol, max_iter)
        ll, grad = log_likelihood_and_gradient(features, theta, target, l2=l2, method=method)
        return _result(features, theta, ll, grad, iterations, gtol, target, diagnosis, message, method)

    res = minimize(
        objective,
        x0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": gtol, "ftol": 0.0, "maxcor": 30},
    )
    theta = np.asarray(res.x, dtype=np.float64)
    iterations, message = int(res.nit), str(res.message)
    ll, grad = log_likelihood_and_gradient(features, theta, target, l2=l2, method=method)
    if np.abs(grad).max() > gtol and iterations < max_iter:
        # L-BFGS's line search needs LL to decrease by more than its rounding error (~1e-16·|LL|),
        # so it stalls with ‖∇LL‖ near 1e-8 … 1e-7 once |LL| is large; the gradient is still exact.
        theta, steps = _gradient_polish(lambda t: objective(t)[1], theta, gtol, max_iter - iterations)
        iterations += steps
        message += f"; then {steps} gradient-only (Barzilai-Borwein) polishing steps"
        ll, grad = log_likelihood_and_gradient(features, theta, target, l2=l2, method=method)
    return _result(features, theta, ll, grad, iterations, gtol, target, diagnosis, message, method)


def _result(
    features: FeatureMap,
    theta: np.ndarray,
    ll: float,
    grad: np.ndarray,
    iterations: int,
    gtol: float,
    target: np.ndarray,
    diagnosis: TargetDiagnosis,
    message: str,
    method: ExactMethod,
) -> MaxEntFit:
    log_z, expected, entropy = model_summary(features, theta, method=method)
    gnorm = float(np.abs(grad).max())
    return MaxEntFit(
        theta=theta,
        log_likelihood=ll,
        gradient_norm=gnorm,
        iterations=iterations,
        converged=gnorm <= gtol,
        demo_moments=target,
        model_moments=expected,
        log_partition=log_z,
        entropy=entropy,
        unused_features=diagnosis.unused_features,
        message=message,
        boundary=diagnosis.boundary,
    )


def _gradient_polish(
    grad_fn: Callable[[np.ndarray], np.ndarray], theta: np.ndarray, gtol: float, max_steps: int
) -> tuple[np.ndarray, int]:
    """Drive ‖∇‖_∞ below gtol with Barzilai-Borwein steps, which use gradients only.

    Near the optimum the objective is close to quadratic and BB converges fast; no function value
    is needed, so the rounding of LL does not stop it. Steps are capped at 1 per coordinate, and
    the iterate with the smallest gradient norm is returned (never a worse one than the start).
    """
    g = grad_fn(theta)
    best, best_norm = theta, float(np.abs(g).max())
    x_prev, g_prev, alpha = theta, g, 1e-2
    for step in range(1, min(max_steps, 200) + 1):
        delta = alpha * g_prev
        delta *= min(1.0, 1.0 / max(float(np.abs(delta).max()), 1e-300))
        x = x_prev - delta
        if not np.all(np.isfinite(x)):
            return best, step
        g = grad_fn(x)
        norm = float(np.abs(g).max())
        if norm < best_norm:
            best, best_norm = x, norm
        if norm <= gtol:
            return best, step
        s, y = x - x_prev, g - g_prev
        sy = float(s @ y)
        alpha = float(s @ s) / sy if sy > 0 else alpha
        x_prev, g_prev = x, g
    return best, min(max_steps, 200)


def _newton(
    features: FeatureMap,
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
    theta: np.ndarray,
    l2: float,
    gtol: float,
    max_iter: int,
) -> tuple[np.ndarray, int, str]:
    """Damped Newton on the negative log-likelihood: H = Cov_{P_θ}(f) + λI (the Hessian of log Z),
    step = the least-norm solution of H·Δ = −∇ (H is singular along gauge directions, which the
    gradient never has), Armijo backtracking. A full step is also taken whenever it shrinks ‖∇‖_∞,
    which keeps the quadratic phase going once NLL changes fall below its rounding error."""
    from maxent_il.gibbs import all_log_probs

    F = features.counts(features.space.all_sequences())  # (V^T, d)
    nll, g = objective(theta)
    for it in range(max_iter):
        gnorm = float(np.abs(g).max())
        if gnorm <= gtol:
            return theta, it, f"Newton: converged in {it} iterations"
        p = np.exp(all_log_probs(features, theta))  # (V^T,)
        mu = F.T @ p
        H = F.T @ (p[:, None] * F) - np.outer(mu, mu) + l2 * np.eye(features.dim)
        step = np.linalg.lstsq(H, -g, rcond=1e-12)[0]
        slope = float(g @ step)
        t = 1.0
        while True:
            cand = theta + t * step
            nll_c, g_c = objective(cand)
            if nll_c <= nll + 1e-4 * t * slope or (t == 1.0 and np.abs(g_c).max() < gnorm):
                break
            t *= 0.5
            if t < 1e-12:
                return theta, it, "Newton: line search failed (the optimum may be at infinity)"
        theta, nll, g = cand, nll_c, g_c
    return theta, max_iter, "Newton: iteration limit reached"
