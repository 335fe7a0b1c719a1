"""Variance of generator-gradient estimators of ∇J, J = E_G[D] − w·H(p_G) (eq. 4, ψ = −w·H; eq. 14).

On a small GRU problem (float64 GRUPolicy with a sharpened softmax head, so that log p_G(S) varies
as in a pretrained generator; a linear energy D = θ·f with Markov features) the script draws R
independent estimates of ∇J from each estimator with the same N samples and K rollouts per prefix:

- ``paper_full``: :func:`gan_equiv.exact.policy_gradients.mc_policy_gradient`, mode ``"full"``, no
  baseline — the paper's estimator (return D + w·log p_G(S) from rollouts);
- ``full_loo`` / ``rtg_loo``: the same with the leave-one-out baseline, full return / reward-to-go;
- ``analytic`` / ``analytic_loo``: :func:`gan_equiv.train.entropy_gradient.analytic_entropy_surrogate`
  — energy part from rollouts (``mc_q_values`` with w = 0), entropy part analytic per step — without
  and with the leave-one-out baseline.

Printed per estimator: the total variance Σ_i Var(ĝ_i) over the R estimates, its ratio to
``paper_full`` (below 1 = less variance), the seconds per estimate, and the largest z-score of its mean
against the mean of ``paper_full`` along 8 fixed random directions (all are unbiased for the same
∇J, so |z| stays small; independent draws per estimator). Exits
non-zero when a z-score exceeds the bound.

    python benchmarks/bench_estimator_variance.py          # V=20, T=10, N=32, K=4, R=60 (< 1 min)
    python benchmarks/bench_estimator_variance.py --fast   # V=8, T=5, N=16, K=2, R=48 (seconds)
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan_equiv.exact.policy_gradients import mc_policy_gradient
from gan_equiv.models.energies import LinearEnergy
from gan_equiv.models.policies import GRUPolicy
from gan_equiv.train.entropy_gradient import analytic_entropy_surrogate
from gan_equiv.train.rollouts import mc_q_values
from maxent_il.features import StateActionFeatures
from maxent_il.space import SequenceSpace

#: The z-score bound of tests/conftest.py (MC_Z_SCORE), repeated so the script stands alone.
Z_BOUND = 5.0
#: Means are compared along this many fixed random directions of parameter space.
PROJECTIONS = 8


@dataclass(frozen=True)
class Setting:
    items: int
    horizon: int
    samples: int
    rollouts: int
    repeats: int
    sharpness: float
    entropy_weight: float


def build(setting: Setting, seed: int) -> tuple[GRUPolicy, LinearEnergy]:
    """A float64 GRU generator with its head scaled by ``sharpness`` and a random linear energy."""
    torch.manual_seed(seed)
    policy = GRUPolicy(setting.items, setting.horizon, embed_dim=16, hidden_dim=16, dtype=torch.float64)
    with torch.no_grad():
        policy.head.weight.mul_(setting.sharpness)
    features = StateActionFeatures(SequenceSpace(setting.items, setting.horizon), "last")
    theta = np.random.default_rng(seed).normal(size=features.dim)
    return policy, LinearEnergy(features, theta=theta)


def analytic_gradient(
    policy: GRUPolicy, energy: LinearEnergy, setting: Setting, gen: torch.Generator, baseline: bool
) -> Tensor:
    """One analytic-entropy estimate of ∇J (flat float64)."""
    seqs = policy.sample(setting.samples, generator=gen)
    q = mc_q_values(policy, energy, seqs, n_rollouts=setting.rollouts, entropy_weight=0.0, generator=gen)
    loss = analytic_entropy_surrogate(
        policy,
        seqs,
        q,
        entropy_weight=setting.entropy_weight,
        baseline="leave_one_out" if baseline else None,
    )
    params = [p for p in policy.parameters() if p.requires_grad]
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]).double()


def estimators(policy: GRUPolicy, energy: LinearEnergy, setting: Setting) -> dict[str, Callable]:
    """Name → (generator → one flat estimate of ∇J)."""

    def paper(mode: str, baseline: str | None) -> Callable[[torch.Generator], Tensor]:
        return lambda gen: mc_policy_gradient(
            policy,
            energy,
            setting.samples,
            n_rollouts=setting.rollouts,
            entropy_weight=setting.entropy_weight,
            mode=mode,
            baseline=baseline,
            generator=gen,
        )

    return {
        "paper_full": paper("full", None),
        "full_loo": paper("full", "leave_one_out"),
        "rtg_loo": paper("reward_to_go", "leave_one_out"),
        "analytic": lambda gen: analytic_gradient(policy, energy, setting, gen, False),
        "analytic_loo": lambda gen: analytic_gradient(policy, energy, setting, gen, True),
    }


def run(setting: Setting, seed: int) -> dict[str, dict[str, float]]:
    """R estimates per estimator; total variance, ratio to the paper's, seconds, z against the paper."""
    policy, energy = build(setting, seed)
    with torch.no_grad():
        lp = policy.log_prob(policy.sample(512, generator=torch.Generator().manual_seed(seed)))
    print(f"log p_G(S) over 512 samples: mean {float(lp.mean()):.2f} nats, sd {float(lp.std()):.2f}")
    results: dict[str, dict[str, float]] = {}
    draws: dict[str, Tensor] = {}
    for i, (name, estimate) in enumerate(estimators(policy, energy, setting).items()):
        gen = torch.Generator().manual_seed(seed + 1 + i)  # independent draws per estimator
        start = time.perf_counter()
        draws[name] = torch.stack([estimate(gen) for _ in range(setting.repeats)])  # (R, n_params)
        seconds = (time.perf_counter() - start) / setting.repeats
        results[name] = {"total_variance": float(draws[name].var(dim=0).sum()), "seconds": seconds}
    # means compared along PROJECTIONS fixed random directions (scalar statistics, nearly Gaussian)
    n_params = draws["paper_full"].shape[1]
    directions = torch.randn(
        n_params, PROJECTIONS, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    ref = draws["paper_full"] @ directions  # (R, PROJECTIONS)
    for name, d in draws.items():
        proj = d @ directions
        se = (proj.var(dim=0) / proj.shape[0] + ref.var(dim=0) / ref.shape[0]).sqrt()
        z = float(((proj.mean(0) - ref.mean(0)).abs() / se).max()) if name != "paper_full" else 0.0
        results[name]["ratio"] = results[name]["total_variance"] / results["paper_full"]["total_variance"]
        results[name]["z_vs_paper"] = z
    return results


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Parse options, run, print the table; exit non-zero if a mean disagrees beyond the z bound."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="V=8, T=5, N=16, K=2, R=48 (seconds)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--entropy-weight", type=float, default=1.0, help="w, weight of the entropy term in Q of eq. (14)"
    )
    parser.add_argument("--sharpness", type=float, default=4.0, help="scale of the GRU softmax head")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.fast:
        setting = Setting(8, 5, 16, 2, 48, args.sharpness, args.entropy_weight)
    else:
        setting = Setting(20, 10, 32, 4, 60, args.sharpness, args.entropy_weight)
    print(
        f"V={setting.items} T={setting.horizon} N={setting.samples} K={setting.rollouts} "
        f"R={setting.repeats} w={setting.entropy_weight} sharpness={setting.sharpness}"
    )
    results = run(setting, args.seed)
    print(f"{'estimator':<14}{'total var':>14}{'ratio':>10}{'s/estimate':>12}{'z vs paper':>12}")
    for name, r in results.items():
        print(
            f"{name:<14}{r['total_variance']:>14.4g}{r['ratio']:>10.3f}{r['seconds']:>12.4f}"
            f"{r['z_vs_paper']:>12.2f}"
        )
    gain = results["analytic_loo"]["total_variance"] / results["rtg_loo"]["total_variance"]
    print(f"analytic_loo / rtg_loo variance: {gain:.3f} (the analytic entropy part beyond the baseline)")
    worst = max(r["z_vs_paper"] for r in results.values())
    if not math.isfinite(worst) or worst > Z_BOUND:
        print(f"FAIL: an estimator's mean differs from the paper's by z = {worst:.2f} > {Z_BOUND}")
        raise SystemExit(1)
    return results


if __name__ == "__main__":
    main()
