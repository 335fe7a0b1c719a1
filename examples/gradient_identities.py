"""The generator gradient of EB-SeqGAN, line by line (eqs. 9–14, 5), exactly and by Monte-Carlo.

The generator minimizes J = E_{p_G}[D(S) + w·log p_G(S)] (eq. 4 with ψ = −w·H, w = 1 in the paper).
Section 3 rewrites ∇J in five steps, (10)–(14), and identifies (14) with SeqGAN's policy gradient,
eq. (5). On a tiny problem (V = 3 items, horizon T = 3: 27 sequences) every line is computed exactly
by enumeration in float64 (``gan_equiv.exact.gradients.gradient_lines``), for a GRU policy and for a
tabular policy, both against a linear energy D(S) = θ·f(S) with random θ.

The figure ``gradient_identities.png`` has two panels.

Left — the derivation is exact. Bars (log scale) give ‖line − line (9)‖_∞, where line (9) is autograd
of the enumerated objective. Lines (10)–(14) and eq. (5) *corrected* (expectation over the history
only, Σ over s_t) sit at float64 rounding, ~1e-16 (a bar drawn at the floor means exactly 0); the
dotted line is machine ε·‖∇J‖_∞. Eq. (5) *as printed* (∇p_G inside an expectation over s_t as
well) is off by a fraction of ‖∇J‖ itself: it is a different vector (docs/errata.md, entry 1).

Right — the Monte-Carlo estimators. Root-mean-square error √(mean_r ‖ĝ_n − ∇J‖²) over R seeded
repetitions, against the number n of sampled sequences (log–log), for the estimator of (14) with
the full return Q and with reward-to-go, and for eq. (5) as printed — all with K rollouts per prefix
(``gan_equiv.train.rollouts``). The unbiased estimators follow σ/√n (dotted lines: slope −½ fitted through
their points); reward-to-go has the smaller σ. Eq. (5) as printed flattens at its bias, the exact
‖E ĝ − ∇J‖ (dashed grey line): more samples do not help.

Run: ``python examples/gradient_identities.py`` (about 20 s on one CPU thread); ``--fast`` is a smoke test.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from gan_equiv.exact.gradients import gradient_lines
from gan_equiv.exact.policy_gradients import mc_policy_gradient, mc_policy_gradient_eq5_as_printed
from gan_equiv.models.energies import LinearEnergy
from gan_equiv.models.policies import GRUPolicy, SequencePolicy, TabularPolicy
from maxent_il.features import StateActionFeatures
from maxent_il.space import SequenceSpace

#: The lines that must equal line (9), then the one that must not; with their axis labels.
LINE_LABELS: dict[str, str] = {
    "line10": "(10)",
    "line11": "(11)",
    "line12": "(12)",
    "line13": "(13)",
    "line14": "(14)",
    "eq5_corrected": "(5)\ncorrected",
    "eq5_printed": "(5)\nas printed",
}
#: Monte-Carlo estimators of ∇J: name → (legend label, colour).
ESTIMATORS: dict[str, tuple[str, str]] = {
    "eq14_full": ("eq. (14), full return Q", "tab:blue"),
    "eq14_reward_to_go": ("eq. (14), reward-to-go", "tab:green"),
    "eq5_printed": ("eq. (5) as printed", "tab:red"),
}
#: Where a bar of exactly zero error is drawn on the log axis.
ZERO_FLOOR = 1e-18


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-items", type=int, default=3, help="V")
    parser.add_argument("--horizon", type=int, default=3, help="T")
    parser.add_argument("--embed-dim", type=int, default=4, help="GRU item embedding width")
    parser.add_argument("--hidden-dim", type=int, default=8, help="GRU hidden state width")
    parser.add_argument("--entropy-weight", type=float, default=1.0, help="w in ψ = −w·H (1 = the paper)")
    parser.add_argument("--n-rollouts", type=int, default=1, help="K rollouts per prefix for Q̂")
    parser.add_argument(
        "--sample-sizes",
        type=int,
        nargs="+",
        default=[1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000],
        help="numbers n of sampled sequences per gradient estimate",
    )
    parser.add_argument("--repetitions", type=int, default=20, help="seeded estimates per n")
    parser.add_argument("--seed", type=int, default=0, help="seed of the policy, the energy and the draws")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is fastest here)")
    parser.add_argument("--out-dir", default="outputs/gradient_identities", help="folder of the figure")
    parser.add_argument("--fast", action="store_true", help="fewer sizes and repetitions: seconds")
    args = parser.parse_args(argv)
    if args.fast:
        args.sample_sizes = [1, 10, 100, 1000]
        args.repetitions = 6
    return args


def make_problem(args: argparse.Namespace) -> tuple[dict[str, SequencePolicy], LinearEnergy]:
    """A GRU and a tabular float64 policy, and the linear energy D = θ·f (``last`` features)."""
    V, T = args.n_items, args.horizon
    torch.manual_seed(args.seed)  # the GRU's default initialization
    gru = GRUPolicy(V, T, embed_dim=args.embed_dim, hidden_dim=args.hidden_dim, dtype=torch.float64)
    table = TabularPolicy(V, T, init_scale=1.0, generator=torch.Generator().manual_seed(args.seed))
    features = StateActionFeatures(SequenceSpace(V, T), "last")
    theta = np.random.default_rng(args.seed).normal(size=features.dim)
    return {"GRU policy": gru, "tabular policy": table}, LinearEnergy(features, theta=theta)


def estimate(name: str, policy: SequencePolicy, energy: LinearEnergy, n: int, args, gen) -> torch.Tensor:
    """One Monte-Carlo estimate of ∇J from n sampled sequences (flat float64 vector)."""
    kw = dict(n_rollouts=args.n_rollouts, entropy_weight=args.entropy_weight, generator=gen)
    if name == "eq5_printed":
        return mc_policy_gradient_eq5_as_printed(policy, energy, n, **kw)
    mode = "full" if name == "eq14_full" else "reward_to_go"
    return mc_policy_gradient(policy, energy, n, mode=mode, **kw)


def mc_errors(policy, energy, exact: torch.Tensor, args) -> dict[str, np.ndarray]:
    """RMS over repetitions of ‖ĝ_n − ∇J‖_2 for every estimator and sample size: name → (len(sizes),)."""
    out = {}
    for e, name in enumerate(ESTIMATORS):
        rmse = []
        for i, n in enumerate(args.sample_sizes):  # loops over sizes and repetitions only
            sq = []
            for r in range(args.repetitions):
                seed = int(np.random.SeedSequence([args.seed, e, i, r]).generate_state(1)[0])
                g_hat = estimate(name, policy, energy, n, args, torch.Generator().manual_seed(seed))
                sq.append(float((g_hat - exact).square().sum()))
            rmse.append(np.sqrt(np.mean(sq)))
        out[name] = np.array(rmse)
    return out


def loglog_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def plot(line_errs, eps_level, sizes, rmse, sigmas, bias, args, path: Path) -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 5.2))
    names = list(LINE_LABELS)
    x = np.arange(len(names))
    width = 0.8 / len(line_errs)
    for j, (pol, errs) in enumerate(line_errs.items()):
        vals = np.array([errs[k] for k in names])
        bars = ax1.bar(
            x + (j - (len(line_errs) - 1) / 2) * width,
            np.maximum(vals, ZERO_FLOOR),
            width,
            label=pol,
            color=["tab:blue", "tab:orange"][j % 2],
            edgecolor="black",
            linewidth=0.5,
        )
        for bar, v in zip(bars, vals, strict=True):
            ax1.annotate(
                "0" if v == 0 else f"{v:.0e}",
                (bar.get_x() + bar.get_width() / 2, max(v, ZERO_FLOOR)),
                ha="center",
                va="bottom",
                fontsize=7,
                xytext=(0, 2),
                textcoords="offset points",
            )
    ax1.axhline(eps_level, color="grey", ls=":", label="machine ε · ‖∇J‖$_∞$")
    ax1.set_yscale("log")
    ax1.set_ylim(ZERO_FLOOR / 3, 10)
    ax1.set_xticks(x, [LINE_LABELS[k] for k in names])
    ax1.set_xlabel("line of the derivation (paper eq. number)")
    ax1.set_ylabel("‖line − line (9)‖$_∞$  (max-abs error)")
    ax1.set_title(
        f"Each line vs line (9) = autograd of E[D + w log p$_G$]\n"
        f"V={args.n_items}, T={args.horizon}, w={args.entropy_weight:g}, linear energy, float64"
    )
    ax1.legend(loc="upper left", fontsize=8)

    n = np.asarray(sizes, dtype=float)
    for name, (label, color) in ESTIMATORS.items():
        ax2.loglog(n, rmse[name], "o-", color=color, label=label)
        if name in sigmas:
            ax2.loglog(n, sigmas[name] / np.sqrt(n), ":", color=color, label=f"σ/√n, σ = {sigmas[name]:.3g}")
    ax2.axhline(bias, color="grey", ls="--", label=f"bias of eq. (5) as printed = {bias:.3g}")
    ax2.set_xlabel("number of sampled sequences n")
    ax2.set_ylabel("RMS over repetitions of ‖ĝ$_n$ − ∇J‖$_2$")
    ax2.set_title(
        f"Monte-Carlo gradient error (GRU policy, K={args.n_rollouts} rollouts/prefix, "
        f"{args.repetitions} seeds per n)"
    )
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, object]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    policies, energy = make_problem(args)

    # --- panel 1: every line of (9)–(14) and (5), exact --------------------------------------------
    line_errs: dict[str, dict[str, float]] = {}
    grads = {}
    print(f"‖line − line (9)‖_∞ on V={args.n_items}, T={args.horizon}, w={args.entropy_weight:g}:")
    print(f"{'policy':<16}" + "".join(f"{LINE_LABELS[k].replace(chr(10), ' '):>16}" for k in LINE_LABELS))
    for pol_name, policy in policies.items():
        lines = gradient_lines(policy, energy, entropy_weight=args.entropy_weight)
        line_errs[pol_name] = lines.discrepancies()
        grads[pol_name] = lines
        print(f"{pol_name:<16}" + "".join(f"{line_errs[pol_name][k]:16.2e}" for k in LINE_LABELS))
    scale = max(float(g.line9.abs().max()) for g in grads.values())
    eps_level = float(np.finfo(np.float64).eps) * scale
    rel5 = {p: line_errs[p]["eq5_printed"] / float(grads[p].line9.abs().max()) for p in policies}
    max_line_error = max(errs[k] for errs in line_errs.values() for k in LINE_LABELS if k != "eq5_printed")
    print(
        f"max over lines (10)–(14), (5) corrected: {max_line_error:.2e}   "
        f"(machine ε·‖∇J‖_∞ = {eps_level:.2e})"
    )
    for p, r in rel5.items():
        print(f"eq. (5) as printed, {p}: ‖(5) − (9)‖_∞ / ‖(9)‖_∞ = {r:.3f}")

    # --- panel 2: Monte-Carlo estimators on the GRU policy ----------------------------------------
    policy = policies["GRU policy"]
    exact = grads["GRU policy"].line9
    bias = float((grads["GRU policy"].eq5_printed - exact).norm())
    rmse = mc_errors(policy, energy, exact, args)
    sizes = np.asarray(args.sample_sizes, dtype=float)
    sigmas = {k: float(np.sqrt(np.mean(rmse[k] ** 2 * sizes))) for k in ("eq14_full", "eq14_reward_to_go")}
    slopes = {k: loglog_slope(sizes, v) for k, v in rmse.items()}
    print(f"\n‖∇J‖_2 = {float(exact.norm()):.4f}; bias of eq. (5) as printed ‖E ĝ − ∇J‖_2 = {bias:.4f}")
    print(f"RMS ‖ĝ_n − ∇J‖_2 over {args.repetitions} repetitions (K = {args.n_rollouts}):")
    print(f"{'n':>8}" + "".join(f"{k:>20}" for k in ESTIMATORS))
    for i, n in enumerate(args.sample_sizes):
        print(f"{n:>8}" + "".join(f"{rmse[k][i]:20.4g}" for k in ESTIMATORS))
    print("log-log slopes: " + ", ".join(f"{k} {s:+.3f}" for k, s in slopes.items()) + "  (σ/√n: −0.5)")
    print("fitted σ: " + ", ".join(f"{k} {s:.4g}" for k, s in sigmas.items()))
    print(
        f"eq. (5) as printed at n = {args.sample_sizes[-1]}: "
        f"RMS / bias = {rmse['eq5_printed'][-1] / bias:.3f}"
    )

    png = out_dir / "gradient_identities.png"
    plot(line_errs, eps_level, args.sample_sizes, rmse, sigmas, bias, args, png)
    runtime = time.perf_counter() - start
    print(f"\nwrote {png} in {runtime:.1f} s")
    return {
        "png": str(png),
        "line_errors": line_errs,
        "max_line_error": max_line_error,
        "eq5_printed_relative_error": rel5,
        "gradient_scale": scale,
        "sample_sizes": list(args.sample_sizes),
        "rmse": {k: v.tolist() for k, v in rmse.items()},
        "slopes": slopes,
        "sigmas": sigmas,
        "eq5_bias": bias,
        "runtime_s": runtime,
    }


if __name__ == "__main__":
    main()
