"""Command line: ``python -m gan_equiv [--debug] verify | train | evaluate | recommend``.

- ``verify`` runs the claim checks E1–E19 on seeded tiny problems, prints one row per
  (problem, claim) and exits with status 1 if any check fails.
- ``train --config FILE | --preset NAME [--resume [CKPT]] [--threads N] [--key value ...]`` runs
  EB-SeqGAN (Algorithm 1); any config key can be overridden (``--margin 5 --generator.hidden_dim 64
  --device cpu --out_dir runs/x``). Under ``torchrun --nproc_per_node=N -m gan_equiv train …`` it
  trains data-parallel (docs/scaling.md).
- ``evaluate`` (:mod:`gan_equiv.recsys.evaluate`) and ``recommend`` (:mod:`gan_equiv.recsys.recommend`):
  sequential recommendation on an interaction log, and the top-k items of a saved model.

A user error — a bad option, key or value, a missing, unreadable or non-UTF-8 file, an output folder
that cannot be written — prints one line ``error: …`` on stderr and exits with status 2; everything
that can be checked before work starts (input files, output folders) is checked first
(:mod:`gan_equiv.cli_checks`). ``--debug`` (or ``GAN_EQUIV_DEBUG=1``) shows the traceback instead.
Internal errors always keep their traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

import torch

from gan_equiv.cli_checks import (
    USER_ERROR_STATUS,
    CommandParser,
    debug_requested,
    readable_file,
    user_error_message,
    utf8_text_file,
    writable_file,
    writable_folder,
)
from gan_equiv.exact.claims import CHECKS, make_tiny_problem, run_all_checks
from gan_equiv.models.policies import check_sizes
from gan_equiv.recsys.evaluate import add_evaluate_parser
from gan_equiv.recsys.recommend import add_recommend_parser
from gan_equiv.train.presets import PRESETS

if TYPE_CHECKING:
    from gan_equiv.train.config_types import TrainConfig


def _verify(args: argparse.Namespace) -> int:
    check_sizes(args.n_items, args.horizon)  # refused before the table starts
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
    from gan_equiv.train.checkpoint import newest_intact_checkpoint, remove_orphan_temporaries
    from gan_equiv.train.config import apply_overrides, load_config
    from gan_equiv.train.distributed import init_from_env, shutdown
    from gan_equiv.train.experiment import prepare_run
    from gan_equiv.train.trainer import Trainer, check_trainable

    # everything that can be refused is refused here, before any data is built or any step taken
    if args.config:
        utf8_text_file(args.config, option="--config", fix="give a TOML file, e.g. configs/tiny_exact.toml")
    config = load_config(args.config) if args.config else PRESETS[args.preset]()
    config = apply_overrides(config, overrides)
    check_trainable(config)
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}; use e.g. --threads 1")
    check_train_paths(config, resume=args.resume)
    resume, skipped = args.resume or None, ()
    if args.resume == "":  # bare --resume: the newest checkpoint that passes every check
        search = newest_intact_checkpoint(config.run_dir)
        resume, skipped = search.path, search.skipped
        if resume is None:
            why = f" ({len(skipped)} refused: {skipped[0][1]})" if skipped else ""
            raise ValueError(
                f"--resume: no intact checkpoint in {str(config.run_dir)!r}{why}; give a checkpoint "
                "path or drop --resume to start afresh"
            )
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    setup = prepare_run(config)
    dist_ctx = init_from_env(config.device)  # None unless started by torchrun with WORLD_SIZE > 1
    try:
        trainer = Trainer(config, setup.train_data, evaluator=setup.evaluator, distributed=dist_ctx)
        say = print if trainer.is_main else (lambda *_: None)
        if dist_ctx is not None:
            say(f"data-parallel: {dist_ctx.world_size} ranks, backend {dist_ctx.backend}")
        say(f"run {config.name}: {setup.description}; device {trainer.device}; out {config.run_dir}")
        if trainer.is_main:  # left by writes a kill interrupted; never a finished checkpoint
            for orphan in remove_orphan_temporaries(config.run_dir):
                say(f"removed the unfinished checkpoint write {orphan}")
        for path, reason in skipped:
            say(f"skipped checkpoint {path}: {reason}")
        say(f"generator {type(trainer.policy).__name__} ({count_parameters(trainer.policy)} params)")
        if config.pretrain_d_steps or config.adversarial_rounds:  # else no energy is ever built
            say(f"energy {type(trainer.energy).__name__} ({count_parameters(trainer.energy)} params)")
        if resume is not None:
            review = trainer.resume(resume, allow_config_change=args.allow_config_change)
            say(f"resumed from {resume} at step {trainer.progress.step}")
            for key, before, now in (*review.refused, *review.applied):
                say(f"  {key}: {before!r} in the checkpoint -> {now!r} now")
        rows = trainer.fit()
        if rows:
            last = {k: v for k, v in rows[-1].items() if isinstance(v, float)}
            say("final: " + ", ".join(f"{k}={v:.5g}" for k, v in last.items()))
        say(f"metrics: {trainer.log.path}")
    finally:
        shutdown(dist_ctx)
    return 0


def check_train_paths(config: TrainConfig, *, resume: str | None = None) -> None:
    """Refuse, before any work, the paths of a training run that cannot be used: ``data_path`` (the
    data file or SeqGAN's oracle parameters) must be a readable file, the run folder
    (``out_dir`` or ``runs/<name>``) creatable and writable, an explicit ``--resume`` checkpoint
    readable. Raises :class:`~gan_equiv.cli_checks.UnusablePathError` naming the path and the fix."""
    if config.data_path:
        readable_file(
            config.data_path,
            option="data_path",
            fix="set --data_path to an existing file (or leave it empty for a generated oracle)",
        )
    if resume:
        readable_file(
            resume, option="--resume", fix="give a checkpoint file, or --resume alone for the latest"
        )
    writable_folder(config.run_dir, option="the run folder (out_dir)")  # last: it creates the folder


def _check_evaluate(args: argparse.Namespace) -> None:
    """``evaluate``: the options form a valid configuration, the ``--data`` file is readable, every
    ``--out`` file and the ``--run-dir`` folder can be written."""
    from gan_equiv.recsys.evaluate import config_from_args

    config = config_from_args(args)
    readable_file(config.source.path, option="--data", fix="give the interaction file to evaluate on")
    for path in args.out:
        writable_file(path, option="--out")
    writable_folder(config.protocol.out_dir, option="--run-dir")


def _check_recommend(args: argparse.Namespace) -> None:
    """``recommend``: the ``--checkpoint`` file is readable."""
    readable_file(
        args.checkpoint,
        option="--checkpoint",
        fix="give a model.pt that evaluate wrote under <run-dir>/<protocol>/<model>/",
    )


#: Checks run before each command's handler (``train`` checks inside its handler, after the config).
PREFLIGHT = {"evaluate": _check_evaluate, "recommend": _check_recommend}


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m gan_equiv`` parser: every option documented, errors as :class:`CommandLineError`."""
    parser = CommandParser(prog="python -m gan_equiv", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an error instead of one line (also GAN_EQUIV_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to run")
    verify = sub.add_parser("verify", help="run the claim checks E1–E19 on seeded tiny problems")
    verify.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1], help="seeds of the random problems [default: 0 1]"
    )
    verify.add_argument(
        "--states",
        nargs="+",
        default=["last", "time_last", "history"],
        choices=["last", "time_last", "history"],
        help="feature states of the problems [default: all three]",
    )
    verify.add_argument(
        "--checks", nargs="+", choices=list(CHECKS), default=None, help="claims to check [default: all]"
    )
    verify.add_argument("--n-items", type=int, default=3, help="V, items per position [default: 3]")
    verify.add_argument("--horizon", type=int, default=3, help="T, sequence length [default: 3]")
    verify.set_defaults(func=_verify)
    train = sub.add_parser(
        "train",
        help="train EB-SeqGAN; unknown --key value pairs override the config",
        description="Train EB-SeqGAN (Algorithm 1). Extra --key value pairs override config keys.",
    )
    source = train.add_mutually_exclusive_group()
    source.add_argument("--config", help="TOML config file (see configs/)")
    source.add_argument(
        "--preset", choices=list(PRESETS), default="tiny_exact", help="built-in config [default: tiny_exact]"
    )
    train.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        help="checkpoint to resume (alone: the newest intact one in the run folder, naming any it skips)",
    )
    train.add_argument(
        "--allow-config-change",
        action="store_true",
        help="resume even where the experiment's keys (data, seed, sizes, objective) differ from the "
        "checkpoint's; the differences are printed",
    )
    train.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (1 is fastest for tiny problems)"
    )
    train.set_defaults(func=_train)
    add_evaluate_parser(sub)
    add_recommend_parser(sub)
    return parser


def _run(argv: list[str]) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    extra = [a for a in extra if a != "--debug"]  # --debug after the command name is accepted too
    if args.command == "train":
        return int(args.func(args, extra))
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command in PREFLIGHT:
        PREFLIGHT[args.command](args)
    return int(args.func(args))


def main(argv: list[str] | None = None) -> int:
    """Run one command; a user error is one line ``error: …`` on stderr and exit status 2
    (:func:`~gan_equiv.cli_checks.user_error_message`), re-raised with ``--debug`` or
    ``GAN_EQUIV_DEBUG=1``; internal errors propagate with their traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _run(argv)
    except (Exception, SystemExit) as err:
        message = user_error_message(err)
        if message is None or debug_requested(argv):
            raise
        print(f"error: {message}", file=sys.stderr)
        return USER_ERROR_STATUS


if __name__ == "__main__":
    sys.exit(main())
