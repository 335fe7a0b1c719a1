"""Command line: ``python -m gan_equiv verify | train``.

- ``verify`` runs the claim checks E1–E19 on seeded tiny problems, prints one row per
  (problem, claim) and exits with status 1 if any check fails.
- ``train --config FILE | --preset NAME [--resume [CKPT]] [--threads N] [--key value ...]`` runs
  EB-SeqGAN (Algorithm 1); any config key can be overridden (``--margin 5 --generator.hidden_dim 64
  --device cpu --out_dir runs/x``); a bad key or value exits with a one-line error. Under
  ``torchrun --nproc_per_node=N -m gan_equiv train …`` it trains data-parallel (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from gan_equiv.exact.claims import CHECKS, make_tiny_problem, run_all_checks
from gan_equiv.recsys.evaluate import add_evaluate_parser
from gan_equiv.train.presets import PRESETS


def _verify(args: argparse.Namespace) -> int:
    names = args.checks or list(CHECKS)
    header = (
        f"{'problem':<26} {'claim':<5} {'eq.':<18} {'value':>13} {'reference':>13} "
        f"{'error':>9} {'tol':>8}  ok"
    )
    print(header)
    print("-" * len(header))
    failures = 0
    start = time.perf_counter()
    for state in args.states:
        for seed in args.seeds:
            problem = make_tiny_problem(args.n_items, args.horizon, state=state, seed=seed)
            label = f"V={args.n_items} T={args.horizon} {state} s={seed}"
            for r in run_all_checks(problem, names=names):
                failures += not r.passed
                print(
                    f"{label:<26} {r.name:<5} {r.equation:<18} {r.value:13.6g} {r.reference:13.6g} "
                    f"{r.error:9.2e} {r.tol:8.0e}  {'yes' if r.passed else 'NO'}",
                    flush=True,
                )
    total = len(args.states) * len(args.seeds) * len(names)
    print(f"{total - failures} passed, {failures} failed  ({time.perf_counter() - start:.1f} s)")
    for name in names:
        print(f"  {CHECKS[name].__doc__.splitlines()[0]}")
    return 1 if failures else 0


def _train(args: argparse.Namespace, overrides: list[str]) -> int:
    from gan_equiv.models.builders import count_parameters
    from gan_equiv.train.checkpoint import latest_checkpoint
    from gan_equiv.train.config import apply_overrides, load_config
    from gan_equiv.train.distributed import init_from_env, shutdown
    from gan_equiv.train.experiment import prepare_run
    from gan_equiv.train.trainer import Trainer, check_trainable

    try:  # a bad key or value, or a setting the trainer cannot run yet: one line, no traceback
        config = load_config(args.config) if args.config else PRESETS[args.preset]()
        config = apply_overrides(config, overrides)
        check_trainable(config)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    setup = prepare_run(config)
    dist_ctx = init_from_env(config.device)  # None unless started by torchrun with WORLD_SIZE > 1
    try:
        trainer = Trainer(config, setup.train_data, evaluator=setup.evaluator, distributed=dist_ctx)
        say = print if trainer.is_main else (lambda *_: None)
        if dist_ctx is not None:
            say(f"data-parallel: {dist_ctx.world_size} ranks, backend {dist_ctx.backend}")
        say(f"run {config.name}: {setup.description}; device {trainer.device}; out {config.run_dir}")
        say(f"generator {type(trainer.policy).__name__} ({count_parameters(trainer.policy)} params)")
        if config.pretrain_d_steps or config.adversarial_rounds:  # else no energy is ever built
            say(f"energy {type(trainer.energy).__name__} ({count_parameters(trainer.energy)} params)")
        if args.resume is not None:
            path = args.resume or latest_checkpoint(config.run_dir)
            if path is None:
                raise SystemExit(f"--resume: no checkpoint in {config.run_dir}")
            trainer.resume(path)
            say(f"resumed from {path} at step {trainer.progress.step}")
        rows = trainer.fit()
        if rows:
            last = {k: v for k, v in rows[-1].items() if isinstance(v, float)}
            say("final: " + ", ".join(f"{k}={v:.5g}" for k, v in last.items()))
        say(f"metrics: {trainer.log.path}")
    finally:
        shutdown(dist_ctx)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan_equiv", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="run the claim checks E1–E19 on seeded tiny problems")
    verify.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    verify.add_argument(
        "--states",
        nargs="+",
        default=["last", "time_last", "history"],
        choices=["last", "time_last", "history"],
    )
    verify.add_argument("--checks", nargs="+", choices=list(CHECKS), default=None)
    verify.add_argument("--n-items", type=int, default=3)
    verify.add_argument("--horizon", type=int, default=3)
    verify.set_defaults(func=_verify)
    train = sub.add_parser(
        "train",
        help="train EB-SeqGAN; unknown --key value pairs override the config",
        description="Train EB-SeqGAN (Algorithm 1). Extra --key value pairs override config keys.",
    )
    source = train.add_mutually_exclusive_group()
    source.add_argument("--config", help="TOML config file (see configs/)")
    source.add_argument("--preset", choices=list(PRESETS), default="tiny_exact")
    train.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        help="checkpoint to resume (default: latest in run dir)",
    )
    train.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (1 is fastest for tiny problems)"
    )
    train.set_defaults(func=_train)
    add_evaluate_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command != "train" and extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "train":
        return int(args.func(args, extra))
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
