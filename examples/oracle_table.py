"""The SeqGAN synthetic-oracle table: MLE and the GAN ⇄ IRL family on equal terms.

An LSTM oracle (SeqGAN's published one with ``--oracle-params save/target_params_py3.pkl``, else
a random one of SeqGAN's sizes) generates the training sequences. Every variant starts from the
*same* MLE-pretrained generator (behaviour cloning), then pretrains its discriminator and runs the
same number of adversarial rounds with the same K, batch, optimizers, estimator options and seed:

- ``mle``               — the pretrained generator, no adversarial training;
- ``seqgan``            — SeqGAN: classifier D, reward D(S) through the rollouts of eq. (14);
- ``ebseqgan``          — EB-SeqGAN, the paper: energy D, loss (3), ψ = −H (w = 1), rollout Q;
- ``ebseqgan_analytic`` — the same objective with the analytic-entropy (low-variance) estimator;
- ``gan_gcl``           — GAN-GCL: D = ẽ/(ẽ + p_G) with a learned cost and log Z;
- ``constant_reward``   — D ≡ 0 in the reward (w = 1): what the generator does with no signal
  from the discriminator (the control);
- ``ebseqgan_w0``       — EB-SeqGAN without the entropy term (on request).

Reported for each: NLL-oracle (SeqGAN's metric: per-token NLL of generated samples under the
oracle; it rewards collapse), NLL-test (per-token NLL of held-out oracle samples under the
generator), entropy per token of p_G, distinct-2, the discriminator's last separation (d_acc,
d_gap) and wall time. The oracle's entropy rate is printed as the reference.

``--init seqgan`` initializes every generator parameter N(0, 0.1) as SeqGAN's code does (PyTorch's
defaults draw embeddings N(0, 1)); with it and ``--cell lstm`` MLE pretraining tracks SeqGAN's
published log. SeqGAN's full size and schedule:
``python examples/oracle_table.py --oracle-params target_params_py3.pkl --n-items 5000 --cell lstm
--init seqgan --mle-epochs 120 --rounds 200 --d-schedule seqgan``. The default is a reduced size
that fits 2 CPU cores; ``--fast`` is a smoke test.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from gan_equiv.models.builders import build_generator
from gan_equiv.models.initialization import normal_init_
from gan_equiv.train.config import apply_overrides, seqgan_oracle_preset
from gan_equiv.train.experiment import prepare_run
from gan_equiv.train.oracle_metrics import entropy_per_token
from gan_equiv.train.trainer import Trainer

VARIANTS: dict[str, dict[str, object]] = {
    "mle": {"adversarial_rounds": 0, "pretrain_d_steps": 0},
    "seqgan": {"objective": "seqgan"},
    "ebseqgan": {"objective": "ebgan", "entropy_weight": 1.0},
    "ebseqgan_analytic": {"objective": "ebgan", "generator_estimator": "analytic_entropy"},
    "gan_gcl": {"objective": "gan_gcl"},
    "constant_reward": {"objective": "ebgan", "entropy_weight": 1.0, "constant_reward": True},
    "ebseqgan_w0": {"objective": "ebgan", "entropy_weight": 0.0},
}
DEFAULT_VARIANTS = ["mle", "seqgan", "ebseqgan", "ebseqgan_analytic", "gan_gcl", "constant_reward"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-items", type=int, default=1000, help="V, the oracle's items")
    parser.add_argument("--horizon", type=int, default=20, help="T, sequence length")
    parser.add_argument("--n-train", type=int, default=10000, help="training sequences drawn from the oracle")
    parser.add_argument("--n-test", type=int, default=2000, help="held-out sequences for NLL-test")
    parser.add_argument("--mle-epochs", type=int, default=30, help="MLE pretraining epochs of G")
    parser.add_argument("--d-pretrain", type=int, default=50, help="energy pretraining steps with loss (3)")
    parser.add_argument("--rounds", type=int, default=30, help="adversarial rounds")
    parser.add_argument(
        "--n-rollouts", type=int, default=16, help="K Monte-Carlo rollouts per prefix (eq. 14)"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[88], help="one run of every variant per seed"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        default=DEFAULT_VARIANTS,
        help=f"rows of the table [default: {' '.join(DEFAULT_VARIANTS)}]",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads [default: torch's choice]"
    )
    parser.add_argument(
        "--reward-to-go", action="store_true", help="reward-to-go Q (the paper uses the full return)"
    )
    parser.add_argument("--baseline", action="store_true", help="subtract the leave-one-out batch mean of Q")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument(
        "--oracle-params", default="", help="SeqGAN's target_params_py3.pkl, to use its very oracle (V 5000)"
    )
    parser.add_argument(
        "--out-dir", default="outputs/oracle_table", help="folder of results.json and the runs"
    )
    parser.add_argument(
        "--cell", choices=("gru", "lstm"), default="gru", help="generator RNN cell (SeqGAN: lstm)"
    )
    parser.add_argument(
        "--init",
        choices=("default", "seqgan"),
        default="default",
        help="generator initialization: PyTorch's defaults, or N(0, 0.1) for every parameter as SeqGAN",
    )
    parser.add_argument(
        "--d-schedule",
        choices=("steps", "seqgan"),
        default="steps",
        help="discriminator steps per round: d_steps minibatches, or SeqGAN's pools of fresh samples",
    )
    parser.add_argument(
        "--d-pool",
        type=int,
        default=10_000,
        help="with --d-schedule seqgan: fresh generator samples per pool (SeqGAN: 10,000)",
    )
    parser.add_argument("--fast", action="store_true", help="tiny sizes: a smoke test in seconds")
    args = parser.parse_args(argv)
    if args.fast:
        args.n_items, args.horizon, args.n_train, args.n_test = 50, 8, 256, 128
        args.mle_epochs, args.d_pretrain, args.rounds, args.n_rollouts = 2, 2, 2, 2
    return args


def base_config(args: argparse.Namespace, seed: int, out_dir: Path):
    overrides: dict[str, object] = {
        "name": f"oracle_s{seed}",
        "n_items": args.n_items,
        "horizon": args.horizon,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "seed": seed,
        "device": args.device,
        "pretrain_g_epochs": args.mle_epochs,
        "pretrain_d_steps": args.d_pretrain,
        "adversarial_rounds": args.rounds,
        "n_rollouts": args.n_rollouts,
        "eval_every": 0,
        "checkpoint_every": 0,
        "log_every": 10,
        "progress": False,
        "out_dir": str(out_dir),
        "data_path": args.oracle_params,
        "reward_to_go": args.reward_to_go,
        "baseline": args.baseline,
        "generator.cell": args.cell,
        "d_schedule": args.d_schedule,
        "d_pool": args.d_pool,
    }
    if args.fast:
        overrides.update(
            {"energy.filter_sizes": "1,2,4", "energy.num_filters": "8,8,8", "energy.embed_dim": 8}
        )
    return apply_overrides(seqgan_oracle_preset(), overrides)


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out_root = Path(args.out_dir)
    results: list[dict[str, object]] = []
    for seed in args.seeds:
        config = base_config(args, seed, out_root / f"seed{seed}" / "mle")
        setup = prepare_run(config)
        rate = entropy_per_token(setup.oracle, 2000, torch.Generator().manual_seed(seed))
        print(
            f"seed {seed}: {setup.description}; {config.n_train} training sequences; oracle entropy rate "
            f"{rate.mean:.4f} ± {rate.stderr:.4f} nats/token (NLL-oracle and NLL-test of a perfect model)",
            flush=True,
        )
        start = time.perf_counter()
        torch.manual_seed(seed)
        policy = build_generator(config.generator, n_items=config.n_items, horizon=config.horizon)
        if args.init == "seqgan":
            normal_init_(policy, std=0.1)  # SeqGAN's code: every parameter N(0, 0.1)
        mle_config = apply_overrides(config, VARIANTS["mle"])
        mle = Trainer(mle_config, setup.train_data, evaluator=setup.evaluator, policy=policy)
        mle.fit()
        mle_time = time.perf_counter() - start
        for name in args.variants:
            start = time.perf_counter()
            last: dict[str, float] = {"d_acc": float("nan"), "d_gap": float("nan")}
            if name == "mle":
                trainer, extra_time = mle, mle_time
            else:
                variant = apply_overrides(
                    config, {**VARIANTS[name], "out_dir": str(out_root / f"seed{seed}" / name)}
                )
                trainer = Trainer(
                    variant, setup.train_data, evaluator=setup.evaluator, policy=copy.deepcopy(mle.policy)
                )
                trainer.progress.g_epochs = variant.pretrain_g_epochs  # start from the shared MLE model
                logged = trainer.fit()
                separation = [r for r in logged if "d_acc" in r]
                if separation:  # the discriminator's separation at its last logged round
                    last["d_acc"], last["d_gap"] = separation[-1]["d_acc"], separation[-1]["d_gap"]
                extra_time = mle_time + time.perf_counter() - start
            metrics = setup.evaluator(trainer)
            row = {"variant": name, "seed": seed, **metrics, **last, "wall_s_incl_mle": extra_time}
            results.append(row)
            print(
                "  "
                + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                flush=True,
            )
    print()
    header = (
        f"{'variant':<16} {'seed':>5} {'NLL-oracle':>11} {'NLL-test':>9} {'entropy/tok':>12} "
        f"{'distinct-2':>11} {'d_acc':>6} {'d_gap':>8} {'wall s':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['variant']:<16} {r['seed']:>5} {r['nll_oracle']:11.4f} {r['nll_test']:9.4f} "
            f"{r['entropy_per_token']:12.4f} {r['distinct_2']:11.4f} {r['d_acc']:6.3f} {r['d_gap']:8.3f} "
            f"{r['wall_s_incl_mle']:8.1f}"
        )
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / "results.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(f"\nwrote {out_root / 'results.json'}")
    return results


if __name__ == "__main__":
    main()
