"""Where the target moments E_demo f sit in the marginal polytope conv{f(S)}, for the dual fit (eq. 15).

The unregularized log-likelihood LL(θ) = −θ·target − log Z(θ) has a finite maximizer exactly when
the target lies in the relative interior of the marginal polytope; on its boundary the optimum is
at infinity (Slater's condition fails for the primal (7), whose optimum is then supported on a
face), and outside it no distribution matches the moments at all (constraint (6) is infeasible).
:func:`diagnose_target` tells these cases apart, by cause, before :func:`fit_maxent` runs:

- *outside*: a ``ValueError`` (an unattainable target is never reported as converged);
- *a feature never used by the demos* (or, for a given target, a feature at the smallest value
  any sequence gives it): the boundary case every state-action feature map shows;
- *a face of the polytope* with every feature strictly inside its range: found by the support
  LP of :func:`maxent_il.primal.moment_support` (one definition), on spaces small enough for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maxent_il.features import FeatureMap
from maxent_il.likelihood import ExactMethod, model_moments
from maxent_il.primal import moment_support, support_fits

#: Relative tolerance of the cheap necessary checks used on spaces too large for the LP.
TARGET_TOL = 1e-9


@dataclass(frozen=True)
class TargetDiagnosis:
    """Where a target lies relative to the marginal polytope.

    Attributes:
        unused_features: features the target puts at the smallest value any sequence gives them
            (for state-action counts from demos: pairs the demos never use), though they vary.
        support_size: how many sequences a distribution matching the target can charge (from the
            LP), or ``None`` when the space is too large for it.
        n_sequences: V^T.
        from_demos: whether the target came from demonstrations (it is then attainable).
    """

    unused_features: tuple[int, ...]
    support_size: int | None
    n_sequences: int
    from_demos: bool

    @property
    def boundary(self) -> str:
        """``"unused_features"``, ``"face"`` (boundary with no feature at its extreme) or ``""``."""
        if self.unused_features:
            return "unused_features"
        if self.support_size is not None and self.support_size < self.n_sequences:
            return "face"
        return ""

    def warning(self, features: FeatureMap) -> str:
        """The unbounded-optimum message for λ = 0, worded by cause ("" when the optimum is finite)."""
        tail = (
            "without an L2 term the optimum is at infinity (θ grows along the face's normal until "
            "gtol is met). Pass l2 > 0 for a finite solution."
        )
        if self.unused_features:
            unused = self.unused_features
            shown = ", ".join(features.name(i) for i in unused[:8])
            more = f" and {len(unused) - 8} more" if len(unused) > 8 else ""
            if self.from_demos and features.is_decomposable:
                cause = (
                    f"{len(unused)} feature(s) are never used by the demonstrations ({shown}{more}), "
                    "though some sequence uses them"
                )
            else:
                who = "the demonstrations put" if self.from_demos else "target_moments put"
                cause = (
                    f"{who} {len(unused)} feature(s) at the smallest value any sequence gives them "
                    f"({shown}{more}), though other sequences give more"
                )
            return f"{cause}: the target lies on the boundary of the marginal polytope; {tail}"
        if self.boundary == "face":
            return (
                "the target moments lie on a face of the marginal polytope conv{f(S)}: only "
                f"{self.support_size} of {self.n_sequences} sequences can carry probability while "
                "matching them, though no single feature is at the end of its range; " + tail
            )
        return ""


def unused_features(features: FeatureMap, target: np.ndarray, method: ExactMethod) -> tuple[int, ...]:
    """Features the target puts at the smallest value any sequence gives them, though they vary.

    For such a feature ∂LL/∂θ_i = E_P f_i − target_i − λθ_i > −λθ_i at every finite θ (P_θ has full
    support), so with λ = 0 the optimum has θ_i = +∞. For state-action counts this means "never
    occurs in the demos, yet occurs in some sequence"; a feature that occurs in no sequence at all
    (e.g. a 'last' transition when T = 1) has zero gradient and is not reported. This is a
    sufficient condition for an optimum at infinity, not a necessary one (see :func:`diagnose_target`).
    """
    return _at_minimum(target, *_feature_range(features, method))


def _at_minimum(target: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[int, ...]:
    at_min = target <= lo + 1e-12 * np.maximum(1.0, np.abs(lo))
    return tuple(int(i) for i in np.flatnonzero(at_min & (lo < hi)))


def _feature_range(features: FeatureMap, method: ExactMethod) -> tuple[np.ndarray, np.ndarray]:
    """(min_S f(S), max_S f(S)) per feature, shape (d,) each; for state-action counts the minimum is
    0 (each pair can be avoided) and the maximum is positive exactly where some sequence has the pair
    (the uniform model's moments; only "0 < max" matters here, so max is reported as T there)."""
    if features.is_decomposable:
        _, uniform = model_moments(features, np.zeros(features.dim), method=method)
        return np.zeros(features.dim), np.where(uniform > 0.0, float(features.space.horizon), 0.0)
    lo = np.full(features.dim, np.inf)
    hi = np.full(features.dim, -np.inf)
    for _, seqs in features.space.iter_chunks():
        F = features.counts(seqs)
        lo, hi = np.minimum(lo, F.min(axis=0)), np.maximum(hi, F.max(axis=0))
    return lo, hi


def diagnose_target(
    features: FeatureMap,
    target: np.ndarray,
    *,
    from_demos: bool,
    method: ExactMethod = "auto",
    use_lp: bool = True,
) -> TargetDiagnosis:
    """Check that the target moments of eq. (6) are attainable and say where they lie (eq. 15's optimum).

    On spaces within :func:`maxent_il.primal.support_fits` the support LP decides exactly
    (unattainable → ``ValueError``; boundary or interior). On larger spaces a given target gets the
    necessary checks only: each feature within [min_S f, max_S f], and for state-action features
    (one fires per step) non-negative counts summing to T. Demo moments are attainable by
    construction and skip those checks; ``use_lp=False`` skips the LP (e.g. when λ > 0 and the
    boundary does not matter).
    """
    lo, hi = _feature_range(features, method)
    if not from_demos:
        _necessary_checks(features, target, lo, hi)
    support_size = None
    if (use_lp or not from_demos) and support_fits(features):
        support_size = int(moment_support(features, target).sum())  # raises when unattainable
    return TargetDiagnosis(
        _at_minimum(target, lo, hi),
        support_size,
        features.space.size,
        from_demos,
    )


def _necessary_checks(features: FeatureMap, target: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """Refuse a target that fails a necessary condition for lying in the marginal polytope."""
    fix = (
        "; no distribution over the space has these moments (outside the marginal polytope "
        "conv{f(S)}): recompute them as E_demo f (maxent_il.demo_moments) or as a distribution's moments"
    )
    if features.is_decomposable:
        T = features.space.horizon
        if np.any(target < -TARGET_TOL):
            i = int(np.flatnonzero(target < -TARGET_TOL)[0])
            raise ValueError(
                f"target_moments[{i}] = {float(target[i])!r} (feature {features.name(i)!r}) is negative, "
                f"but state-action counts are >= 0{fix}"
            )
        total = float(target.sum())
        if abs(total - T) > TARGET_TOL * T:
            raise ValueError(
                f"target_moments sum to {float(total)!r}, but exactly one state-action feature "
                "fires per step, "
                f"so every f(S) sums to T={T}{fix}"
            )
        return
    slack = TARGET_TOL * np.maximum(1.0, np.maximum(np.abs(lo), np.abs(hi)))
    out = (target < lo - slack) | (target > hi + slack)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise ValueError(
            f"target_moments[{i}] = {float(target[i])!r} (feature {features.name(i)!r}) is outside the range "
            f"[{float(lo[i])!r}, {float(hi[i])!r}] that f_{i}(S) takes over the space{fix}"
        )
