"""Direct solution of the max-entropy primal (7) over the probability simplex, for tiny spaces.

    min_p  Σ_S p(S) log p(S)     s.t.  Σ_S p(S) f(S) = E_demo f,   Σ_S p(S) = 1,   p ≥ 0.   (7)

This route never mentions θ, so comparing its solution with the Gibbs form P_θ* of the dual fit
(eq. 8) checks strong duality (claim E1). Solved with SLSQP; meant for V^T up to a few hundred.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from maxent_il.features import FeatureMap

#: Largest space the SLSQP primal solve accepts.
MAX_PRIMAL_SEQUENCES = 1024


@dataclass(frozen=True)
class PrimalSolution:
    """Result of :func:`solve_primal`.

    Attributes:
        probabilities: p over all V^T sequences in index order.
        entropy: H(p) in nats.
        constraint_violation: ‖Σ p f − target‖_∞.
        success: the optimizer's success flag.
        message: the optimizer's message.
    """

    probabilities: np.ndarray
    entropy: float
    constraint_violation: float
    success: bool
    message: str


def solve_primal(
    features: FeatureMap, target_moments: Any, *, tol: float = 1e-12, max_iter: int = 2000
) -> PrimalSolution:
    """Solve eq. (7) directly: the max-entropy distribution with E_p f = target (no θ involved)."""
    space = features.space
    if space.size > MAX_PRIMAL_SEQUENCES:
        raise ValueError(
            f"the primal solve handles V^T <= {MAX_PRIMAL_SEQUENCES} sequences, got V^T={space.size} "
            f"(V={space.n_items}, T={space.horizon}); use fit_maxent (the dual) for larger spaces"
        )
    target = features.check_theta(target_moments)
    F = features.counts(space.all_sequences())  # (V^T, d)
    # Drop features that are identically zero or linearly dependent on others: keep a basis.
    keep = _independent_columns(np.hstack([np.ones((F.shape[0], 1)), F]))
    A = np.hstack([np.ones((F.shape[0], 1)), F])[:, keep].T  # (k, V^T)
    b = np.concatenate([[1.0], target])[keep]
    n = F.shape[0]
    floor = 1e-300

    def neg_entropy(p: np.ndarray) -> tuple[float, np.ndarray]:
        q = np.maximum(p, floor)
        return float(q @ np.log(q)), np.log(q) + 1.0

    res = minimize(
        neg_entropy,
        np.full(n, 1.0 / n),
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * n,
        constraints=[{"type": "eq", "fun": lambda p: A @ p - b, "jac": lambda p: A}],
        options={"ftol": tol, "maxiter": max_iter},
    )
    p = np.clip(res.x, 0.0, None)
    p /= p.sum()
    nz = p > 0
    return PrimalSolution(
        probabilities=p,
        entropy=float(-(p[nz] * np.log(p[nz])).sum()),
        constraint_violation=float(np.abs(F.T @ p - target).max()),
        success=bool(res.success),
        message=str(res.message),
    )


def _independent_columns(M: np.ndarray, *, rtol: float = 1e-10) -> np.ndarray:
    """Indices of a maximal linearly independent set of columns of M (greedy via QR pivoting)."""
    from scipy.linalg import qr

    _, r, piv = qr(M, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int((diag > rtol * diag.max()).sum()) if diag.size else 0
    return np.sort(piv[:rank])
