"""Direct solution of the max-entropy primal (7) over the probability simplex, for tiny spaces.

    min_p  Σ_S p(S) log p(S)     s.t.  Σ_S p(S) f(S) = E_demo f,   Σ_S p(S) = 1,   p ≥ 0.   (7)

This route never evaluates a Gibbs form, log Z or the dual fit, so comparing its solution with
P_θ* of the dual fit (eq. 8) checks strong duality (claim E1). It works in two exact steps:

1. the *support*: the sequences that some feasible p can give positive mass (one linear program).
   The max-entropy solution is positive exactly there; when the target lies on the boundary of
   the moment polytope (a feature the demos never use) the support is a proper subset.
2. infeasible-start Newton's method for the equality-constrained problem on that support
   (Boyd & Vandenberghe, Convex Optimization, Alg. 10.2). On the support the optimum is interior,
   so Newton converges quadratically to machine precision.

(An earlier version used SLSQP over the whole simplex; it stalled at non-optimal points near the
p = 0 faces while reporting success, e.g. an entropy 0.02 nats short for V=4, T=3 'last'.)
Meant for V^T up to about a thousand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from maxent_il.checks import finite_vector
from maxent_il.divergences import entropy
from maxent_il.features import FeatureMap

#: Largest space the primal solve accepts.
MAX_PRIMAL_SEQUENCES = 1024
#: Largest space :func:`moment_support` (one sparse LP over V^T variables) accepts by default.
MAX_SUPPORT_SEQUENCES = 2**13
#: Largest V^T·d (entries of the dense feature table) :func:`moment_support` builds.
MAX_SUPPORT_ENTRIES = 2**24
#: HiGHS's primal feasibility tolerance in the support LP: targets farther than this outside the
#: marginal polytope are found unattainable.
LP_FEASIBILITY_TOL = 1e-9


@dataclass(frozen=True)
class PrimalSolution:
    """Result of :func:`solve_primal`.

    Attributes:
        probabilities: p over all V^T sequences in index order.
        entropy: H(p) in nats.
        constraint_violation: ‖Σ p f − target‖_∞.
        success: whether Newton's method met the KKT tolerance.
        message: a short description of the outcome.
    """

    probabilities: np.ndarray
    entropy: float
    constraint_violation: float
    success: bool
    message: str


def solve_primal(
    features: FeatureMap, target_moments: Any, *, tol: float = 1e-12, max_iter: int = 200
) -> PrimalSolution:
    """Solve eq. (7) directly: the max-entropy distribution with E_p f = target (no θ involved).

    Args:
        features: the feature map f.
        target_moments: E_demo f, shape (d,).
        tol: KKT tolerance (‖Ap − b‖_∞ and ‖∇ of the Lagrangian‖_∞ on the support).
        max_iter: Newton iteration cap.

    Raises:
        ValueError: for a space larger than ``MAX_PRIMAL_SEQUENCES`` or a target that no
            distribution over the space attains.
    """
    space = features.space
    if space.size > MAX_PRIMAL_SEQUENCES:
        raise ValueError(
            f"the primal solve handles V^T <= {MAX_PRIMAL_SEQUENCES} sequences, got V^T={space.size} "
            f"(V={space.n_items}, T={space.horizon}); use fit_maxent (the dual) for larger spaces"
        )
    target = finite_vector(target_moments, "target_moments", dim=features.dim)
    support = moment_support(features, target, max_sequences=MAX_PRIMAL_SEQUENCES)
    F = features.counts(space.all_sequences())  # (V^T, d)
    M = np.hstack([np.ones((F.shape[0], 1)), F])  # constraint rows: normalization, then moments
    b_full = np.concatenate([[1.0], target])
    keep = _independent_columns(M[support])  # a basis of the constraints on the support
    A = M[support][:, keep].T  # (k, |support|)
    p_s, converged, iterations = _newton(A, b_full[keep], tol=tol, max_iter=max_iter)
    p = np.zeros(F.shape[0])
    p[support] = p_s
    violation = float(np.abs(F.T @ p - target).max())
    return PrimalSolution(
        probabilities=p,
        entropy=entropy(p),
        constraint_violation=violation,
        success=converged,
        message=(
            f"Newton {'converged' if converged else 'did not converge'} in {iterations} iterations "
            f"on a support of {int(support.sum())} of {F.shape[0]} sequences"
        ),
    )


def support_fits(features: FeatureMap, *, max_sequences: int = MAX_SUPPORT_SEQUENCES) -> bool:
    """Whether :func:`moment_support` accepts this feature map (its dense (V^T, d) table and LP)."""
    size = features.space.size
    return size <= max_sequences and size * features.dim <= MAX_SUPPORT_ENTRIES


def moment_support(
    features: FeatureMap, target_moments: Any, *, max_sequences: int = MAX_SUPPORT_SEQUENCES
) -> np.ndarray:
    """Which sequences a distribution with E_p f = target can charge: boolean mask of shape (V^T,).

    The feasible set of (6)/(7) is non-empty exactly when the target lies in the marginal polytope
    conv{f(S)}; the mask is all True exactly when it lies in the polytope's relative interior
    (then, and only then, the unregularized dual of eq. (15) has a finite optimum θ*). On the
    boundary the mask is the face's support; the max-entropy p of (7) is positive exactly there.

    Raises:
        ValueError: when no distribution attains the target (it lies outside the polytope), or
            when V^T exceeds ``max_sequences`` (one LP over V^T variables).
    """
    space = features.space
    if not support_fits(features, max_sequences=max_sequences):
        raise ValueError(
            f"the moment-support LP handles V^T <= {max_sequences} sequences with V^T·d <= "
            f"{MAX_SUPPORT_ENTRIES}, got V^T={space.size}, d={features.dim} "
            f"(V={space.n_items}, T={space.horizon})"
        )
    target = finite_vector(target_moments, "target_moments", dim=features.dim)
    F = features.counts(space.all_sequences())  # (V^T, d)
    support = _support(np.hstack([np.ones((F.shape[0], 1)), F]), np.concatenate([[1.0], target]))
    if not support.any():
        raise ValueError(
            "target_moments are not the feature expectations of any distribution over the space: they "
            "lie outside the marginal polytope conv{f(S)} (the constraints (6)/(7) are infeasible). "
            "Moments of demonstrations always lie inside; recompute the target as E_demo f "
            "(maxent_il.demo_moments) or as the moments of a distribution over the space"
        )
    return support


def _support(M: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Boolean mask of the sequences some feasible p (M^T p = b, p ≥ 0) gives positive mass.

    One LP in homogenized form: max Σ y  s.t.  M^T x = s·b,  0 ≤ y ≤ x,  y ≤ 1,  s ≥ 0. Scaling a
    relative-interior feasible point makes y_i = 1 on the whole support, and x_i = 0 (so y_i = 0)
    off it; since the normalization row forces x = 0 when s = 0, the answer is 0/1, and all False
    exactly when the constraints are infeasible. Sparse matrices, so n = V^T in the thousands is fine.
    """
    n, k = M.shape
    # variables z = (x (n), y (n), s (1))
    c = np.concatenate([np.zeros(n), -np.ones(n), [0.0]])
    A_eq = sparse.hstack(
        [sparse.csr_matrix(M.T), sparse.csr_matrix((k, n)), sparse.csr_matrix(-b[:, None])], format="csr"
    )
    eye = sparse.identity(n, format="csr")
    A_ub = sparse.hstack([-eye, eye, sparse.csr_matrix((n, 1))], format="csr")  # y − x ≤ 0
    bounds = [(0, None)] * n + [(0, 1)] * n + [(0, None)]
    res = linprog(
        c,
        A_ub=A_ub,
        b_ub=np.zeros(n),
        A_eq=A_eq,
        b_eq=np.zeros(k),
        bounds=bounds,
        method="highs",
        options={"primal_feasibility_tolerance": LP_FEASIBILITY_TOL},
    )
    if res.status != 0:  # the LP is always feasible and bounded; anything else is a solver failure
        raise RuntimeError(f"support LP failed: {res.message}")
    return res.x[n : 2 * n] > 0.5


