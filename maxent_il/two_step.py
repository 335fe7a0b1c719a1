"""The two-step procedure of paper §4: approximate LL (16, 17), q-step (18, 20), c-step (19, 21).

Exact on tiny enumerable spaces (float64, every sum over all V^T sequences in index order):

    (15)  ∇LL(θ)       = −E_demo f + E_{P_θ} f                      (exact gradient, ascent)
    (16)  ∇LL(θ) ≈ g_q = −E_demo f + E_q f                           (q replaces P_θ)
    (17)  LL_q(θ)      = −E_demo c + E_q c,   c(S) = θ·f(S)          (integral of 16 for fixed q)
    (18)  min_q KL(q‖P_θ) = E_q c − H(q) + log Z                     (E4)
    (20)  min_q F(q),  F(q) = E_q[c(S) + log q(S)] = KL(q‖P_θ) − log Z
    (21)  max_θ LL_q(θ) for fixed q                                  (linear in θ: unbounded)

Three identities tie them together and are what the tests check:

* g_q − ∇LL = E_q f − E_P f, so (16) = (15) when q = P_θ (E5), and coordinate-wise
  |E_q f_i − E_P f_i| ≤ (max_S f_i − min_S f_i)·TV(q, P) ≤ 2‖f‖_∞·TV ≤ ‖f‖_∞·√(2 KL(q‖P))
  (Pinsker: TV ≤ √(KL/2)); see :func:`gradient_gap_bound`. The gap vanishes iff E_q f = E_P f,
  which forces q = P_θ only when S ↦ f(S) has rank V^T (``history`` features, or T ≤ 2); for
  ``last``/``time_last`` with T ≥ 3 some q ≠ P_θ give the exact gradient.
* LL(θ) = LL_q(θ) − H(q) − KL(q‖P_θ): (17) minus H(q) is an *upper* bound on the exact LL, tight
  iff q = P_θ. The q-step lowers it, the c-step raises it: a saddle problem max_θ min_q, not an
  EM-style joint ascent.
* (21) is linear in θ, so only a gradient step of it is meaningful (:func:`c_step`); along
  g = ∇(17) the objective grows as value(θ) + s‖g‖² (:func:`c_step_objective_is_unbounded`).

The q-step (:mod:`maxent_il.q_step`) is exact (q = P_θ, :func:`exact_q_step`) or k gradient-descent
steps on (20) over a tabular autoregressive q (:class:`TabularQ`, :func:`inexact_q_step`), whose
exact gradient is a soft-Q backward recursion on the prefix tree; the gap bounds of E5 are in
:mod:`maxent_il.gradient_gap`. :func:`two_step` runs the loop (each iteration calls the q-step, then
:func:`c_step`) and records the exact LL beside the approximations; :func:`exact_ll_ascent` is the
reference it reproduces (E6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from maxent_il.checks import choice, finite_vector, non_negative_float, positive_float, positive_int
from maxent_il.divergences import entropy
from maxent_il.features import FeatureMap
from maxent_il.gibbs import log_gibbs
from maxent_il.gradient_gap import GradientGap, feature_extremes, gap_from_moments, gradient_gap_bound
from maxent_il.likelihood import demo_moments as empirical_moments
from maxent_il.likelihood import log_likelihood_and_gradient
from maxent_il.q_step import QStepResult, exact_q_step, inexact_q_step, q_distribution, q_objective
from maxent_il.tabular_q import TabularQ

__all__ = [
    "Q_STEPS",
    "ExactAscentResult",
    "GradientGap",
    "QStep",
    "QStepResult",
    "TabularQ",
    "TwoStepResult",
    "UnboundednessEvidence",
    "approximate_gradient",
    "approximate_log_likelihood",
    "c_step",
    "c_step_objective_is_unbounded",
    "exact_ll_ascent",
    "exact_q_step",
    "feature_extremes",
    "gradient_gap_bound",
    "inexact_q_step",
    "q_objective",
    "two_step",
]

QStep = Literal["exact", "inexact"]
Q_STEPS: tuple[str, ...] = ("exact", "inexact")


def _target(features: FeatureMap, demo_moments: Any) -> np.ndarray:
    """E_demo f as a finite vector of shape (d,)."""
    return finite_vector(demo_moments, "demo_moments", dim=features.dim)


# --- eqs. (16), (17) -----------------------------------------------------------------------------
def approximate_log_likelihood(
    features: FeatureMap, theta: Any, demo_moments: Any, q: Any, *, l2: float = 0.0
) -> float:
    """Eq. (17): LL_q(θ) = −E_demo c + E_q c (minus (λ/2)‖θ‖² when ``l2`` = λ > 0).

    Exact LL(θ) = LL_q(θ) − H(q) − KL(q‖P_θ), so this is the exact LL up to a q-dependent
    constant only when q = P_θ. ``q`` is a probability vector over all V^T sequences in
    :class:`SequenceSpace` index order, or a :class:`TabularQ`.
    """
    theta = features.check_theta(theta)
    target = _target(features, demo_moments)
    q_expect = features.weighted_counts(features.space.all_sequences(), q_distribution(features, q))
    return float(theta @ (q_expect - target)) - 0.5 * non_negative_float(l2, "l2") * float(theta @ theta)


def approximate_gradient(
    features: FeatureMap, theta: Any, demo_moments: Any, q: Any, *, l2: float = 0.0
) -> np.ndarray:
    """Eq. (16): g_q = −E_demo f + E_q f (minus λθ), the gradient of (17) for fixed q: shape (d,)."""
    theta = features.check_theta(theta)
    target = _target(features, demo_moments)
    q_expect = features.weighted_counts(features.space.all_sequences(), q_distribution(features, q))
    return q_expect - target - non_negative_float(l2, "l2") * theta


# --- c-step (eqs. 19, 21) ------------------------------------------------------------------------
def c_step(
    theta: Any, features: FeatureMap, demo_moments: Any, q: Any, *, lr: float, l2: float = 0.0
) -> np.ndarray:
    """One gradient-ascent step on (21) for fixed q: θ + lr·(−E_demo f + E_q f − λθ) (eq. 16)."""
    lr = positive_float(lr, "lr", hint="the c-step size")
    theta = features.check_theta(theta)
    return theta + lr * approximate_gradient(features, theta, demo_moments, q, l2=l2)


@dataclass(frozen=True)
class UnboundednessEvidence:
    """(21) along the ray θ + s·g, g = ∇(17) = −E_demo f + E_q f, for fixed q.

    Attributes:
        direction: g, shape (d,).
        steps: the step sizes s, shape (n,).
        values: (17) at θ + s·g, shape (n,); equal to value(θ) + s‖g‖² exactly (linear in θ).
        slope: ‖g‖²; positive unless E_q f = E_demo f, so sup over θ of (21) is +∞.
        is_unbounded: slope > 0.
    """

    direction: np.ndarray
    steps: np.ndarray
    values: np.ndarray
    slope: float
    is_unbounded: bool


def c_step_objective_is_unbounded(
    features: FeatureMap, theta: Any, demo_moments: Any, q: Any, *, steps: Any = (0.0, 1.0, 10.0, 100.0)
) -> UnboundednessEvidence:
    """Evidence that max_θ (21) for fixed q is unbounded: (17) grows linearly along its gradient.

    (17) is θ·(E_q f − E_demo f), linear in θ, so value(θ + s g) = value(θ) + s‖g‖² → ∞. Only a
    gradient step of (21) (:func:`c_step`) is meaningful; EBGAN's margin plays the bounding role.
    """
    theta = features.check_theta(theta)
    g = approximate_gradient(features, theta, demo_moments, q)
    s = np.asarray(steps, dtype=np.float64).reshape(-1)
    values = np.array([approximate_log_likelihood(features, theta + si * g, demo_moments, q) for si in s])
    slope = float(g @ g)
    return UnboundednessEvidence(g, s, values, slope, slope > 0.0)


# --- the loops (E6) ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExactAscentResult:
    """Plain gradient ascent on the exact LL with eq. (15).

    Attributes:
        thetas: θ_0 … θ_n, shape (n+1, d).
        log_likelihoods: LL(θ_t), shape (n+1,).
        gradient_norms: ‖∇LL(θ_t)‖_∞, shape (n+1,).
    """

    thetas: np.ndarray
    log_likelihoods: np.ndarray
    gradient_norms: np.ndarray


def exact_ll_ascent(
    features: FeatureMap,
    demo_moments: Any,
    *,
    n_iters: int,
    lr: float,
    l2: float = 0.0,
    theta0: Any = None,
) -> ExactAscentResult:
    """θ_{t+1} = θ_t + lr·∇LL(θ_t) with the exact gradient (15) (maxent_il.likelihood)."""
    n_iters = positive_int(n_iters, "n_iters")
    lr = positive_float(lr, "lr", hint="the ascent step size")
    target = _target(features, demo_moments)
    theta = np.zeros(features.dim) if theta0 is None else features.check_theta(theta0).copy()
    thetas, lls, norms = [theta], [], []
    for t in range(n_iters + 1):  # sequential iterates
        ll, grad = log_likelihood_and_gradient(features, thetas[-1], target, l2=l2)
        lls.append(ll)
        norms.append(float(np.abs(grad).max()))
        if t < n_iters:
            thetas.append(thetas[-1] + lr * grad)
    return ExactAscentResult(np.array(thetas), np.array(lls), np.array(norms))


@dataclass(frozen=True)
class TwoStepResult:
    """Per-iteration record of :func:`two_step`; iteration t runs the q-step at θ_t, then the c-step.

    Attributes:
        thetas: θ_0 … θ_n, shape (n+1, d).
        exact_ll: exact LL(θ_t) (maxent_il.likelihood), shape (n+1,).
        approx_ll: (17) at (θ_t, q_t), shape (n,).
        q_entropy: H(q_t), shape (n,); exact_ll[t] = approx_ll[t] − q_entropy[t] − kl[t].
        q_objective: F(q_t) of (20), shape (n,).
        kl: KL(q_t‖P_θt), shape (n,).
        gradient_gap: ‖(16) − (15)‖_∞ at (θ_t, q_t), shape (n,); θ_{t+1} − (θ_t + lr∇LL(θ_t)) =
            lr·(E_q f − E_P f), so the per-step deviation from exact ascent is lr·gradient_gap.
        range_bound, tv_bound, pinsker_bound: the bounds of :class:`GradientGap`, shape (n,).
        q: the last q, as a :class:`TabularQ` (warm start for a continuation).
        q_step, k, lr, q_lr, l2: the options used.
    """

    thetas: np.ndarray
    exact_ll: np.ndarray
    approx_ll: np.ndarray
    q_entropy: np.ndarray
    q_objective: np.ndarray
    kl: np.ndarray
    gradient_gap: np.ndarray
    range_bound: np.ndarray
    tv_bound: np.ndarray
    pinsker_bound: np.ndarray
    q: TabularQ
    q_step: str
    k: int
    lr: float
    q_lr: float
    l2: float

    @property
    def theta(self) -> np.ndarray:
        """The last iterate θ_n."""
        return self.thetas[-1]


def two_step(
    features: FeatureMap,
    demos: Any = None,
    *,
    demo_moments: Any = None,
    n_iters: int,
    lr: float,
    q_step: QStep = "exact",
    k: int = 1,
    q_lr: float = 0.1,
    l2: float = 0.0,
    theta0: Any = None,
    q0: TabularQ | Any = None,
) -> TwoStepResult:
    """The two-step procedure (20)/(21), exact on an enumerable space.

    Each iteration: the q-step at θ_t — ``"exact"`` (q_t = P_θt, the minimizer of 20) or
    ``"inexact"`` (k gradient steps on 20 warm-started from q_{t−1}, from ``q0`` or uniform at
    t = 0) — then one c-step θ_{t+1} = θ_t + lr·(−E_demo f + E_{q_t} f − λθ_t) (eq. 16).

    Args:
        features: the feature map f.
        demos: expert sequences (N, T); or give ``demo_moments`` = E_demo f instead.
        n_iters: number of iterations n ≥ 1.
        lr: c-step size > 0.
        q_step: ``"exact"`` or ``"inexact"``.
        k: gradient steps per inexact q-step (≥ 1).
        q_lr: q-step size > 0.
        l2: λ ≥ 0 (a −(λ/2)‖θ‖² term on both the exact and the approximate LL).
        theta0: starting θ (zeros by default).
        q0: starting q for the inexact q-step, a :class:`TabularQ` or its logits (uniform by default).
    """
    q_step = choice(q_step, "q_step", Q_STEPS)
    if (demos is None) == (demo_moments is None):
        raise ValueError("give exactly one of demos or demo_moments")
    target = empirical_moments(features, demos) if demos is not None else _target(features, demo_moments)
    n_iters = positive_int(n_iters, "n_iters")
    lr = positive_float(lr, "lr", hint="the c-step size")
    k = positive_int(k, "k", hint="gradient steps per inexact q-step")
    q_lr = positive_float(q_lr, "q_lr", hint="the inexact q-step size")
    l2 = non_negative_float(l2, "l2")
    theta = np.zeros(features.dim) if theta0 is None else features.check_theta(theta0).copy()
    if q0 is None:
        q = TabularQ.uniform(features.space)
    else:
        q = q0 if isinstance(q0, TabularQ) else TabularQ(features.space, q0)
    if q.space != features.space:
        raise ValueError(f"q0 lives on {q.space} but the features on {features.space}")

    seqs = features.space.all_sequences()
    extremes = feature_extremes(features)
    thetas, exact_ll = [theta], []
    rec: dict[str, list[float]] = {
        key: [] for key in ("approx_ll", "q_entropy", "q_objective", "kl", "gap", "range", "tv", "pinsker")
    }
    for t in range(n_iters + 1):  # sequential iterates; everything inside is vectorized
        theta = thetas[-1]
        ll, grad15 = log_likelihood_and_gradient(features, theta, target, l2=l2)
        exact_ll.append(ll)
        if t == n_iters:
            break
        if q_step == "exact":  # the q-step at θ_t (eqs. 18, 20)
            q = exact_q_step(features, theta).q
        else:
            q = inexact_q_step(features, theta, q, n_steps=k, lr=q_lr).q
        q_vec = q.probabilities()  # (V^T,)
        costs = features.costs(theta, seqs)  # (V^T,)
        log_p, _ = log_gibbs(costs)
        q_expect = features.weighted_counts(seqs, q_vec)
        p_expect = grad15 + target + l2 * theta  # E_P f from the exact route of eq. (15)
        gap = gap_from_moments(q_vec, log_p, q_expect, p_expect, extremes)
        h_q = entropy(q_vec)
        rec["approx_ll"].append(float(theta @ (q_expect - target)) - 0.5 * l2 * float(theta @ theta))
        rec["q_entropy"].append(h_q)
        rec["q_objective"].append(float(q_vec @ costs) - h_q)
        rec["kl"].append(gap.kl)
        rec["gap"].append(gap.gap)
        rec["range"].append(gap.range_bound)
        rec["tv"].append(gap.tv_bound)
        rec["pinsker"].append(gap.pinsker_bound)
        thetas.append(c_step(theta, features, target, q_vec, lr=lr, l2=l2))  # eqs. (19), (21)
    arr = {key: np.array(val) for key, val in rec.items()}
    return TwoStepResult(
        thetas=np.array(thetas),
        exact_ll=np.array(exact_ll),
        approx_ll=arr["approx_ll"],
        q_entropy=arr["q_entropy"],
        q_objective=arr["q_objective"],
        kl=arr["kl"],
        gradient_gap=arr["gap"],
        range_bound=arr["range"],
        tv_bound=arr["tv"],
        pinsker_bound=arr["pinsker"],
        q=q,
        q_step=q_step,
        k=k,
        lr=lr,
        q_lr=q_lr,
        l2=l2,
    )
