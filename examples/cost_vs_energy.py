"""Learned EB-SeqGAN energy vs the exact MaxEnt IRL cost, sequence by sequence.

The paper's central claim (section 4) is that EB-SeqGAN is maximum-entropy imitation learning:
with an energy D(S) = θ·f(S) and ψ = −H(p_G), the discriminator learns the MaxEnt cost and the
generator becomes the Gibbs distribution P_θ*(S) = exp(−c*(S))/Z. On a tiny built-in problem
(V = 4 items, T = 4 steps: all 256 sequences) this script

1. draws training sequences from a hidden random Gibbs model (``gan_equiv.train.problems.gibbs_problem``);
2. fits the exact MaxEnt cost c*(S) = θ*·f(S) to them (``maxent_il.fit_maxent``, eq. 15);
3. trains EB-SeqGAN on the same sequences (``gan_equiv.train.trainer.Trainer``: MLE pretraining, energy
   pretraining with (3), adversarial rounds with the policy gradient (14));
4. plots, over every sequence, the learned energy D(S) against c*(S) after the best affine
   alignment (energies are defined up to a constant), coloured by the data probability, with the
   Pearson and Spearman correlations in the title; and p_G(S) against P_θ*(S).

How to read it: points on the diagonal of the left panel mean the discriminator has learned the
IRL cost; points on the diagonal of the right panel mean the generator samples from the MaxEnt
model. Sequences of tiny data probability (pale) are seen rarely in training, so they scatter most.

    python examples/cost_vs_energy.py            # about a minute on a laptop CPU
    python examples/cost_vs_energy.py --fast     # a few seconds (smoke test; rough agreement)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from gan_equiv.train.config import apply_overrides, tiny_exact_preset
from gan_equiv.train.experiment import prepare_run
from gan_equiv.train.trainer import Trainer
from maxent_il.divergences import energy_cost_alignment, exact_divergences


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="few rounds: a smoke test in seconds")
    parser.add_argument("--out-dir", default="outputs/cost_vs_energy", help="folder of the figure and JSON")
    parser.add_argument("--seed", type=int, default=0, help="seed of the truth, the data and the run")
    parser.add_argument("--rounds", type=int, default=None, help="adversarial rounds (default 1000; 60 fast)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest
    out_dir = Path(args.out_dir)
    rounds = args.rounds if args.rounds is not None else (60 if args.fast else 1000)
    overrides: dict[str, object] = {
        "seed": args.seed,
        "adversarial_rounds": rounds,
        "out_dir": str(out_dir / "run"),
        "log_every": max(1, rounds // 10),
        "eval_every": max(1, rounds // 10),
        "checkpoint_every": 0,
        "progress": True,
    }
    if args.fast:
        overrides.update({"pretrain_g_epochs": 3, "pretrain_d_steps": 60, "n_rollouts": 4, "batch_size": 64})
    config = apply_overrides(tiny_exact_preset(), overrides)

    start = time.perf_counter()
    setup = prepare_run(config)  # data + the exact MaxEnt cost c*(S) fitted to it
    problem, c_star = setup.problem, setup.reference_cost
    print(f"problem: {setup.description}; V={config.n_items}, T={config.horizon}, {config.n_train} sequences")
    trainer = Trainer(config, setup.train_data, evaluator=setup.evaluator)
    trainer.fit()

    seqs = torch.as_tensor(problem.space.all_sequences())
    with torch.no_grad():
        trainer.energy.eval()
        energy = trainer.energy(seqs).double().numpy()  # D(S), (V^T,)
        log_pg = trainer.policy.all_log_probs().double().numpy()  # log p_G(S), (V^T,)
    log_p_star = -c_star - np.logaddexp.reduce(-c_star)  # log P_θ*(S)
    p_data = problem.probabilities
    align = energy_cost_alignment(energy, c_star, weights=p_data)
    to_data = exact_divergences(problem.log_probs, log_pg)
    to_maxent = exact_divergences(log_p_star, log_pg)
    wall = time.perf_counter() - start

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    aligned = align.scale * energy + align.offset
    order = np.argsort(p_data)  # draw likely sequences on top
    sc = axes[0].scatter(c_star[order], aligned[order], c=p_data[order], cmap="viridis", s=18, norm="log")
    lims = [min(c_star.min(), aligned.min()), max(c_star.max(), aligned.max())]
    axes[0].plot(lims, lims, "k--", lw=1, label="y = x")
    axes[0].set_xlabel("exact MaxEnt IRL cost c*(S) = θ*·f(S)")
    axes[0].set_ylabel(f"learned energy, aligned: {align.scale:.3g}·D(S) {align.offset:+.3g}")
    axes[0].set_title(f"energy vs cost: Pearson {align.pearson:.4f}, Spearman {align.spearman:.4f}")
    axes[0].legend(loc="upper left")
    fig.colorbar(sc, ax=axes[0], label="data probability p_data(S)")
    axes[1].scatter(
        np.exp(log_p_star[order]), np.exp(log_pg[order]), c=p_data[order], cmap="viridis", s=18, norm="log"
    )
    lo = min(np.exp(log_p_star).min(), np.exp(log_pg).min())
    axes[1].plot([lo, 1], [lo, 1], "k--", lw=1)
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("MaxEnt model P_θ*(S)")
    axes[1].set_ylabel("EB-SeqGAN generator p_G(S)")
    axes[1].set_title(f"generator vs MaxEnt model: KL(P*‖p_G) = {to_maxent.kl_pq:.4f} nats")
    fig.suptitle(
        f"EB-SeqGAN vs exact MaxEnt IRL on all {problem.space.size} sequences "
        f"(V={config.n_items}, T={config.horizon}, {rounds} rounds, seed {args.seed})"
    )
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "cost_vs_energy.png"
    fig.savefig(png, dpi=120)
    plt.close(fig)

    results = {
        "pearson": align.pearson,
        "spearman": align.spearman,
        "aligned_rmse": align.rmse,
        "kl_data_model": to_data.kl_pq,
        "kl_model_data": to_data.kl_qp,
        "kl_maxent_model": to_maxent.kl_pq,
        "kl_data_maxent": float(exact_divergences(problem.log_probs, log_p_star).kl_pq),
        "wall_s": wall,
    }
    for key, value in results.items():
        print(f"{key:>16}: {value:.6g}")
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {png}")
    return results


if __name__ == "__main__":
    main()