def _newton(A: np.ndarray, b: np.ndarray, *, tol: float, max_iter: int) -> tuple[np.ndarray, bool, int]:
    """Infeasible-start Newton for min Σ p log p s.t. A p = b, p > 0 (B&V Alg. 10.2).

    The Newton system [diag(1/p) Aᵀ; A 0] [Δp; w⁺] = [−∇; b − Ap] is solved by elimination:
    (A P Aᵀ) w⁺ = (Ap − b) − A P ∇ and Δp = −P(∇ + Aᵀ w⁺), with P = diag(p). Backtracking on the
    residual norm keeps p > 0.
    """
    n = A.shape[1]
    p = np.full(n, 1.0 / n)
    w = np.zeros(A.shape[0])

    def residual(p: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.log(p) + 1.0 + A.T @ w, A @ p - b

    rd, rp = residual(p, w)
    for it in range(1, max_iter + 1):
        grad = np.log(p) + 1.0
        AP = A * p
        w_new = np.linalg.solve(AP @ A.T, (A @ p - b) - AP @ grad)  # so that A Δp = b − Ap
        dp = -p * (grad + A.T @ w_new)
        dw = w_new - w
        norm = np.sqrt(rd @ rd + rp @ rp)
        step = 1.0
        while np.any(p + step * dp <= 0):
            step *= 0.5
        while True:
            rd_new, rp_new = residual(p + step * dp, w + step * dw)
            if np.sqrt(rd_new @ rd_new + rp_new @ rp_new) <= (1 - 0.25 * step) * norm or step < 1e-12:
                break
            step *= 0.5
        p, w, rd, rp = p + step * dp, w + step * dw, rd_new, rp_new
        if max(np.abs(rd).max(), np.abs(rp).max()) <= tol:
            return p, True, it
    return p, False, max_iter


def _independent_columns(M: np.ndarray, *, rtol: float = 1e-10) -> np.ndarray:
    """Indices of a maximal linearly independent set of columns of M (greedy via QR pivoting)."""
    from scipy.linalg import qr

    _, r, piv = qr(M, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int((diag > rtol * diag.max()).sum()) if diag.size else 0
    return np.sort(piv[:rank])
