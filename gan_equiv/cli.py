"""Command line: ``python -m gan_equiv verify`` (claims E1–E12 on seeded tiny problems).

``verify`` prints one row per (problem, claim) and exits with status 1 if any check fails.
"""

from __future__ import annotations

import argparse
import sys
import time

from gan_equiv.equivalence import CHECKS, make_tiny_problem, run_all_checks


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan_equiv", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="run the claim checks E1–E12 on seeded tiny problems")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
