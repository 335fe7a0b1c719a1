"""Data-scarce exact problems: behaviour cloning, the MaxEnt IRL fit and the adversarial family, by exact KL.

Truth: a Gibbs model P_θ*(S) ∝ exp(−θ*·f(S)) (eq. 8) with ``last`` state-action features (paper §2.4;
f counts the (s_{t−1}, s_t) pairs, with a start state) on a space small enough to enumerate (V = 4,
T = 5: 1024 sequences). From N demonstrations drawn from it, every method is judged by the exact
KL(truth ‖ model) and by the exact cross-entropy of the truth, KL + H(truth) (the NLL of held-out data):

- ``mle`` / ``mle_kt`` — behaviour cloning in the time-dependent Markov class π_t(s_t | s_{t−1})
  (:mod:`gan_equiv.exact.data_scarce_loops`), which contains the truth: transition frequencies,
  plain (KL = ∞ as soon as a transition the truth uses is unseen) or with add-½ (Krichevsky–
  Trofimov) pseudo-counts;
- ``maxent`` — the exact MaxEnt IRL fit (:func:`maxent_il.fit_maxent`, eq. 15) on the demos' moments,
  with a small L2 only when those moments lie on the boundary of the marginal polytope (errata 7);
- ``ebgan`` / ``gan_gcl`` / ``seqgan`` — the adversarial loops, each in a population (exact) and a
  sampled version (:func:`~gan_equiv.exact.data_scarce_loops.run_adversarial`).

The theory (§2.4, docs/family.md) says: the MaxEnt fit generalizes better than MLE when the cost
class is smaller than the generator class; EB-SeqGAN with w = 1 (margin not binding) and GAN-GCL
(at p_G = P_c) have the MaxEnt fit as their fixed point; SeqGAN with a restricted classifier does not.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import torch
from scipy.special import log_softmax
from torch import Tensor

from gan_equiv.checks import choice, positive_float, positive_int
from gan_equiv.exact.data_scarce_loops import (
    ESTIMATORS,
    METHODS,
    Enumerated,
    FakeBatch,
    LoopSettings,
    Method,
    discriminator_loss,
    entropy_weight,
    exact_generator_objective,
    generator_returns,
    markov_log_probs,
    markov_mle,
    run_adversarial,
)
from maxent_il.divergences import exact_kl
from maxent_il.dynamic import soft_bellman
from maxent_il.features import StateActionFeatures
from maxent_il.gibbs import GibbsModel
from maxent_il.likelihood import demo_moments
from maxent_il.solver import UnboundedOptimumWarning, fit_maxent
from maxent_il.space import SequenceSpace
from maxent_il.targets import diagnose_target

Start = Literal["uniform", "mle_kt"]
#: The methods that need no adversarial loop (judged once per data set).
BASELINES: tuple[str, ...] = ("mle", "mle_kt", "maxent")


@dataclass(frozen=True)
class ScarceConfig:
    """The data-scarce experiment: truth, data sizes, seeds, and the one schedule every loop shares.

    Attributes:
        n_items, horizon: V and T of the space (V^T sequences are enumerated).
        truth_scale, truth_seed: θ* ~ N(0, scale²) per ``last`` feature, drawn with this seed.
        sizes: the numbers N of demonstrations.
        seeds: the data seeds (one demo set per (N, seed)); the loop of a run is seeded with it too.
        kt_pseudo: the pseudo-count of the smoothed MLE (½: Krichevsky–Trofimov).
        boundary_l2: λ of the MaxEnt fit — and weight decay on every discriminator's θ — used only on
            data sets whose moments lie on the polytope's boundary (else 0).
        start: the generator every loop starts from: ``"uniform"`` or ``"mle_kt"``; θ starts at 0.
        loop: the adversarial schedule (:class:`LoopSettings`; its ``l2`` is set per data set).
    """

    n_items: int = 4
    horizon: int = 5
    truth_scale: float = 1.5
    truth_seed: int = 0
    sizes: tuple[int, ...] = (50, 200, 1000)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    kt_pseudo: float = 0.5
    boundary_l2: float = 0.01
    start: Start = "uniform"
    loop: LoopSettings = field(default_factory=LoopSettings)

    def __post_init__(self) -> None:
        positive_int(self.n_items, "n_items")
        positive_int(self.horizon, "horizon")
        positive_float(
            self.truth_scale, "truth_scale", hint="std of θ*; about 1.5 makes P_θ* clearly non-uniform"
        )
        positive_float(self.kt_pseudo, "kt_pseudo", hint="½ is Krichevsky–Trofimov")
        positive_float(self.boundary_l2, "boundary_l2", hint="λ used on boundary data sets only")
        choice(self.start, "start", ("uniform", "mle_kt"))
        if not self.sizes or any(positive_int(n, "sizes entry") < 2 for n in self.sizes):
            raise ValueError(f"sizes = {self.sizes!r}: give one or more numbers of demos, each >= 2")
        if not self.seeds:
            raise ValueError("seeds is empty: give at least one data seed")
        if not isinstance(self.loop, LoopSettings):
            raise ValueError(f"loop must be a LoopSettings, got {type(self.loop).__name__}")


@dataclass(frozen=True, eq=False)
class ScarceProblem:
    """The truth of the experiment, enumerated once.

    Attributes:
        features: ``last`` state-action features over the space.
        theta: θ* (d,).
        log_truth: log P_θ*(S) over all V^T sequences (V^T,).
        entropy: H(P_θ*) in nats (log V^T for the uniform distribution).
        space: the enumerated sequences, their previous items and f(S) (torch).
    """

    features: StateActionFeatures
    theta: np.ndarray
    log_truth: np.ndarray
    entropy: float
    space: Enumerated


@dataclass(frozen=True)
class ScarceResult:
    """One method on one data set.

    Attributes:
        method: ``mle``, ``mle_kt``, ``maxent``, ``ebgan``, ``gan_gcl`` or ``seqgan``.
        estimator: ``population`` or ``sampled`` for the loops, ``""`` for the others.
        n, seed: the data set.
        kl: KL(truth ‖ model) in nats (inf where the model misses a sequence of the truth).
        cross_entropy: −E_truth log model = kl + H(truth), the NLL of held-out truth samples.
        kl_to_maxent: KL(MaxEnt fit ‖ model): how far the model ends from the MaxEnt fit of the same data.
        l2: the λ used (0 unless the data set is on the boundary).
        diagnostics: method-specific numbers (see :func:`run_scarce`).
        trajectory: KL(truth ‖ p_G) at the loop's snapshots (empty for the baselines).
    """

    method: str
    estimator: str
    n: int
    seed: int
    kl: float
    cross_entropy: float
    kl_to_maxent: float
    l2: float
    diagnostics: dict[str, float] = field(default_factory=dict)
    trajectory: tuple[float, ...] = ()


def make_problem(config: ScarceConfig) -> ScarceProblem:
    """The truth P_θ* of eq. (8) with ``last`` features and θ* ~ N(0, truth_scale²) (seeded)."""
    features = StateActionFeatures(SequenceSpace(config.n_items, config.horizon), "last")
    theta = np.random.default_rng(config.truth_seed).normal(scale=config.truth_scale, size=features.dim)
    model = GibbsModel(features, theta)
    return ScarceProblem(features, theta, model.all_log_probs(), model.entropy, Enumerated.of(features))


def draw_demos(problem: ScarceProblem, n: int, seed: int) -> np.ndarray:
    """n exact draws from the truth for data seed ``seed``: int64 (n, T) (independent across (n, seed))."""
    rng = np.random.default_rng([int(seed), int(n), 7919])
    return GibbsModel(problem.features, problem.theta).sample(n, rng=rng)


def histogram(problem: ScarceProblem, demos: np.ndarray) -> np.ndarray:
    """How often each of the V^T sequences occurs among the demos: float64 (V^T,)."""
    idx = problem.space.index(torch.as_tensor(problem.features.space.validate(demos))).numpy()
    return np.bincount(idx, minlength=problem.space.seqs.shape[0]).astype(np.float64)


def gibbs_markov(problem: ScarceProblem, theta: np.ndarray) -> np.ndarray:
    """The Markov logits φ (T, V+1, V) of P_θ (eq. 8) by the soft Bellman backup (claim E12):
    π_t(a | b) ∝ exp(−θ[idx_t(b, a)] + W_{t+1}(a)). The class contains every ``last``-feature Gibbs model."""
    feats, V, T = problem.features, problem.space.n_items, problem.space.horizon
    values = soft_bellman(feats, theta).values  # (T, V): values[t−1, a] = W_{t+1}(… a)
    phi = np.zeros((T, V + 1, V))
    phi[0, V] = -theta[feats.first_step_index()] + values[0]
    for t in range(2, T + 1):  # loop over T steps, vectorized over (prev, a)
        phi[t - 1, :V] = -theta[feats.transition_index(t)] + values[t - 1][None, :]
    return log_softmax(phi, axis=-1)


def markov_all_log_probs(problem: ScarceProblem, phi: np.ndarray) -> np.ndarray:
    """log p_G(S) over all V^T sequences of the Markov policy φ: float64 (V^T,)."""
    with torch.no_grad():
        return markov_log_probs(torch.as_tensor(phi, dtype=torch.float64), problem.space).numpy()


def fit_demo_maxent(
    problem: ScarceProblem, demos: np.ndarray, *, boundary_l2: float, l2_factor: float = 1.0
) -> tuple[np.ndarray, float]:
    """The MaxEnt IRL fit (eqs. 7, 8, 15) to the demos' moments, and the λ it used.

    λ = ``l2_factor · boundary_l2`` when the moments lie on the boundary of the marginal polytope (a
    transition never seen, or a face found by the support LP: the unregularized optimum is at
    infinity, errata 7), λ = 0 otherwise. Returns (θ̂ (d,), λ).
    """
    target = demo_moments(problem.features, demos)
    boundary = diagnose_target(problem.features, target, from_demos=True).boundary
    lam = l2_factor * boundary_l2 if boundary else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnboundedOptimumWarning)  # never silently at infinity
        fit = fit_maxent(problem.features, target_moments=target, l2=lam, gtol=1e-10)
    if not fit.converged:
        raise RuntimeError(
            f"the MaxEnt fit did not converge (‖∇LL‖∞ = {fit.gradient_norm:.2e}): {fit.message}"
        )
    return fit.theta, lam


def exact_diagnostics(
    method: Method,
    phi: Tensor,
    theta: Tensor,
    bias: Tensor,
    space: Enumerated,
    real_weights: Tensor,
    settings: LoopSettings,
) -> dict[str, float]:
    """Exact quantities at a (φ, θ, b): is it a fixed point, and of what?

    ``g_grad``: ‖∇_φ J‖_∞ of the generator's objective (9) with the return held fixed; ``d_grad``:
    ‖∇_{θ,b}‖_∞ of the population discriminator loss; ``moment_gap``: ‖E_G f − E_data f‖_∞;
    ``entropy``: H(p_G); ``log_z_gap``: b − log Σ_S e^{−θ·f(S)} (GAN-GCL; 0 at p_G = P_c);
    ``d_data`` / ``d_fake``: mean D on the demos and under p_G (SeqGAN's classifier σ(b − θ·f)).
    """
    w = entropy_weight(method, settings.entropy_weight)
    phi = phi.clone().requires_grad_(True)
    returns = generator_returns(method, theta, bias, space)
    (g_grad,) = torch.autograd.grad(exact_generator_objective(phi, returns, w, space), phi)
    with torch.no_grad():
        log_p = markov_log_probs(phi, space)
    p = log_p.exp()
    th, b = theta.clone().requires_grad_(True), bias.clone().requires_grad_(True)
    fake = FakeBatch(torch.arange(p.shape[0]), p)
    loss = discriminator_loss(method, th, b, space, real_weights, fake, log_p, settings)
    grads = torch.autograd.grad(loss, [th, b], allow_unused=True)
    d_grad = max(float(g.abs().max()) for g in grads if g is not None)
    with torch.no_grad():
        scores = space.counts @ theta
        out = {
            "g_grad": float(g_grad.abs().max()),
            "d_grad": d_grad,
            "moment_gap": float(((p - real_weights) @ space.counts).abs().max()),
            "entropy": float(-(p * log_p).sum()),
            "log_z_gap": float(bias - torch.logsumexp(-scores, dim=0)) if method == "gan_gcl" else 0.0,
        }
        if method == "seqgan":
            d = torch.sigmoid(bias - scores)
            out.update(d_data=float(real_weights @ d), d_fake=float(p @ d))
    return out


def _one_data_set(
    problem: ScarceProblem, config: ScarceConfig, n: int, seed: int, methods: list[str], estimators: list[str]
) -> Iterable[ScarceResult]:
    """The baselines and every loop on the demo set (n, seed), in that order (see :func:`run_scarce`)."""
    space, T, V = problem.space, config.horizon, config.n_items
    demos = draw_demos(problem, n, seed)
    counts = histogram(problem, demos)
    theta_hat, lam = fit_demo_maxent(problem, demos, boundary_l2=config.boundary_l2)
    log_maxent = GibbsModel(problem.features, theta_hat).all_log_probs()
    log_maxent_2l2 = log_maxent  # the fit with 2λ: GAN-GCL's fixed point under weight decay λ
    if lam > 0:
        theta_2l2, _ = fit_demo_maxent(problem, demos, boundary_l2=config.boundary_l2, l2_factor=2.0)
        log_maxent_2l2 = GibbsModel(problem.features, theta_2l2).all_log_probs()

    def result(
        method: str, estimator: str, log_q: np.ndarray, diagnostics: dict, trajectory=()
    ) -> ScarceResult:
        kl = exact_kl(problem.log_truth, log_q)
        ce = kl + problem.entropy
        return ScarceResult(
            method,
            estimator,
            n,
            seed,
            kl,
            ce,
            exact_kl(log_maxent, log_q),
            lam,
            diagnostics,
            tuple(trajectory),
        )

    kt = markov_mle(space, counts, pseudo=config.kt_pseudo)
    yield result("mle", "", markov_all_log_probs(problem, markov_mle(space, counts)), {})
    yield result("mle_kt", "", markov_all_log_probs(problem, kt), {})
    yield result("maxent", "", log_maxent, {"boundary": float(lam > 0)})
    phi0 = kt if config.start == "mle_kt" else np.zeros((T, V + 1, V))
    settings = replace(config.loop, l2=lam)
    real = counts / counts.sum()
    for method in methods:
        init_bias = T * math.log(V) if method == "gan_gcl" else 0.0  # log Z of the zero cost: D ≡ ½
        for estimator in estimators:
            out = run_adversarial(
                method, estimator, space, real, phi0, settings, seed=1000 * seed + n, init_bias=init_bias
            )
            final = exact_diagnostics(
                method,
                torch.as_tensor(out.phi),
                torch.as_tensor(out.theta),
                torch.tensor(out.bias, dtype=torch.float64),
                space,
                torch.as_tensor(real),
                settings,
            )
            log_cost = GibbsModel(problem.features, out.theta).all_log_probs()
            diagnostics = {
                **final,
                "margin_binding": out.margin_binding,
                "cost_kl": exact_kl(log_maxent, log_cost),
                "kl_to_maxent_2l2": exact_kl(log_maxent_2l2, out.snapshots[-1]),
            }
            trajectory = [exact_kl(problem.log_truth, s) for s in out.snapshots]
            yield result(method, estimator, out.snapshots[-1], diagnostics, trajectory)


def run_scarce(
    config: ScarceConfig,
    *,
    methods: Iterable[str] = METHODS,
    estimators: Iterable[str] = ESTIMATORS,
    progress: Callable[[ScarceResult], None] | None = None,
) -> tuple[ScarceProblem, list[ScarceResult]]:
    """Run every method on every data set (N in ``sizes`` × ``seeds``); returns (problem, results).

    Per data set: the baselines (``mle``, ``mle_kt``, ``maxent``), then each adversarial method with
    each estimator, all from the same generator (``config.start``) with θ = 0 and the same schedule.
    Diagnostics of the loops: ``g_grad``, ``d_grad``, ``moment_gap``, ``entropy``, ``log_z_gap``,
    ``d_data``/``d_fake`` (:func:`exact_diagnostics`), plus
    ``margin_binding`` (EB-SeqGAN) and ``cost_kl`` = KL(MaxEnt fit ‖ P_θ of the learned θ) (is the
    discriminator's cost the MaxEnt cost?) and ``kl_to_maxent_2l2`` = KL(MaxEnt fit with 2λ ‖ p_G)
    (equal to ``kl_to_maxent`` when λ = 0). ``maxent`` reports ``boundary`` (1 when λ > 0).
    """
    methods = [choice(m, "method", METHODS) for m in methods]
    estimators = [choice(e, "estimator", ESTIMATORS) for e in estimators]
    problem = make_problem(config)
    results: list[ScarceResult] = []
    for n in config.sizes:
        for seed in config.seeds:
            for res in _one_data_set(problem, config, n, seed, methods, estimators):
                results.append(res)
                if progress is not None:
                    progress(res)
    return problem, results


@dataclass(frozen=True)
class Cell:
    """mean ± std of a quantity over the seeds of one (method, estimator, N); inf if any seed is inf.

    Attributes:
        mean, std: over the finite values (sample std, ddof = 1; 0 for one value); ``mean`` is inf
            when n_inf > 0.
        n_inf: seeds whose value is infinite.
        n: seeds.
    """

    mean: float
    std: float
    n_inf: int
    n: int

    def __str__(self) -> str:
        if self.n_inf:
            return f"inf ({self.n_inf}/{self.n})"
        return f"{self.mean:.4f} ± {self.std:.4f}"


def summarize(results: Iterable[ScarceResult], *, key: str = "kl") -> dict[tuple[str, str, int], Cell]:
    """(method, estimator, N) → :class:`Cell` of ``key`` (a :class:`ScarceResult` field) over the seeds."""
    groups: dict[tuple[str, str, int], list[float]] = {}
    for r in results:
        groups.setdefault((r.method, r.estimator, r.n), []).append(float(getattr(r, key)))
    out = {}
    for k, values in groups.items():
        arr = np.asarray(values)
        finite = arr[np.isfinite(arr)]
        n_inf = int(arr.size - finite.size)
        mean = math.inf if n_inf else float(finite.mean())
        std = float(finite.std(ddof=1)) if finite.size > 1 else (0.0 if finite.size else math.nan)
        out[k] = Cell(mean, std, n_inf, int(arr.size))
    return out
