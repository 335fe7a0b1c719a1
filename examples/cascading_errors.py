"""Cascading errors (paper §6): behaviour cloning vs EB-SeqGAN, per step, exactly, on own rollouts.

The paper expects EB-SeqGAN, trained on whole trajectories, to "suffer less from the cascading
error issue" than behaviour cloning (BC: MLE, one step at a time on data prefixes). This script
measures it exactly on a tiny problem where every quantity is a float64 sum over all V^T sequences.

**Setup.** Truth: a random Gibbs model with ``history`` state (:func:`gan_equiv.train.problems.gibbs_problem`:
every conditional may depend on the whole prefix — long-range structure). Limited data: ``n``
samples. Limited capacity: a :class:`~gan_equiv.models.policies.GRUPolicy` with a tiny hidden state (4),
which cannot remember the whole prefix. All arms start from one MLE-pretrained generator (Algorithm
1, line 1) and then take the same number of exact full-batch generator steps (``--steps``, Adam with
the same cosine-decayed step size), so no arm wins by more optimization:

- **BC (MLE)** — maximum likelihood on the samples continued: argmin KL(p_emp‖p_G) in the class,
  i.e. per-step cross-entropy on *data* prefixes (behaviour cloning).
- **EB-SeqGAN (adversarial loop)** — Algorithm 1 with exact gradients: each round ``g_steps`` Adam
  steps on the exact generator objective (4) with ψ = −H (the gradient (9), by autograd over the
  enumerated space), then one exact SGD step on the D-loss (3) (margin never binding) for a linear
  energy D = θ·f over ``history`` features (the paper's state-action occurrences), with weight
  decay λ: with a generator that cannot match the data, a signed energy's loss (3) is unbounded
  below (errata 3), so some bound is needed. D is warm-started at the MaxEnt cost of the
  pretrained generator's own moments (the energy that generator already nearly best-responds to):
  from D ≡ 0 the first G-steps only maximize entropy and erase the pretraining, and pretraining D
  on (3) against a fixed G diverges for a linear energy (errata 2); ``--d-init zero`` shows that.
  The D step matters: with ``--d-lr 0.5`` the loop passed its best point and drifted back up on 3
  of 5 seeds in our runs (its gain over BC on own rollouts fell to about a half, with a larger
  spread); the default 0.2 settles.
- **EB-SeqGAN fixed point** — the generator of (4) against the *converged* energy, the MaxEnt IRL
  cost θ*·f fitted by ``maxent_il`` (same features and λ): where the paper's theory (claim E11)
  says the loop ends when the generator is expressive enough. In the class this minimizes
  KL(p_G‖P_θ*) — a reverse-KL (whole-trajectory, mode-seeking) projection.
- **control: BC on P_θ*** — MLE on the same smoothed target P_θ* (its forward-KL projection). The
  fixed point differs from BC in two ways — a better target (the L2-regularized MaxEnt fit instead
  of the raw samples) and a whole-trajectory objective (reverse instead of forward KL); this
  control separates them.

**Metrics** (nats). For each step t, with h_t = s_1 … s_{t−1}:

- own-fed forward  e_t = E_{h_t ~ p_model} KL(p_true(·|h_t) ‖ p_model(·|h_t)) — error of the
  next-item distribution on the model's OWN rollouts (what auto-play sees);
- data-fed forward E_{h_t ~ p_true} KL(p_true(·|h_t) ‖ p_model(·|h_t)) — the same on data prefixes
  (what top-k next-item metrics see, §6);
- own-fed reverse  E_{h_t ~ p_model} KL(p_model(·|h_t) ‖ p_true(·|h_t)), and data-fed reverse.

The chain rule gives two exact identities, checked to 1e-8: Σ_t own-fed reverse = KL(p_model‖p_true)
and Σ_t data-fed forward = KL(p_true‖p_model). The own-fed *forward* sum — the "accumulated error
along own rollouts" reported in the verdict — is not a sequence-level KL (it mixes the two
directions). Cascading shows as own-fed error growing above data-fed error with t.

**Figure** ``cascading_errors.png``: per-step errors vs t (own-fed solid, data-fed dashed; mean ±
std over seeds), their accumulated sums, the own − data gap, sequence-level KLs both ways, and the
adversarial loop's trajectory per seed. Prints a per-seed table and the verdict lines.

Run: ``python examples/cascading_errors.py`` (about 4–6 min on one CPU thread, 5 seeds);
``--fast`` is a smoke test on V = 3, T = 4.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from gan_equiv.losses import ebgan_discriminator_loss, ebgan_generator_objective
from gan_equiv.models.energies import LinearEnergy
from gan_equiv.models.policies import GRUPolicy, SequencePolicy
from gan_equiv.train.problems import ExactProblem, gibbs_problem
from maxent_il import StateActionFeatures, fit_maxent
from maxent_il.divergences import PER_STEP_ERRORS as ERRORS
from maxent_il.divergences import exact_divergences, per_step_errors

MODELS = ("bc", "gan_loop", "gan_fixed_point", "bc_on_star")
LABELS = {
    "bc": "BC (MLE)",
    "gan_loop": "EB-SeqGAN, adversarial loop",
    "gan_fixed_point": "EB-SeqGAN fixed point (G vs MaxEnt IRL cost)",
    "bc_on_star": "control: BC on P_θ* (same target, forward KL)",
    "pretrained": "(shared start: MLE pretraining)",
}
COLORS = {"bc": "tab:blue", "gan_loop": "tab:red", "gan_fixed_point": "tab:green", "bc_on_star": "tab:gray"}
NEVER = 1e3  # a margin no energy reaches here (checked every round)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-items", type=int, default=3, help="V, items per position")
    parser.add_argument("--horizon", type=int, default=7, help="T, sequence length")
    parser.add_argument("--n-samples", type=int, default=500, help="training sequences (limited data)")
    parser.add_argument("--truth-scale", type=float, default=1.0, help="θ ~ N(0, scale²) of the truth")
    parser.add_argument("--hidden", type=int, default=4, help="GRU embedding and hidden size (capacity)")
    parser.add_argument("--l2", type=float, default=0.01, help="λ: D weight decay and MaxEnt L2")
    parser.add_argument("--pretrain-steps", type=int, default=600, help="shared MLE pretraining steps")
    parser.add_argument("--mle-lr", type=float, default=0.03, help="Adam step of the pretraining")
    parser.add_argument("--steps", type=int, default=1200, help="generator steps of every arm after it")
    parser.add_argument("--g-steps", type=int, default=5, help="generator steps per adversarial round")
    parser.add_argument("--g-lr", type=float, default=0.01, help="Adam step (cosine-decayed), every arm")
    parser.add_argument("--d-lr", type=float, default=0.2, help="SGD step on the D-loss (3)")
    parser.add_argument(
        "--d-init",
        choices=("maxent", "zero"),
        default="maxent",
        help="start of the loop's linear energy: the MaxEnt fit to the pretrained G, or θ = 0",
    )
    parser.add_argument("--log-every", type=int, default=10, help="rounds between trajectory points")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--n-seeds", type=int, default=5, help="seeds run: --seed, --seed + 1, …")
    parser.add_argument("--out-dir", default="outputs/cascading_errors", help="folder of the figure and JSON")
    parser.add_argument("--fast", action="store_true", help="V=3, T=4, one seed, few steps: seconds")
    args = parser.parse_args(argv)
    if args.fast:
        args.horizon, args.n_samples, args.hidden, args.n_seeds = 4, 200, 2, 1
        args.pretrain_steps, args.steps, args.g_steps = 100, 60, 2
        args.log_every = 5
    return args


def evaluate(problem: ExactProblem, policy: SequencePolicy, seqs: torch.Tensor) -> dict:
    """Per-step errors, their sums, sequence-level KLs both ways and the chain-rule residuals."""
    with torch.no_grad():
        log_model = policy.log_prob(seqs).double().numpy()
    V, T = problem.space.n_items, problem.space.horizon
    steps = per_step_errors(problem.log_probs, log_model, V, T)
    div = exact_divergences(problem.log_probs, log_model)
    return {
        **steps,
        **{f"{k}_sum": float(v.sum()) for k, v in steps.items()},
        "kl_true_model": div.kl_pq,
        "kl_model_true": div.kl_qp,
        "chain_rule_own": abs(float(steps["own_rev"].sum()) - div.kl_qp),
        "chain_rule_data": abs(float(steps["data_fwd"].sum()) - div.kl_pq),
    }


# --- training (all exact: full-batch over the enumerated space) ----------------------------------
def make_optimizer(policy: SequencePolicy, lr: float, steps: int):
    """Adam with a cosine decay to lr/20 over ``steps`` steps (the same schedule for every arm)."""
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=lr / 20)


def mle_step(policy: SequencePolicy, opt, seqs: torch.Tensor, target: torch.Tensor) -> None:
    """Behaviour cloning: one step on −Σ_S target(S) log p_G(S) / T (teacher forcing on data prefixes)."""
    nll = -(target * policy.log_prob(seqs)).sum() / policy.horizon
    opt.zero_grad()
    nll.backward()
    opt.step()


def generator_step(policy: SequencePolicy, opt, seqs: torch.Tensor, energy: torch.Tensor) -> None:
    """One step on the exact (4) with ψ = −H: ∇ Σ_S p_G(S)[D(S) + log p_G(S)], i.e. line (9)."""
    log_p = policy.log_prob(seqs)
    objective = ebgan_generator_objective(energy, log_p, entropy_weight=1.0, weights=log_p.exp())
    opt.zero_grad()
    objective.backward()
    opt.step()


def train_fixed(policy: SequencePolicy, step_fn, steps: int, lr: float) -> None:
    """``steps`` generator steps of ``step_fn(policy, opt)`` under the shared Adam + cosine schedule."""
    opt, schedule = make_optimizer(policy, lr, steps)
    for _ in range(steps):
        step_fn(policy, opt)
        schedule.step()


def adversarial_loop(problem, policy, features, seqs, p_emp, args, theta0) -> list[dict]:
    """EB-SeqGAN with exact gradients: g_steps G-steps on (4), one SGD step on (3) + (λ/2)‖θ‖²."""
    energy = LinearEnergy(features, theta=theta0)
    d_opt = torch.optim.SGD(energy.parameters(), lr=args.d_lr, weight_decay=args.l2)
    rounds = args.steps // args.g_steps
    g_opt, schedule = make_optimizer(policy, args.g_lr, rounds * args.g_steps)
    history = []
    for k in range(rounds):  # adversarial rounds (not a loop over sequences)
        with torch.no_grad():
            d_values = energy(seqs)
        for _ in range(args.g_steps):
            generator_step(policy, g_opt, seqs, d_values)
            schedule.step()
        d_values = energy(seqs)
        if float(d_values.detach().max()) >= NEVER:
            raise RuntimeError(f"the margin m={NEVER} started to bind; raise NEVER")
        with torch.no_grad():
            p_g = policy.log_prob(seqs).exp()
        loss = ebgan_discriminator_loss(
            d_values, d_values, margin=NEVER, real_weights=p_emp, fake_weights=p_g
        )
        d_opt.zero_grad()
        loss.backward()
        grad_norm = float(energy.theta.grad.abs().max())  # ∇(3) (the weight decay is added by SGD)
        d_opt.step()
        if (k + 1) % args.log_every == 0 or k == 0:
            ev = evaluate(problem, policy, seqs)
            history.append(
                {
                    "round": k + 1,
                    "kl_model_true": ev["kl_model_true"],
                    "kl_true_model": ev["kl_true_model"],
                    "own_fwd_sum": ev["own_fwd_sum"],
                    "d_grad": grad_norm,
                }
            )
    return history


def run_seed(seed: int, args: argparse.Namespace) -> dict:
    """One truth, one sample, one initialization; the four generators, evaluated exactly.

    Every arm starts from the same MLE-pretrained generator and then takes the same number of
    generator steps (``--steps``) with the same Adam + cosine schedule: BC continues MLE on the
    samples, the loop plays ``steps / g_steps`` rounds, the fixed point and the control optimize
    their fixed objectives.
    """
    t_start = time.perf_counter()
    problem = gibbs_problem(
        args.n_items,
        args.horizon,
        state="history",
        scale=args.truth_scale,
        n_samples=args.n_samples,
        seed=seed,
    )
    seqs = torch.as_tensor(problem.space.all_sequences())
    p_emp = torch.as_tensor(problem.empirical_distribution())
    features = StateActionFeatures(problem.space, "history")
    F_all = problem.space.all_sequences()
    torch.manual_seed(seed)
    start = GRUPolicy(
        args.n_items, args.horizon, embed_dim=args.hidden, hidden_dim=args.hidden, dtype=torch.float64
    )
    opt = torch.optim.Adam(start.parameters(), lr=args.mle_lr)
    for _ in range(args.pretrain_steps):  # shared MLE pretraining (Algorithm 1, line 1)
        mle_step(start, opt, seqs, p_emp)
    lr = args.g_lr
    bc = copy.deepcopy(start)
    train_fixed(bc, lambda pol, o: mle_step(pol, o, seqs, p_emp), args.steps, lr)
    t_mle = time.perf_counter() - t_start
    out = {"seed": seed, "bc": evaluate(problem, bc, seqs)}

    # EB-SeqGAN fixed point: the generator of (4) against the MaxEnt IRL cost θ*·f.
    t0 = time.perf_counter()
    fit = fit_maxent(features, problem.samples, l2=args.l2, gtol=1e-9)
    cost = torch.as_tensor(features.costs(fit.theta, F_all))
    fixed = copy.deepcopy(start)
    train_fixed(fixed, lambda pol, o: generator_step(pol, o, seqs, cost), args.steps, lr)
    out["gan_fixed_point"] = evaluate(problem, fixed, seqs)
    log_p_star = -features.costs(fit.theta, F_all) - fit.log_partition
    star = exact_divergences(problem.log_probs, log_p_star)
    out["maxent_fit"] = {"kl_true_star": star.kl_pq, "kl_star_true": star.kl_qp, "converged": fit.converged}
    # Control: behaviour cloning on the same smoothed target P_θ* (its forward-KL projection), so the
    # fixed point's gain splits into "better target" (P_θ* vs the raw samples) and "whole-trajectory
    # objective" (reverse vs forward KL to the same target).
    control = copy.deepcopy(start)
    p_star = torch.as_tensor(np.exp(log_p_star))
    train_fixed(control, lambda pol, o: mle_step(pol, o, seqs, p_star), args.steps, lr)
    out["bc_on_star"] = evaluate(problem, control, seqs)
    t_fixed = time.perf_counter() - t0

    # EB-SeqGAN adversarial loop, from the MLE generator.
    t0 = time.perf_counter()
    loop = copy.deepcopy(start)
    if args.d_init == "maxent":
        with torch.no_grad():
            p_start = start.log_prob(seqs).exp().numpy()
        moments = features.weighted_counts(F_all, p_start)
        theta0 = fit_maxent(features, target_moments=moments, l2=args.l2).theta
    else:
        theta0 = np.zeros(features.dim)
    out["trajectory"] = adversarial_loop(problem, loop, features, seqs, p_emp, args, theta0)
    out["gan_loop"] = evaluate(problem, loop, seqs)
    t_loop = time.perf_counter() - t0
    out["seconds"] = {"mle": t_mle, "fixed_point_and_control": t_fixed, "loop": t_loop}
    out["truth"] = {"entropy": problem.entropy, "description": problem.description}
    out["pretrained"] = evaluate(problem, start, seqs)
    return out


# --- summary and plots -------------------------------------------------------------------------
def mean_std(runs: list[dict], model: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    values = np.array([r[model][key] for r in runs], dtype=float)
    return values.mean(axis=0), values.std(axis=0)


def plot(runs: list[dict], path: Path, horizon: int) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    t = np.arange(1, horizon + 1)
    n = len(runs)
    for model in MODELS:
        c = COLORS[model]
        for ax, (own, data, name) in zip(
            axes[0, :2],
            [
                ("own_fwd", "data_fwd", "KL(p_true(·|h)‖p_model(·|h))"),
                ("own_rev", "data_rev", "KL(p_model(·|h)‖p_true(·|h))"),
            ],
            strict=True,
        ):
            for key, ls in ((own, "-"), (data, "--")):
                m, s = mean_std(runs, model, key)
                ax.plot(
                    t,
                    m,
                    ls,
                    color=c,
                    marker="o",
                    ms=3,
                    label=f"{LABELS[model]}, {'own' if ls == '-' else 'data'}-fed",
                )
                ax.fill_between(t, m - s, m + s, color=c, alpha=0.12)
            ax.set_title(
                f"per-step error E_h {name}\nsolid: h ~ p_model (own rollouts), dashed: h ~ p_true",
                fontsize=9,
            )
            ax.set_xlabel("step t")
            ax.set_ylabel("nats")
        ax = axes[0, 2]
        m, s = mean_std(runs, model, "own_fwd")
        cum = np.cumsum(np.array([r[model]["own_fwd"] for r in runs]), axis=1)
        ax.plot(t, cum.mean(axis=0), "-", color=c, marker="o", ms=3, label=f"{LABELS[model]}, own-fed")
        ax.fill_between(
            t, cum.mean(axis=0) - cum.std(axis=0), cum.mean(axis=0) + cum.std(axis=0), color=c, alpha=0.12
        )
        cum_d = np.cumsum(np.array([r[model]["data_fwd"] for r in runs]), axis=1)
        ax.plot(t, cum_d.mean(axis=0), "--", color=c, lw=1)
        ax = axes[1, 0]
        gap = np.array([r[model]["own_fwd"] - r[model]["data_fwd"] for r in runs])
        ax.plot(t, gap.mean(axis=0), "-", color=c, marker="o", ms=3, label=LABELS[model])
        ax.fill_between(
            t, gap.mean(axis=0) - gap.std(axis=0), gap.mean(axis=0) + gap.std(axis=0), color=c, alpha=0.12
        )
    axes[0, 0].legend(fontsize=7)
    axes[0, 2].set_title(
        "accumulated forward error Σ_{s≤t}\nsolid: own rollouts, dashed: data prefixes", fontsize=9
    )
    axes[0, 2].set_xlabel("step t")
    axes[0, 2].legend(fontsize=7)
    ax = axes[1, 0]
    ax.axhline(0, color="k", lw=0.5)
    ax.set_title("cascading signature: own-fed − data-fed forward error per step", fontsize=9)
    ax.set_xlabel("step t")
    ax.legend(fontsize=7)

    ax = axes[1, 1]
    keys = [("kl_true_model", "KL(p_true‖p_model)\n(= Σ data-fed fwd)"),
            ("kl_model_true", "KL(p_model‖p_true)\n(= Σ own-fed rev)"),
            ("own_fwd_sum", "Σ own-fed fwd\n(accumulated error)")]  # fmt: skip
    width = 0.8 / len(MODELS)
    for i, model in enumerate(MODELS):
        means = [mean_std(runs, model, k)[0] for k, _ in keys]
        stds = [mean_std(runs, model, k)[1] for k, _ in keys]
        ax.bar(
            np.arange(len(keys)) + (i - (len(MODELS) - 1) / 2) * width,
            means,
            width,
            yerr=stds,
            color=COLORS[model],
            label=LABELS[model],
            capsize=3,
        )
    star = np.array([[r["maxent_fit"]["kl_true_star"], r["maxent_fit"]["kl_star_true"]] for r in runs])
    ax.scatter(
        [0, 1], star.mean(axis=0), marker="_", s=400, color="k", zorder=3, label="MaxEnt IRL fit P_θ* itself"
    )
    ax.set_xticks(np.arange(len(keys)), [k[1] for k in keys], fontsize=8)
    ax.set_ylabel("nats")
    ax.set_title(f"sequence level (mean ± std over {n} seed{'s' if n > 1 else ''})", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[1, 2]
    for r in runs:
        traj = r["trajectory"]
        rounds = [h["round"] for h in traj]
        ax.plot(rounds, [h["kl_model_true"] for h in traj], "-", color="tab:red", lw=1, alpha=0.8)
        ax.plot(rounds, [h["kl_true_model"] for h in traj], "--", color="tab:purple", lw=1, alpha=0.8)
        ax.axhline(r["bc"]["kl_model_true"], color="tab:blue", lw=0.6, alpha=0.5)
    ax.plot([], [], "-", color="tab:red", label="loop: KL(p_model‖p_true)")
    ax.plot([], [], "--", color="tab:purple", label="loop: KL(p_true‖p_model)")
    ax.plot([], [], "-", color="tab:blue", lw=0.6, label="BC at the end: KL(p_model‖p_true)")
    ax.set_xlabel("adversarial round")
    ax.set_ylabel("nats")
    ax.set_title("adversarial loop per seed (does it settle?)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def verdict_line(runs: list[dict], model: str, key: str, what: str, base: str = "bc") -> tuple[str, dict]:
    """'<model> <what> X vs <base> Y: better/worse by Z', mean ± std over seeds (paired difference)."""
    x = np.array([r[model][key] for r in runs])
    y = np.array([r[base][key] for r in runs])
    d = x - y
    word = "better" if d.mean() < 0 else "worse"
    wins = int((d < 0).sum())
    line = (
        f"{LABELS[model]}: {what} {x.mean():.3f} ± {x.std():.3f} vs {LABELS[base]} {y.mean():.3f} ± "
        f"{y.std():.3f}: "
        f"{word} by {abs(d.mean()):.3f} ± {d.std():.3f} nats (better on {wins}/{len(runs)} seeds)"
    )
    return line, {
        "model": x.mean(),
        "bc": y.mean(),
        "difference": d.mean(),
        "difference_std": d.std(),
        "wins": wins,
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seed, args.seed + args.n_seeds))
    print(
        f"truth: random Gibbs model, 'history' features, V={args.n_items}, T={args.horizon} "
        f"({args.n_items**args.horizon} sequences); {args.n_samples} samples; GRU hidden {args.hidden}; "
        f"seeds {seeds}"
    )
    runs = []
    for seed in seeds:
        run = run_seed(seed, args)
        runs.append(run)
        sec = run["seconds"]
        print(
            f"\nseed {seed}: H(p_true) = {run['truth']['entropy']:.3f}; MaxEnt IRL fit P_θ*: "
            f"KL(p_true‖P*) = {run['maxent_fit']['kl_true_star']:.3f}, KL(P*‖p_true) = "
            f"{run['maxent_fit']['kl_star_true']:.3f}; times: pretraining + BC {sec['mle']:.1f} s, "
            f"fixed point + control {sec['fixed_point_and_control']:.1f} s, loop {sec['loop']:.1f} s; "
            "loop's last ‖∇(3)‖∞ = "
            f"{run['trajectory'][-1]['d_grad']:.1e}"
        )
        print(
            f"   {'model':<46} {'KL(true‖m)':>10} {'KL(m‖true)':>10} {'Σ own fwd':>10} {'Σ data fwd':>10}"
            "  own−data fwd per t"
        )
        for model in ("pretrained", *MODELS):
            ev = run[model]
            print(
                f"   {LABELS[model]:<46} {ev['kl_true_model']:10.4f} {ev['kl_model_true']:10.4f} "
                f"{ev['own_fwd_sum']:10.4f} {ev['data_fwd_sum']:10.4f}  "
                + " ".join(f"{g:+.3f}" for g in ev["own_fwd"] - ev["data_fwd"])
            )
    chain = max(max(r[m]["chain_rule_own"], r[m]["chain_rule_data"]) for r in runs for m in MODELS)
    print(f"\nchain rule (Σ own-fed rev = KL(m‖true), Σ data-fed fwd = KL(true‖m)): max residual {chain:.1e}")

    print(f"\n== per-step errors, mean over {len(runs)} seed(s), t = 1 … {args.horizon}")
    for model in MODELS:
        for key in ERRORS:
            m, s = mean_std(runs, model, key)
            print(
                f"   {LABELS[model]:<46} {key:<9} "
                + " ".join(f"{v:.3f}±{e:.3f}" for v, e in zip(m, s, strict=True))
            )

    print("\n== verdict (mean ± std over seeds; differences are paired by seed)")
    verdicts = {}
    metrics = (
        ("own_fwd_sum", "accumulated error along own rollouts Σ_t E_{h~p_model} KL(p_true‖p_model)"),
        ("kl_model_true", "KL(p_model‖p_true) (= Σ own-fed reverse)"),
        ("kl_true_model", "KL(p_true‖p_model) (= Σ data-fed forward)"),
    )
    for model, base in (("gan_loop", "bc"), ("gan_fixed_point", "bc"), ("gan_fixed_point", "bc_on_star")):
        for key, what in metrics:
            line, numbers = verdict_line(runs, model, key, what, base)
            verdicts[f"{model}/{base}/{key}"] = numbers
            print(line)
    for r in runs:
        traj = r["trajectory"]
        kls = np.array([h["kl_model_true"] for h in traj])
        best = int(kls.argmin())
        print(
            f"adversarial loop, seed {r['seed']}: KL(p_model‖p_true) from "
            f"{r['pretrained']['kl_model_true']:.3f} (pretrained start) to a minimum {kls[best]:.3f} at "
            f"round {traj[best]['round']}, {kls[-1]:.3f} at the end"
            + (" — diverged" if kls[-1] > 1.2 * kls[best] else "")
        )
    gap_last = {m: float(np.mean([r[m]["own_fwd"][-1] - r[m]["data_fwd"][-1] for r in runs])) for m in MODELS}
    print(
        "own − data forward error at the last step (cascading signature): "
        + ", ".join(f"{LABELS[m]} {g:+.3f}" for m, g in gap_last.items())
    )

    figure = out_dir / "cascading_errors.png"
    plot(runs, figure, args.horizon)
    runtime = time.perf_counter() - start

    def plain(x):
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, list):
            return [plain(v) for v in x]
        return x.tolist() if isinstance(x, np.ndarray) else x

    (out_dir / "results.json").write_text(
        json.dumps(
            {"args": vars(args), "runs": plain(runs), "verdicts": verdicts, "runtime_s": runtime}, indent=1
        )
    )
    print(f"\nwrote {figure} and {out_dir / 'results.json'} ({runtime:.1f} s)")
    return {
        "figures": [figure],
        "runs": runs,
        "verdicts": verdicts,
        "chain_rule_max": chain,
        "runtime_s": runtime,
    }


if __name__ == "__main__":
    main()
