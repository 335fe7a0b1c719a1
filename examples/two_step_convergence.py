"""The two-step procedure (20)/(21) against exact gradient ascent on the log-likelihood (15).

A tiny MaxEnt IRL problem: V = 3 items, horizon T = 3 (27 sequences), Markov state-action features
(``last``: previous item or start → next item, d = 12), and demonstrations drawn exactly from a
random "expert" Gibbs distribution P_θ*. Starting from θ_0 = 0, each method runs n iterations with
the same step size:

- exact ascent:   θ_{t+1} = θ_t + lr·∇LL(θ_t), eq. (15) computed exactly;
- exact q-step:   q_t = P_θt (the minimizer of 20), then one c-step θ_{t+1} = θ_t + lr·(16);
- inexact q-step: k gradient steps on (20) over a tabular autoregressive q, warm-started from
  q_{t−1} (uniform = P_θ0 at t = 0), then the same c-step; k ∈ {1, 5, 25}.

The figure ``two_step_convergence.png`` has eight panels.

Top row: (a) a few coordinates of θ_t (labelled by their transition) — the exact q-step (markers)
lies on exact ascent (black); the inexact ones leave it (q lags behind P_θ, so each c-step uses the
moments E_q f of an older θ — a stale gradient that overshoots like momentum when k is small) and
rejoin it as q catches up; (b) the exact LL(θ_t), with the L-BFGS optimum as a dotted line (the
stale steps can even end slightly *ahead* of exact ascent at the same iteration);
(c) |LL(θ_t) − LL(θ_t^ascent)| on a log axis — the exact q-step sits at rounding level (~1e-15),
the inexact ones decrease with k; (d) KL(q_t‖P_θt) before the c-step — how far the q-step left q
from P_θt (0 for the exact q-step).

Bottom row: (e–g) for each k, the gradient gap ‖(16) − (15)‖_∞ = ‖E_q f − E_P f‖_∞ per iteration
with its two bounds, ‖f‖_∞·2TV(q_t, P_θt) and the Pinsker bound ‖f‖_∞·√(2 KL(q_t‖P_θt))
(claim E5; ‖f‖_∞ = T − 1 = 2 for ``last`` features): the gap always lies below both; (h) the
distance of the iterates from exact ascent, ‖θ_t − θ_t^ascent‖_∞. Values drawn at the bottom
edge of a log axis are exactly 0.

A table of final LL, KL and gap per variant is printed. Run:
``python examples/two_step_convergence.py`` (a few seconds); ``--fast`` is a smoke test.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from maxent_il.features import StateActionFeatures
from maxent_il.gibbs import GibbsModel
from maxent_il.likelihood import demo_moments
from maxent_il.solver import fit_maxent
from maxent_il.space import SequenceSpace
from maxent_il.two_step import exact_ll_ascent, two_step

#: Where an exact zero is drawn on a log axis.
ZERO_FLOOR = 1e-18
COLORS = ["tab:red", "tab:orange", "tab:blue", "tab:green", "tab:brown", "tab:pink"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-items", type=int, default=3, help="V")
    parser.add_argument("--horizon", type=int, default=3, help="T")
    parser.add_argument(
        "--state", choices=["last", "time_last", "history"], default="last", help="state of the features f"
    )
    parser.add_argument("--n-demos", type=int, default=100, help="demonstrations drawn from the expert")
    parser.add_argument("--expert-scale", type=float, default=1.0, help="θ* ~ N(0, scale²)")
    parser.add_argument("--n-iters", type=int, default=200, help="iterations of every method")
    parser.add_argument("--lr", type=float, default=0.5, help="c-step / ascent step size")
    parser.add_argument("--q-lr", type=float, default=1.0, help="step size of the inexact q-steps")
    parser.add_argument(
        "--ks", type=int, nargs="+", default=[1, 5, 25], help="q gradient steps per iteration"
    )
    parser.add_argument("--l2", type=float, default=0.0, help="λ of −(λ/2)‖θ‖² (0 = the paper)")
    parser.add_argument("--n-coords", type=int, default=3, help="θ coordinates drawn in panel (a)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the expert and the demos")
    parser.add_argument("--out-dir", default="outputs/two_step_convergence", help="folder of the figure")
    parser.add_argument("--fast", action="store_true", help="fewer iterations: seconds")
    args = parser.parse_args(argv)
    if args.fast:
        args.n_iters = 30
    return args


def make_problem(args: argparse.Namespace):
    """Features, demos from a random expert P_θ*, and their moments E_demo f."""
    features = StateActionFeatures(SequenceSpace(args.n_items, args.horizon), args.state)
    rng = np.random.default_rng(args.seed)
    theta_star = args.expert_scale * rng.normal(size=features.dim)
    demos = GibbsModel(features, theta_star).sample(args.n_demos, rng=rng)
    return features, demos, demo_moments(features, demos)


def optimum_ll(features, target, l2: float) -> float | None:
    """LL at the maximizer (L-BFGS), or None when it does not exist (an unvisited feature, λ = 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_maxent(features, target_moments=target, l2=l2)
    return fit.log_likelihood if fit.converged and (l2 > 0 or len(fit.unused_features) == 0) else None


def gap_ratio(gap: np.ndarray, bound: np.ndarray) -> float:
    """max_t gap_t / bound_t over the iterations where the bound is above rounding (nan if none)."""
    keep = bound > 1e-12
    return float(np.max(gap[keep] / bound[keep])) if keep.any() else float("nan")


def bounds_hold(res, tol: float = 1e-12) -> bool:
    """gap ≤ ‖f‖_∞·2TV ≤ ‖f‖_∞·√(2KL) at every iteration, up to rounding ``tol``."""
    return bool(
        np.all(res.gradient_gap <= res.tv_bound + tol) and np.all(res.tv_bound <= res.pinsker_bound + tol)
    )


def floor(x: np.ndarray) -> np.ndarray:
    return np.maximum(np.asarray(x, dtype=float), ZERO_FLOOR)


def plot(features, ascent, runs: dict, ll_star, args, path: Path) -> None:
    fig, axes = plt.subplots(2, 4, figsize=(21, 9.5))
    (ax_th, ax_ll, ax_dll, ax_kl), bottom = axes
    it_all = np.arange(args.n_iters + 1)  # θ_0 … θ_n, LL(θ_0) … LL(θ_n)
    it_step = np.arange(args.n_iters)  # q-step t = 0 … n−1
    colors = {name: COLORS[i % len(COLORS)] for i, name in enumerate(runs)}
    colors["exact q-step"] = "tab:purple"
    mark = max(1, args.n_iters // 15)

    # (a) θ trajectories
    order = np.argsort(ascent.thetas[-1])  # spread over the final values: min, …, max
    coords = order[np.linspace(0, len(order) - 1, min(args.n_coords, len(order))).round().astype(int)]
    for j, i in enumerate(coords):
        ax_th.plot(
            it_all, ascent.thetas[:, i], color="black", lw=2.5, label="exact ascent (15)" if j == 0 else None
        )
        for name, res in runs.items():
            style = (
                dict(ls="none", marker="o", markevery=mark, ms=5) if name == "exact q-step" else dict(ls="--")
            )
            ax_th.plot(it_all, res.thetas[:, i], color=colors[name], label=name if j == 0 else None, **style)
        ax_th.annotate(
            f"θ[{features.name(int(i))}]",
            (it_all[-1], ascent.thetas[-1, i]),
            xytext=(-4, 4),
            textcoords="offset points",
            ha="right",
            fontsize=8,
        )
    ax_th.set(
        xlabel="iteration t",
        ylabel="coordinate of θ$_t$",
        title=f"(a) θ trajectories ({args.n_coords} coordinates)",
    )
    ax_th.legend(fontsize=8)

    # (b) LL, (c) |LL − LL_ascent|
    ax_ll.plot(it_all, ascent.log_likelihoods, color="black", lw=2.5, label="exact ascent (15)")
    for name, res in runs.items():
        style = dict(ls="none", marker="o", markevery=mark, ms=5) if name == "exact q-step" else dict(ls="--")
        ax_ll.plot(it_all, res.exact_ll, color=colors[name], label=name, **style)
        ax_dll.semilogy(
            it_all, floor(np.abs(res.exact_ll - ascent.log_likelihoods)), color=colors[name], label=name
        )
    if ll_star is not None:
        ax_ll.axhline(ll_star, color="grey", ls=":", label=f"optimum LL = {ll_star:.4f}")
    ax_ll.set(
        xlabel="iteration t",
        ylabel="LL(θ$_t$)  (mean log P$_θ$ of the demos)",
        title="(b) exact log-likelihood",
    )
    ax_ll.legend(fontsize=8)
    ax_dll.set(
        xlabel="iteration t",
        ylabel="|LL(θ$_t$) − LL(θ$_t^{ascent}$)|",
        title="(c) distance from exact ascent in LL",
    )
    ax_dll.legend(fontsize=8)

    # (d) KL(q_t ‖ P_θt)
    for name, res in runs.items():
        ax_kl.semilogy(it_step, floor(res.kl), color=colors[name], label=name)
    ax_kl.set(xlabel="iteration t", ylabel="KL(q$_t$ ‖ P$_{θ_t}$)  [nats]", title="(d) KL after the q-step")
    ax_kl.legend(fontsize=8)

    # (e–g) gradient gap and its bounds, one panel per inexact variant
    inexact = [name for name in runs if name != "exact q-step"]
    for ax, name in zip(bottom[:3], inexact, strict=False):
        res, later = runs[name], slice(1, None)  # t = 0: q_0 = uniform = P_θ0, all three are 0
        gap, tv, pinsker = res.gradient_gap[later], res.tv_bound[later], res.pinsker_bound[later]
        ax.semilogy(it_step[later], floor(gap), color=colors[name], lw=2, label="gap ‖(16) − (15)‖$_∞$")
        ax.semilogy(it_step[later], floor(tv), color="black", ls="--", label="‖f‖$_∞$·2TV(q$_t$, P$_{θ_t}$)")
        ax.semilogy(
            it_step[later], floor(pinsker), color="grey", ls=":", lw=2, label="‖f‖$_∞$·√(2KL) (Pinsker)"
        )
        ax.set(
            xlabel="iteration t  (t ≥ 1; at t = 0 q$_0$ = P$_{θ_0}$ and all are 0)",
            ylabel="gradient gap and its bounds",
            title=f"({'efg'[inexact.index(name)]}) gradient gap, {name}",
        )
        ax.legend(fontsize=8)
    for ax in bottom[len(inexact) : 3]:
        ax.set_visible(False)

    # (h) ‖θ_t − θ_t^ascent‖_∞
    ax_d = bottom[3]
    for name, res in runs.items():
        ax_d.semilogy(
            it_all, floor(np.abs(res.thetas - ascent.thetas).max(axis=1)), color=colors[name], label=name
        )
    ax_d.set(
        xlabel="iteration t",
        ylabel="‖θ$_t$ − θ$_t^{ascent}$‖$_∞$",
        title="(h) distance from exact ascent in θ",
    )
    ax_d.legend(fontsize=8)

    fig.suptitle(
        f"Two-step procedure (20)/(21) vs exact ascent on LL (15): V={args.n_items}, T={args.horizon}, "
        f"'{args.state}' features (d={features.dim}), {args.n_demos} demos, lr={args.lr:g}, "
        f"q-lr={args.q_lr:g}; values at the bottom of a log axis are 0"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, object]:
    args = parse_args(argv)
    start = time.perf_counter()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    features, demos, target = make_problem(args)
    ll_star = optimum_ll(features, target, args.l2)

    timings = {}
    t0 = time.perf_counter()
    ascent = exact_ll_ascent(features, target, n_iters=args.n_iters, lr=args.lr, l2=args.l2)
    timings["exact ascent"] = time.perf_counter() - t0
    runs = {}
    common = dict(n_iters=args.n_iters, lr=args.lr, l2=args.l2)
    for name, kw in [("exact q-step", {})] + [
        (f"inexact q-step, k={k}", dict(q_step="inexact", k=k, q_lr=args.q_lr)) for k in args.ks
    ]:
        t0 = time.perf_counter()
        runs[name] = two_step(features, demos, **common, **kw)
        timings[name] = time.perf_counter() - t0

    exact = runs["exact q-step"]
    ll_diff = float(np.abs(exact.exact_ll - ascent.log_likelihoods).max())
    theta_diff = float(np.abs(exact.thetas - ascent.thetas).max())
    table: dict[str, dict[str, float]] = {
        "exact ascent": {
            "initial_ll": float(ascent.log_likelihoods[0]),
            "final_ll": float(ascent.log_likelihoods[-1]),
            "runtime_s": timings["exact ascent"],
        }
    }
    for name, res in runs.items():
        table[name] = {
            "final_ll": float(res.exact_ll[-1]),
            "final_kl": float(res.kl[-1]),
            "final_gap": float(res.gradient_gap[-1]),
            "mean_kl": float(res.kl.mean()),
            "max_gap": float(res.gradient_gap.max()),
            "max_gap_over_tv_bound": gap_ratio(res.gradient_gap, res.tv_bound),
            "bounds_hold": bounds_hold(res),
            "max_tv_minus_pinsker": float(np.max(res.tv_bound - res.pinsker_bound)),
            "max_gap_minus_tv_bound": float(np.max(res.gradient_gap - res.tv_bound)),
            "max_ll_dev": float(np.abs(res.exact_ll - ascent.log_likelihoods).max()),
            "max_theta_dev": float(np.abs(res.thetas - ascent.thetas).max()),
            "runtime_s": timings[name],
        }

    print(
        f"V={args.n_items}, T={args.horizon}, '{args.state}' features (d={features.dim}), "
        f"{args.n_demos} demos, {args.n_iters} iterations, lr={args.lr:g}, q-lr={args.q_lr:g}, l2={args.l2:g}"
    )
    optimum = "does not exist (λ = 0, unvisited feature)" if ll_star is None else f"{ll_star:.8f}"
    print(f"LL at the optimum (L-BFGS): {optimum}")
    print(f"exact q-step vs exact ascent: max |ΔLL| = {ll_diff:.2e}, max |Δθ| = {theta_diff:.2e}\n")
    columns = [
        ("final LL", "final_ll", "12.8f"),
        ("final KL", "final_kl", "10.2e"),
        ("final gap", "final_gap", "10.2e"),
        ("mean KL", "mean_kl", "10.2e"),
        ("max gap/TVb", "max_gap_over_tv_bound", "12.3f"),
        ("bounds", "bounds_hold", "7"),
        ("max |ΔLL|", "max_ll_dev", "10.2e"),
        ("max |Δθ|", "max_theta_dev", "10.2e"),
        ("time s", "runtime_s", "7.2f"),
    ]
    header = f"{'variant':<22}" + "".join(f" {title:>{fmt.split('.')[0]}}" for title, _, fmt in columns)
    print(header)
    print("-" * len(header))
    for name, row in table.items():
        cells = []
        for _, key, fmt in columns:
            width = fmt.split(".")[0]
            if key not in row:
                cells.append(f" {'':>{width}}")
            elif key == "bounds_hold":
                cells.append(f" {'ok' if row[key] else 'FAIL':>{width}}")
            else:
                cells.append(f" {row[key]:{fmt}}")
        print(f"{name:<22}" + "".join(cells))
    print(
        "gap: ‖(16) − (15)‖_∞ at the last q-step. gap/TVb: max over iterations of gap / (‖f‖_∞·2TV) where\n"
        "that bound exceeds 1e-12. bounds: gap ≤ ‖f‖_∞·2TV ≤ ‖f‖_∞·√(2KL) at every iteration.\n"
        "Δ: difference from exact ascent, max over all iterations."
    )

    png = out_dir / "two_step_convergence.png"
    plot(features, ascent, runs, ll_star, args, png)
    runtime = time.perf_counter() - start
    print(f"\nwrote {png} in {runtime:.1f} s")
    return {
        "png": str(png),
        "exact_q_step_ll_diff": ll_diff,
        "exact_q_step_theta_diff": theta_diff,
        "optimum_ll": ll_star,
        "ks": list(args.ks),
        "n_iters": args.n_iters,
        "variants": table,
        "gaps": {name: res.gradient_gap.tolist() for name, res in runs.items()},
        "tv_bounds": {name: res.tv_bound.tolist() for name, res in runs.items()},
        "pinsker_bounds": {name: res.pinsker_bound.tolist() for name, res in runs.items()},
        "runtime_s": runtime,
    }


if __name__ == "__main__":
    main()
