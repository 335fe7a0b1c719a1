"""The generator class and the three adversarial loops of the data-scarce experiment (float64, exact space).

Generator class: the time-dependent Markov policy π_t(s_t | s_{t−1}) — one free logit row per step t
and previous item, held as φ of shape (T, V+1, V) where row V is the start state (read at t = 1
only; the other rows of t = 1 and the start row of t ≥ 2 are never read and keep a zero gradient).
It contains every Gibbs model P_θ with ``last`` features (eq. 8 factorizes into such conditionals,
claim E12), with more parameters than that cost class: V − 1 + (T − 1)·V·(V − 1) free numbers against
the cost's (V + 1)·V.

Discriminators, all linear in the same features f (``last``), with parameters θ (d,) and a scalar b:

- ``"ebgan"`` — EB-SeqGAN (the paper): energy D(S) = θ·f(S), loss (3) with margin m; return
  D + w·log p_G (eq. 4, ψ = −w·H); b unused.
- ``"gan_gcl"`` — GAN-GCL (Finn et al. 2016): cost c = θ·f, b = log Z, D = ẽ/(ẽ + p_G), log-loss;
  return c + log Z + log p_G (w = 1).
- ``"seqgan"`` — SeqGAN (Yu et al. 2017): classifier D = σ(b − θ·f), log-loss (1); return −D (w = 0).

The entropy weight of each return is the one :func:`gan_equiv.train.objectives.make_objective` gives.
Two estimators of every expectation over p_G: ``"population"`` (exact sums over all V^T sequences;
the generator step is the exact gradient (9) by autograd) and ``"sampled"`` (M ancestral samples per
step; the generator step is REINFORCE over whole sequences with a leave-one-out baseline — eq. (14)
with each Q_t estimated by the sequence's own return, unbiased). Expectations over the data are
exact over the N demonstrations in both. Shapes: V^T enumerated sequences, T steps, V items, d features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor

from gan_equiv.checks import choice, finite_float, non_negative_float, positive_float, positive_int
from gan_equiv.losses import (
    ebgan_discriminator_loss,
    ebgan_generator_objective,
    gan_gcl_discriminator_loss,
    policy_gradient_surrogate,
    seqgan_discriminator_loss,
)
from gan_equiv.train.objectives import make_objective
from maxent_il.features import StateActionFeatures

Method = Literal["ebgan", "gan_gcl", "seqgan"]
METHODS: tuple[str, ...] = get_args(Method)
Estimator = Literal["population", "sampled"]
ESTIMATORS: tuple[str, ...] = get_args(Estimator)


@dataclass(frozen=True, eq=False)
class Enumerated:
    """The V^T sequences of a ``last``-feature space, with what every loop reads (torch, float64).

    Attributes:
        seqs: every sequence in index order, int64 (V^T, T).
        prev: the previous item at each step, start = V, int64 (V^T, T).
        counts: f(S) for every sequence, float64 (V^T, d).
        n_items: V.
        horizon: T.
    """

    seqs: Tensor
    prev: Tensor
    counts: Tensor
    n_items: int
    horizon: int

    @classmethod
    def of(cls, features: StateActionFeatures) -> Enumerated:
        """Enumerate the space of ``features`` once (it must use ``last`` states)."""
        if features.state != "last":
            raise ValueError(f"the data-scarce experiment uses 'last' features, got state={features.state!r}")
        seqs = features.space.all_sequences()
        prev = np.concatenate([np.full((seqs.shape[0], 1), features.space.n_items), seqs[:, :-1]], axis=1)
        return cls(
            torch.as_tensor(seqs),
            torch.as_tensor(prev),
            torch.as_tensor(features.counts(seqs)),
            features.space.n_items,
            features.space.horizon,
        )

    def index(self, seqs: Tensor) -> Tensor:
        """index(S) = Σ_t s_t·V^(T−t) of sequences (N, T): int64 (N,)."""
        place = self.n_items ** torch.arange(self.horizon - 1, -1, -1)
        return (seqs * place).sum(dim=1)


def step_log_probs(phi: Tensor, seqs: Tensor, prev: Tensor) -> Tensor:
    """log π_t(s_t | s_{t−1}) of the time-dependent Markov policy φ (T, V+1, V) along seqs (N, T): (N, T)."""
    table = torch.log_softmax(phi, dim=-1)  # (T, V+1, V)
    steps = torch.arange(seqs.shape[1]).expand_as(seqs)
    return table[steps, prev, seqs]


def markov_log_probs(phi: Tensor, space: Enumerated) -> Tensor:
    """log p_G(S) = Σ_t log π_t(s_t | s_{t−1}) (eq. 13's factorization) over all V^T sequences: (V^T,)."""
    return step_log_probs(phi, space.seqs, space.prev).sum(dim=1)


def sample_markov(phi: Tensor, n: int, generator: torch.Generator) -> Tensor:
    """n ancestral draws from the policy φ (a loop over the T steps, vectorized over n): int64 (n, T)."""
    T, start = phi.shape[0], phi.shape[1] - 1
    probs = torch.softmax(phi.detach(), dim=-1)  # (T, V+1, V)
    prev = torch.full((n,), start, dtype=torch.long)
    out = torch.empty(n, T, dtype=torch.long)
    for t in range(T):  # loop over T steps
        prev = torch.multinomial(probs[t, prev], 1, generator=generator).squeeze(1)
        out[:, t] = prev
    return out


def markov_mle(space: Enumerated, counts: np.ndarray, *, pseudo: float = 0.0) -> np.ndarray:
    """Behaviour cloning in the time-dependent Markov class: logits φ (T, V+1, V) of the maximizer of
    Σ_S counts(S)·log p_G(S) (eq. 13's factorization), with ``pseudo`` added to every transition count.

    π_t(a | b) = (n_t(b→a) + α)/(n_{t−1}(b) + V·α); rows with no mass are uniform. With α = 0 unseen
    transitions get log π = −inf (so KL(truth ‖ MLE) = ∞); α = ½ is the Krichevsky–Trofimov estimator.
    ``counts`` (V^T,) may be demo counts or a distribution (then it is MLE with infinite data).
    """
    alpha = non_negative_float(pseudo, "pseudo", hint="pseudo-count per transition; ½ = Krichevsky–Trofimov")
    w = np.asarray(counts, dtype=np.float64)
    T, V = space.horizon, space.n_items
    table = np.zeros((T, V + 1, V))
    steps = np.broadcast_to(np.arange(T), space.seqs.shape)
    np.add.at(
        table, (steps, space.prev.numpy(), space.seqs.numpy()), np.broadcast_to(w[:, None], steps.shape)
    )
    table += alpha
    total = table.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        logits = np.where(total > 0, np.log(table) - np.log(np.where(total > 0, total, 1.0)), 0.0)
    return logits


@dataclass(frozen=True)
class LoopSettings:
    """The schedule every adversarial loop shares (chosen once for all objectives).

    Attributes:
        rounds: alternating rounds; each is ``d_steps`` discriminator steps then ``g_steps`` generator steps.
        d_steps, g_steps: steps per round.
        d_lr, g_lr: Adam step sizes of the discriminator (θ, b) and of the generator (φ), decayed
            by a cosine to a twentieth over the run.
        margin: EB-SeqGAN's margin m of (3).
        entropy_weight: EB-SeqGAN's w (1 = the paper); GAN-GCL uses 1 and SeqGAN 0 whatever it is.
        n_fake: M, generator samples per step of the sampled estimator.
        l2: λ, weight decay (λ/2)‖θ‖² on every discriminator's θ (the MaxEnt fit's L2, when it has one).
        checkpoints: how many evenly spaced snapshots of log p_G to keep.
    """

    rounds: int = 600
    d_steps: int = 1
    g_steps: int = 3
    d_lr: float = 0.05
    g_lr: float = 0.05
    margin: float = 10.0
    entropy_weight: float = 1.0
    n_fake: int = 64
    l2: float = 0.0
    checkpoints: int = 20

    def __post_init__(self) -> None:
        for name in ("rounds", "d_steps", "g_steps", "checkpoints"):
            positive_int(getattr(self, name), name)
        positive_float(self.d_lr, "d_lr", hint="the discriminator's Adam step")
        positive_float(self.g_lr, "g_lr", hint="the generator's Adam step")
        positive_float(self.margin, "margin", hint="EB-SeqGAN's margin m of eq. (3)")
        finite_float(self.entropy_weight, "entropy_weight", hint="1 = the paper")
        non_negative_float(self.l2, "l2", hint="weight decay on θ; 0 = none")
        if positive_int(self.n_fake, "n_fake") < 2:
            raise ValueError(f"n_fake = {self.n_fake}: the leave-one-out baseline needs M >= 2 samples")


@dataclass(frozen=True)
class LoopOutcome:
    """What one adversarial run ends with.

    Attributes:
        phi: the generator's final logits (T, V+1, V).
        theta: the discriminator's final θ (d,).
        bias: its final scalar b (log Z for GAN-GCL, the classifier bias for SeqGAN, 0 for EB-SeqGAN).
        snapshots: log p_G over all V^T sequences at evenly spaced rounds (K, V^T), the last = final.
        snapshot_rounds: the rounds of the snapshots (K,).
        margin_binding: EB-SeqGAN: the largest fake mass with D(S) ≥ m seen in any D-step (0 if never).
    """

    phi: np.ndarray
    theta: np.ndarray
    bias: float
    snapshots: np.ndarray
    snapshot_rounds: np.ndarray
    margin_binding: float


@dataclass(frozen=True, eq=False)
class FakeBatch:
    """The generator's side of a discriminator step: indices into the enumeration and their weights.

    Population: every index (V^T,) with weights p_G (exact expectations); sampled: M drawn indices
    (M,) with weights None (sample means).
    """

    index: Tensor
    weights: Tensor | None


def discriminator_loss(
    method: Method,
    theta: Tensor,
    bias: Tensor,
    space: Enumerated,
    real_weights: Tensor,
    fake: FakeBatch,
    log_p_g: Tensor,
    settings: LoopSettings,
) -> Tensor:
    """The discriminator's loss (minimized) on the demos and the fake batch, plus (λ/2)‖θ‖² (λ = settings.l2).

    ``real_weights`` (V^T,): the demos' empirical distribution (exact over the N demos);
    ``log_p_g`` (V^T,), detached, for GAN-GCL; the margin is ``settings.margin``.
    EB-SeqGAN: eq. (3) E_data D + E_G[m − D]^+ (real energies down, fake up to m); SeqGAN: the
    negated eq. (1) on ℓ = b − θ·f (real logits up); GAN-GCL: the same on ℓ = −θ·f − b − log p_G
    (Finn et al. 2016; real costs down).
    """
    scores = space.counts @ theta  # θ·f(S), (V^T,)
    weights = {"real_weights": real_weights, "fake_weights": fake.weights}
    if method == "ebgan":  # minimized: D(real) down, D(fake) up to m
        loss = ebgan_discriminator_loss(scores, scores[fake.index], margin=settings.margin, **weights)
    elif method == "seqgan":  # minimized: ℓ(real) up, ℓ(fake) down
        logits = bias - scores  # ℓ = b − θ·f: low cost = "real"
        loss = seqgan_discriminator_loss(logits, logits[fake.index], **weights)
    else:  # minimized: c(real) down, c(fake) up, log Z to its optimum (E16)
        loss = gan_gcl_discriminator_loss(
            scores,
            scores[fake.index],
            bias,
            real_log_p_g=log_p_g,
            fake_log_p_g=log_p_g[fake.index],
            **weights,
        )
    return loss + 0.5 * settings.l2 * (theta * theta).sum()  # + weight decay: pulls θ toward 0


def generator_returns(method: Method, theta: Tensor, bias: Tensor, space: Enumerated) -> Tensor:
    """The per-sequence part of the generator's return, detached (V^T,): low = good.

    EB-SeqGAN D = θ·f; GAN-GCL c + log Z = θ·f + b; SeqGAN −D = −σ(b − θ·f) (the generator maximizes
    E_G D). The full return adds w·log p_G with w = ``entropy_weight(method, w)``.
    """
    with torch.no_grad():
        scores = space.counts @ theta
        if method == "ebgan":
            return scores.clone()
        if method == "gan_gcl":
            return scores + bias
        return -torch.sigmoid(bias - scores)


def entropy_weight(method: Method, configured: float) -> float:
    """The w of each return, as :mod:`gan_equiv.train.objectives` defines it (EB: w; GCL: 1; SeqGAN: 0)."""
    return make_objective(method).entropy_weight(configured)


def exact_generator_objective(phi: Tensor, returns: Tensor, w: float, space: Enumerated) -> Tensor:
    """J(φ) = Σ_S p_G(S)[R(S) + w·log p_G(S)] (eq. 4/9) with R held fixed; its autograd gradient is ∇J (9).

    Direction: the generator descends it.
    """
    log_p = markov_log_probs(phi, space)  # (V^T,)
    return ebgan_generator_objective(returns, log_p, entropy_weight=w, weights=log_p.exp())


def sampled_generator_surrogate(
    phi: Tensor, returns: Tensor, w: float, space: Enumerated, samples: Tensor
) -> Tensor:
    """REINFORCE surrogate over whole sequences whose gradient is an unbiased estimate of ∇J (eq. 14).

    For M samples S_m ~ p_G (int64 (M, T)): G_m = R(S_m) + w·log p_G(S_m) (detached) and the
    leave-one-out baseline b_m = mean_{k≠m} G_k (independent of S_m, so the mean is kept); the
    surrogate mean_m Σ_t log π_t(s_t | s_{t−1})·(G_m − b_m) has gradient (1/M) Σ_m ∇log p_G(S_m)·(G_m − b_m).
    Direction: the generator descends it.
    """
    prev = torch.cat([torch.full_like(samples[:, :1], space.n_items), samples[:, :-1]], dim=1)
    steps = step_log_probs(phi, samples, prev)  # (M, T), differentiable
    with torch.no_grad():
        g = returns[space.index(samples)] + w * steps.sum(dim=1)  # (M,)
        m = g.shape[0]
        advantage = g - (g.sum() - g) / (m - 1)
    return policy_gradient_surrogate(steps, advantage[:, None].expand_as(steps))


def _mass_above_margin(theta: Tensor, space: Enumerated, fake: FakeBatch, margin: float) -> float:
    """The fake mass with D(S) = θ·f(S) ≥ m: the part of (3)'s fake term whose gradient is cut off (E7)."""
    with torch.no_grad():
        above = (space.counts[fake.index] @ theta >= margin).double()
        return float((above * fake.weights).sum() if fake.weights is not None else above.mean())


def _cosine(optimizer: torch.optim.Optimizer, total: int) -> torch.optim.lr_scheduler.LRScheduler:
    lr = optimizer.param_groups[0]["lr"]
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total, 1), eta_min=lr / 20)


def run_adversarial(
    method: Method,
    estimator: Estimator,
    space: Enumerated,
    real_weights: np.ndarray,
    phi0: np.ndarray,
    settings: LoopSettings,
    *,
    seed: int,
    init_bias: float = 0.0,
    init_theta: np.ndarray | None = None,
) -> LoopOutcome:
    """One alternating run of ``method`` from generator φ0 and θ = ``init_theta`` (default 0)
    (Algorithm 1's adversarial phase).

    Each round: ``d_steps`` Adam steps on :func:`discriminator_loss`, then ``g_steps`` Adam steps on
    the generator's objective (eq. 4 with the method's return; exact gradient (9) or the sampled
    REINFORCE estimate of (14)). ``real_weights`` (V^T,) is the demos' empirical distribution.
    ``init_bias`` is b at the start (GAN-GCL: log Z; give T·log V, the partition function of the zero
    cost, so that D ≡ ½ against a uniform generator as SeqGAN's classifier with b = 0).
    """
    method = choice(method, "method", METHODS)
    estimator = choice(estimator, "estimator", ESTIMATORS)
    gen = torch.Generator().manual_seed(int(seed))
    w = entropy_weight(method, settings.entropy_weight)
    real_w = torch.as_tensor(real_weights, dtype=torch.float64)
    phi = torch.tensor(phi0, dtype=torch.float64, requires_grad=True)
    d = space.counts.shape[1]
    theta0 = np.zeros(d) if init_theta is None else np.asarray(init_theta, dtype=np.float64)
    if theta0.shape != (d,):
        raise ValueError(f"init_theta must have shape ({d},) (one entry per feature), got {theta0.shape}")
    theta = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(float(init_bias), dtype=torch.float64, requires_grad=method != "ebgan")
    d_params = [theta] + ([bias] if method != "ebgan" else [])
    d_opt = torch.optim.Adam(d_params, lr=settings.d_lr)
    g_opt = torch.optim.Adam([phi], lr=settings.g_lr)
    d_sched = _cosine(d_opt, settings.rounds * settings.d_steps)
    g_sched = _cosine(g_opt, settings.rounds * settings.g_steps)
    every = max(1, settings.rounds // settings.checkpoints)
    snaps, snap_rounds, binding = [], [], 0.0
    for rnd in range(1, settings.rounds + 1):  # loop over rounds (each vectorized over the space)
        for _ in range(settings.d_steps):
            with torch.no_grad():
                log_p = markov_log_probs(phi, space)
            if estimator == "population":
                fake = FakeBatch(torch.arange(log_p.shape[0]), log_p.exp())
            else:
                fake = FakeBatch(space.index(sample_markov(phi, settings.n_fake, gen)), None)
            if method == "ebgan":
                binding = max(binding, _mass_above_margin(theta, space, fake, settings.margin))
            loss = discriminator_loss(method, theta, bias, space, real_w, fake, log_p, settings)
            d_opt.zero_grad()
            loss.backward()
            d_opt.step()
            d_sched.step()
        returns = generator_returns(method, theta, bias, space)
        for _ in range(settings.g_steps):
            if estimator == "population":
                objective = exact_generator_objective(phi, returns, w, space)
            else:
                samples = sample_markov(phi, settings.n_fake, gen)
                objective = sampled_generator_surrogate(phi, returns, w, space, samples)
            g_opt.zero_grad()
            objective.backward()
            g_opt.step()
            g_sched.step()
        if rnd % every == 0 or rnd == settings.rounds:
            with torch.no_grad():
                snaps.append(markov_log_probs(phi, space).numpy().copy())
            snap_rounds.append(rnd)
    return LoopOutcome(
        phi=phi.detach().numpy().copy(),
        theta=theta.detach().numpy().copy(),
        bias=float(bias.detach()),
        snapshots=np.stack(snaps),
        snapshot_rounds=np.asarray(snap_rounds),
        margin_binding=binding,
    )
